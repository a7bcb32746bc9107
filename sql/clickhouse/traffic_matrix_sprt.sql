-- traffic matrix with the two-arm SPRT's first crossing (sequential_method='sprt', check_sequential_srm)
WITH "t1" AS (
  SELECT
    "t0"."ts" AS "ts",
    "t0"."variant" AS "variant",
    "t0"."unit_id" AS "unit"
  FROM "exposures" AS "t0"
  WHERE
    isNotNull("t0"."ts") AND isNotNull("t0"."variant") AND isNotNull("t0"."unit_id")
), "t3" AS (
  SELECT
    "t2"."variant" AS "variant",
    "t2"."unit" AS "unit",
    MIN("t2"."ts") AS "first_ts"
  FROM "t1" AS "t2"
  GROUP BY
    "t2"."variant",
    "t2"."unit"
)
SELECT
  'matrix' AS "part",
  "t8"."bin" AS "bin",
  "t8"."variant" AS "variant",
  CAST(NULL AS Nullable(String)) AS "second_variant",
  "t8"."active" AS "active",
  COALESCE("t12"."new", 0) AS "new",
  CAST(NULL AS Nullable(Int64)) AS "units",
  "t12"."other" AS "other",
  "t12"."stop_n0" AS "stop_n0",
  "t12"."stop_ts0" AS "stop_ts0"
FROM (
  SELECT
    "t5"."bin" AS "bin",
    "t5"."variant" AS "variant",
    COUNT(*) AS "active"
  FROM (
    SELECT
      CAST(FLOOR(toRelativeSecondNum("t2"."ts") / 3600) AS Nullable(Int64)) AS "bin",
      "t2"."variant" AS "variant",
      "t2"."unit" AS "unit"
    FROM "t1" AS "t2"
    GROUP BY
      CAST(FLOOR(toRelativeSecondNum("t2"."ts") / 3600) AS Nullable(Int64)),
      "t2"."variant",
      "t2"."unit"
  ) AS "t5"
  GROUP BY
    "t5"."bin",
    "t5"."variant"
) AS "t8"
LEFT OUTER JOIN (
  SELECT
    "t10"."bin" AS "bin",
    "t10"."variant" AS "variant",
    COUNT(*) AS "new",
    MAX("t10"."y") AS "other",
    MIN(
      CASE
        WHEN (
          GREATEST(
            (
              "t10"."k" * 0.03922071315328133
            ) + (
              (
                "t10"."n" - "t10"."k"
              ) * -0.040821994520255166
            ),
            (
              "t10"."k" * -0.040821994520255166
            ) + (
              (
                "t10"."n" - "t10"."k"
              ) * 0.03922071315328133
            )
          ) + LN(
            EXP(
              -(
                ABS(
                  (
                    (
                      "t10"."k" * 0.03922071315328133
                    ) + (
                      (
                        "t10"."n" - "t10"."k"
                      ) * -0.040821994520255166
                    )
                  ) - (
                    (
                      "t10"."k" * -0.040821994520255166
                    ) + (
                      (
                        "t10"."n" - "t10"."k"
                      ) * 0.03922071315328133
                    )
                  )
                )
              )
            ) + 1
          ) + -0.6931471805599453
        ) >= 4.605170185988092
        THEN "t10"."n"
        ELSE CAST(NULL AS Nullable(Float64))
      END
    ) AS "stop_n0",
    MIN(
      CASE
        WHEN (
          GREATEST(
            (
              "t10"."k" * 0.03922071315328133
            ) + (
              (
                "t10"."n" - "t10"."k"
              ) * -0.040821994520255166
            ),
            (
              "t10"."k" * -0.040821994520255166
            ) + (
              (
                "t10"."n" - "t10"."k"
              ) * 0.03922071315328133
            )
          ) + LN(
            EXP(
              -(
                ABS(
                  (
                    (
                      "t10"."k" * 0.03922071315328133
                    ) + (
                      (
                        "t10"."n" - "t10"."k"
                      ) * -0.040821994520255166
                    )
                  ) - (
                    (
                      "t10"."k" * -0.040821994520255166
                    ) + (
                      (
                        "t10"."n" - "t10"."k"
                      ) * 0.03922071315328133
                    )
                  )
                )
              )
            ) + 1
          ) + -0.6931471805599453
        ) >= 4.605170185988092
        THEN "t10"."first_ts"
        ELSE CAST(NULL AS Nullable(DateTime))
      END
    ) AS "stop_ts0"
  FROM (
    SELECT
      "t9"."variant" AS "variant",
      "t9"."unit" AS "unit",
      "t9"."first_ts" AS "first_ts",
      "t9"."y" AS "y",
      CAST(FLOOR(toRelativeSecondNum("t9"."first_ts") / 3600) AS Nullable(Int64)) AS "bin",
      CAST((
        ROW_NUMBER() OVER (
          ORDER BY "t9"."first_ts" ASC, "t9"."unit" ASC, "t9"."variant" ASC
          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) - 1
      ) + 1 + 0 AS Nullable(Float64)) AS "n",
      SUM("t9"."y") OVER (
        ORDER BY "t9"."first_ts" ASC, "t9"."unit" ASC, "t9"."variant" ASC
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) + 0.0 AS "k"
    FROM (
      SELECT
        "t4"."variant" AS "variant",
        "t4"."unit" AS "unit",
        "t4"."first_ts" AS "first_ts",
        CAST(CASE
          WHEN "t4"."variant" <> (
            SELECT
              MIN("t4"."variant") AS "Min(variant)"
            FROM "t3" AS "t4"
          )
          THEN 1
          ELSE 0
        END AS Nullable(Float64)) AS "y"
      FROM "t3" AS "t4"
    ) AS "t9"
  ) AS "t10"
  GROUP BY
    "t10"."bin",
    "t10"."variant"
) AS "t12"
  ON "t8"."bin" = "t12"."bin" AND "t8"."variant" = "t12"."variant"
LIMIT 5000001;
