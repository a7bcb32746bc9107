-- first crossing of the two-arm SPRT inside its candidate bins (sequential_method='sprt')
WITH `t3` AS (
  SELECT
    `t1`.`variant`,
    `t1`.`unit`,
    MIN(`t1`.`ts`) AS `first_ts`
  FROM (
    SELECT
      `t0`.`ts`,
      `t0`.`variant`,
      `t0`.`unit_id` AS `unit`
    FROM `exposures` AS `t0`
    WHERE
      `t0`.`ts` IS NOT NULL
      AND `t0`.`variant` IS NOT NULL
      AND `t0`.`unit_id` IS NOT NULL
      AND `t0`.`ts` >= CAST('2026-01-05T00:00:00' AS TIMESTAMP)
      AND `t0`.`ts` < CAST('2026-01-06T00:00:00' AS TIMESTAMP)
  ) AS `t1`
  GROUP BY
    1,
    2
)
SELECT
  `t13`.`n` - 1 AS `stopped_index`,
  `t13`.`first_ts` AS `stopped_at`
FROM (
  SELECT
    *
  FROM (
    SELECT
      `t10`.`variant`,
      `t10`.`unit`,
      `t10`.`first_ts`,
      (
        ROW_NUMBER() OVER (
          ORDER BY `t10`.`first_ts` ASC NULLS LAST, `t10`.`unit` ASC NULLS LAST, `t10`.`variant` ASC NULLS LAST
        ) - 1
      ) + 1 AS `n`,
      SUM(IF(`t10`.`variant` = 'treatment', 1, 0)) OVER (
        ORDER BY `t10`.`first_ts` ASC NULLS LAST, `t10`.`unit` ASC NULLS LAST, `t10`.`variant` ASC NULLS LAST
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) + 0 AS `k`
    FROM (
      SELECT
        `t5`.`variant`,
        `t5`.`unit`,
        `t5`.`first_ts`
      FROM `t3` AS `t5`
      LEFT ANTI JOIN (
        SELECT DISTINCT
          `t7`.`variant`,
          `t7`.`unit`
        FROM (
          SELECT
            *
          FROM (
            SELECT
              `t0`.`ts`,
              `t0`.`variant`,
              `t0`.`unit_id` AS `unit`
            FROM `exposures` AS `t0`
            WHERE
              `t0`.`ts` IS NOT NULL
              AND `t0`.`variant` IS NOT NULL
              AND `t0`.`unit_id` IS NOT NULL
              AND `t0`.`ts` < CAST('2026-01-05T00:00:00' AS TIMESTAMP)
          ) AS `t2`
          WHERE
            `t2`.`unit` IN (
              SELECT
                `t4`.`unit`
              FROM `t3` AS `t4`
            )
        ) AS `t7`
      ) AS `t9`
        ON `t5`.`variant` = `t9`.`variant` AND `t5`.`unit` = `t9`.`unit`
    ) AS `t10`
  ) AS `t11`
  WHERE
    (
      GREATEST(
        (
          `t11`.`k` * 0.03922071315328133
        ) + (
          (
            `t11`.`n` - `t11`.`k`
          ) * -0.040821994520255166
        ),
        (
          `t11`.`k` * -0.040821994520255166
        ) + (
          (
            `t11`.`n` - `t11`.`k`
          ) * 0.03922071315328133
        )
      ) + LN(
        EXP(
          -(
            ABS(
              (
                (
                  `t11`.`k` * 0.03922071315328133
                ) + (
                  (
                    `t11`.`n` - `t11`.`k`
                  ) * -0.040821994520255166
                )
              ) - (
                (
                  `t11`.`k` * -0.040821994520255166
                ) + (
                  (
                    `t11`.`n` - `t11`.`k`
                  ) * 0.03922071315328133
                )
              )
            )
          )
        ) + 1
      ) + -0.6931471805599453
    ) >= 4.605170185988092
  ORDER BY
    `t11`.`n` ASC NULLS LAST
  LIMIT 1
) AS `t13`;
