-- traffic matrix: active and first-exposure units per bin and variant (traffic anomaly, chi-square and anytime-valid SRM)
SELECT
  `t5`.`bin`,
  `t5`.`variant`,
  `t5`.`active`,
  COALESCE(`t8`.`new`, 0) AS `new`
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
) AS `t5`
LEFT OUTER JOIN (
  SELECT
    `t6`.`bin`,
    `t6`.`variant`,
    COUNT(*) AS `new`
  FROM (
    SELECT
      CAST(FLOOR(UNIX_TIMESTAMP(CAST(`t3`.`first_ts` AS TIMESTAMP)) / 3600) AS BIGINT) AS `bin`,
      `t3`.`variant`
    FROM (
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
    ) AS `t3`
  ) AS `t6`
  GROUP BY
    1,
    2
) AS `t8`
  ON `t5`.`bin` = `t8`.`bin` AND `t5`.`variant` = `t8`.`variant`;
