-- first crossing of the two-arm SPRT inside its candidate bins (sequential_method='sprt')
SELECT
  "t6"."n" - 1 AS "stopped_index",
  "t6"."first_ts" AS "stopped_at"
FROM (
  SELECT
    *
  FROM (
    SELECT
      "t3"."variant",
      "t3"."unit",
      "t3"."first_ts",
      (
        ROW_NUMBER() OVER (ORDER BY "t3"."first_ts" ASC, "t3"."unit" ASC, "t3"."variant" ASC) - 1
      ) + 1 AS "n",
      SUM(IFF("t3"."variant" = 'treatment', 1, 0)) OVER (
        ORDER BY "t3"."first_ts" ASC, "t3"."unit" ASC, "t3"."variant" ASC
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) + 0 AS "k"
    FROM (
      SELECT
        *
      FROM (
        SELECT
          "t1"."variant",
          "t1"."unit",
          MIN("t1"."ts") AS "first_ts"
        FROM (
          SELECT
            "t0"."ts",
            "t0"."variant",
            "t0"."unit_id" AS "unit"
          FROM "exposures" AS "t0"
          WHERE
            "t0"."ts" IS NOT NULL
            AND "t0"."variant" IS NOT NULL
            AND "t0"."unit_id" IS NOT NULL
            AND "t0"."ts" < TIMESTAMP_FROM_PARTS(2026, 1, 6, 0, 0, 0, 0)
        ) AS "t1"
        GROUP BY
          1,
          2
      ) AS "t2"
      WHERE
        "t2"."first_ts" >= TIMESTAMP_FROM_PARTS(2026, 1, 5, 0, 0, 0, 0)
    ) AS "t3"
  ) AS "t4"
  WHERE
    (
      GREATEST(
        (
          "t4"."k" * 0.03922071315328133
        ) + (
          (
            "t4"."n" - "t4"."k"
          ) * -0.040821994520255166
        ),
        (
          "t4"."k" * -0.040821994520255166
        ) + (
          (
            "t4"."n" - "t4"."k"
          ) * 0.03922071315328133
        )
      ) + LN(
        EXP(
          -(
            ABS(
              (
                (
                  "t4"."k" * 0.03922071315328133
                ) + (
                  (
                    "t4"."n" - "t4"."k"
                  ) * -0.040821994520255166
                )
              ) - (
                (
                  "t4"."k" * -0.040821994520255166
                ) + (
                  (
                    "t4"."n" - "t4"."k"
                  ) * 0.03922071315328133
                )
              )
            )
          )
        ) + 1
      ) + -0.6931471805599453
    ) >= 4.605170185988092
  ORDER BY
    "t4"."n" ASC
  LIMIT 1
) AS "t6";
