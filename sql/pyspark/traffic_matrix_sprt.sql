-- traffic matrix with the two-arm SPRT's first crossing (sequential_method='sprt', check_sequential_srm)
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
  ) AS `t1`
  GROUP BY
    1,
    2
)
SELECT
  `t6`.`bin`,
  `t6`.`variant`,
  `t6`.`active`,
  `t11`.`other`,
  `t11`.`stop_n0`,
  `t11`.`stop_ts0`,
  COALESCE(`t11`.`new`, 0) AS `new`
FROM (
  SELECT
    `t2`.`bin`,
    `t2`.`variant`,
    COUNT(*) AS `active`
  FROM (
    SELECT DISTINCT
      CAST(FLOOR(UNIX_TIMESTAMP(CAST(`t0`.`ts` AS TIMESTAMP)) / 3600) AS BIGINT) AS `bin`,
      `t0`.`variant`,
      `t0`.`unit_id` AS `unit`
    FROM `exposures` AS `t0`
    WHERE
      `t0`.`ts` IS NOT NULL
      AND `t0`.`variant` IS NOT NULL
      AND `t0`.`unit_id` IS NOT NULL
  ) AS `t2`
  GROUP BY
    1,
    2
) AS `t6`
LEFT OUTER JOIN (
  SELECT
    `t9`.`bin`,
    `t9`.`variant`,
    COUNT(*) AS `new`,
    MAX(`t9`.`y`) AS `other`,
    MIN(
      IF(
        (
          GREATEST(
            (
              `t9`.`k` * 0.03922071315328133
            ) + (
              (
                `t9`.`n` - `t9`.`k`
              ) * -0.040821994520255166
            ),
            (
              `t9`.`k` * -0.040821994520255166
            ) + (
              (
                `t9`.`n` - `t9`.`k`
              ) * 0.03922071315328133
            )
          ) + LN(
            EXP(
              -(
                ABS(
                  (
                    (
                      `t9`.`k` * 0.03922071315328133
                    ) + (
                      (
                        `t9`.`n` - `t9`.`k`
                      ) * -0.040821994520255166
                    )
                  ) - (
                    (
                      `t9`.`k` * -0.040821994520255166
                    ) + (
                      (
                        `t9`.`n` - `t9`.`k`
                      ) * 0.03922071315328133
                    )
                  )
                )
              )
            ) + 1
          ) + -0.6931471805599453
        ) >= 4.605170185988092,
        `t9`.`n`,
        CAST(NULL AS DOUBLE)
      )
    ) AS `stop_n0`,
    MIN(
      IF(
        (
          GREATEST(
            (
              `t9`.`k` * 0.03922071315328133
            ) + (
              (
                `t9`.`n` - `t9`.`k`
              ) * -0.040821994520255166
            ),
            (
              `t9`.`k` * -0.040821994520255166
            ) + (
              (
                `t9`.`n` - `t9`.`k`
              ) * 0.03922071315328133
            )
          ) + LN(
            EXP(
              -(
                ABS(
                  (
                    (
                      `t9`.`k` * 0.03922071315328133
                    ) + (
                      (
                        `t9`.`n` - `t9`.`k`
                      ) * -0.040821994520255166
                    )
                  ) - (
                    (
                      `t9`.`k` * -0.040821994520255166
                    ) + (
                      (
                        `t9`.`n` - `t9`.`k`
                      ) * 0.03922071315328133
                    )
                  )
                )
              )
            ) + 1
          ) + -0.6931471805599453
        ) >= 4.605170185988092,
        `t9`.`first_ts`,
        CAST(NULL AS TIMESTAMP)
      )
    ) AS `stop_ts0`
  FROM (
    SELECT
      `t8`.`variant`,
      `t8`.`unit`,
      `t8`.`first_ts`,
      `t8`.`y`,
      CAST(FLOOR(UNIX_TIMESTAMP(CAST(`t8`.`first_ts` AS TIMESTAMP)) / 3600) AS BIGINT) AS `bin`,
      CAST((
        ROW_NUMBER() OVER (
          ORDER BY `t8`.`first_ts` ASC NULLS LAST, `t8`.`unit` ASC NULLS LAST, `t8`.`variant` ASC NULLS LAST
        ) - 1
      ) + 1 AS DOUBLE) AS `n`,
      SUM(`t8`.`y`) OVER (
        ORDER BY `t8`.`first_ts` ASC NULLS LAST, `t8`.`unit` ASC NULLS LAST, `t8`.`variant` ASC NULLS LAST
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS `k`
    FROM (
      SELECT
        `t4`.`variant`,
        `t4`.`unit`,
        `t4`.`first_ts`,
        CAST(IF(
          `t4`.`variant` <> (
            SELECT
              MIN(`t4`.`variant`) AS `Min(variant)`
            FROM `t3` AS `t4`
          ),
          1,
          0
        ) AS DOUBLE) AS `y`
      FROM `t3` AS `t4`
    ) AS `t8`
  ) AS `t9`
  GROUP BY
    1,
    2
) AS `t11`
  ON `t6`.`bin` = `t11`.`bin` AND `t6`.`variant` = `t11`.`variant`;
