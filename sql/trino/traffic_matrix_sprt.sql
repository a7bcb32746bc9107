-- traffic matrix with the two-arm SPRT's first crossing (sequential_method='sprt', check_sequential_srm)
WITH "t1" AS (
  SELECT
    "t0"."ts",
    "t0"."variant",
    "t0"."unit_id" AS "unit"
  FROM "exposures" AS "t0"
  WHERE
    "t0"."ts" IS NOT NULL
    AND "t0"."variant" IS NOT NULL
    AND "t0"."unit_id" IS NOT NULL
), "t3" AS (
  SELECT
    "t2"."variant",
    "t2"."unit",
    MIN("t2"."ts") AS "first_ts"
  FROM "t1" AS "t2"
  GROUP BY
    1,
    2
)
SELECT
  'matrix' AS "part",
  "t8"."bin",
  "t8"."variant",
  CAST(NULL AS VARCHAR) AS "second_variant",
  "t8"."active",
  COALESCE("t12"."new", 0) AS "new",
  CAST(NULL AS BIGINT) AS "units",
  "t12"."other",
  "t12"."stop_n0",
  "t12"."stop_ts0"
FROM (
  SELECT
    "t5"."bin",
    "t5"."variant",
    COUNT(*) AS "active"
  FROM (
    SELECT
      CAST(FLOOR(CAST(TO_UNIXTIME("t2"."ts") AS DOUBLE) / 3600) AS BIGINT) AS "bin",
      "t2"."variant",
      "t2"."unit"
    FROM "t1" AS "t2"
    GROUP BY
      1,
      2,
      3
  ) AS "t5"
  GROUP BY
    1,
    2
) AS "t8"
LEFT OUTER JOIN (
  SELECT
    "t10"."bin",
    "t10"."variant",
    COUNT(*) AS "new",
    MAX("t10"."y") AS "other",
    MIN(
      IF(
        (
          GREATEST(
            (
              "t10"."k" * CAST(0.03922071315328133 AS DOUBLE)
            ) + (
              (
                "t10"."n" - "t10"."k"
              ) * CAST(-0.040821994520255166 AS DOUBLE)
            ),
            (
              "t10"."k" * CAST(-0.040821994520255166 AS DOUBLE)
            ) + (
              (
                "t10"."n" - "t10"."k"
              ) * CAST(0.03922071315328133 AS DOUBLE)
            )
          ) + LN(
            EXP(
              -(
                ABS(
                  (
                    (
                      "t10"."k" * CAST(0.03922071315328133 AS DOUBLE)
                    ) + (
                      (
                        "t10"."n" - "t10"."k"
                      ) * CAST(-0.040821994520255166 AS DOUBLE)
                    )
                  ) - (
                    (
                      "t10"."k" * CAST(-0.040821994520255166 AS DOUBLE)
                    ) + (
                      (
                        "t10"."n" - "t10"."k"
                      ) * CAST(0.03922071315328133 AS DOUBLE)
                    )
                  )
                )
              )
            ) + 1
          ) + CAST(-0.6931471805599453 AS DOUBLE)
        ) >= CAST(4.605170185988092 AS DOUBLE),
        "t10"."n",
        CAST(NULL AS DOUBLE)
      )
    ) AS "stop_n0",
    MIN(
      IF(
        (
          GREATEST(
            (
              "t10"."k" * CAST(0.03922071315328133 AS DOUBLE)
            ) + (
              (
                "t10"."n" - "t10"."k"
              ) * CAST(-0.040821994520255166 AS DOUBLE)
            ),
            (
              "t10"."k" * CAST(-0.040821994520255166 AS DOUBLE)
            ) + (
              (
                "t10"."n" - "t10"."k"
              ) * CAST(0.03922071315328133 AS DOUBLE)
            )
          ) + LN(
            EXP(
              -(
                ABS(
                  (
                    (
                      "t10"."k" * CAST(0.03922071315328133 AS DOUBLE)
                    ) + (
                      (
                        "t10"."n" - "t10"."k"
                      ) * CAST(-0.040821994520255166 AS DOUBLE)
                    )
                  ) - (
                    (
                      "t10"."k" * CAST(-0.040821994520255166 AS DOUBLE)
                    ) + (
                      (
                        "t10"."n" - "t10"."k"
                      ) * CAST(0.03922071315328133 AS DOUBLE)
                    )
                  )
                )
              )
            ) + 1
          ) + CAST(-0.6931471805599453 AS DOUBLE)
        ) >= CAST(4.605170185988092 AS DOUBLE),
        "t10"."first_ts",
        CAST(NULL AS TIMESTAMP)
      )
    ) AS "stop_ts0"
  FROM (
    SELECT
      "t9"."variant",
      "t9"."unit",
      "t9"."first_ts",
      "t9"."y",
      CAST(FLOOR(CAST(TO_UNIXTIME("t9"."first_ts") AS DOUBLE) / 3600) AS BIGINT) AS "bin",
      CAST((
        ROW_NUMBER() OVER (ORDER BY "t9"."first_ts" ASC, "t9"."unit" ASC, "t9"."variant" ASC) - 1
      ) + 1 + 0 AS DOUBLE) AS "n",
      SUM("t9"."y") OVER (
        ORDER BY "t9"."first_ts" ASC, "t9"."unit" ASC, "t9"."variant" ASC
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) + CAST(0.0 AS DOUBLE) AS "k"
    FROM (
      SELECT
        "t4"."variant",
        "t4"."unit",
        "t4"."first_ts",
        CAST(IF(
          "t4"."variant" <> (
            SELECT
              MIN("t4"."variant") AS "Min(variant)"
            FROM "t3" AS "t4"
          ),
          1,
          0
        ) AS DOUBLE) AS "y"
      FROM "t3" AS "t4"
    ) AS "t9"
  ) AS "t10"
  GROUP BY
    1,
    2
) AS "t12"
  ON "t8"."bin" = "t12"."bin" AND "t8"."variant" = "t12"."variant"
LIMIT 5000001;
