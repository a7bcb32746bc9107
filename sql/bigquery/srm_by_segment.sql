-- distinct units per segment and variant, and per variant overall (check_srm_by)
WITH `t2` AS (
  SELECT
    `t1`.`dim0`,
    `t1`.`variant`,
    `t1`.`unit`
  FROM (
    SELECT
      `t0`.`ts`,
      `t0`.`variant`,
      `t0`.`unit_id` AS `unit`,
      `t0`.`platform` AS `dim0`
    FROM `exposures` AS `t0`
    WHERE
      `t0`.`ts` IS NOT NULL
      AND `t0`.`variant` IS NOT NULL
      AND `t0`.`unit_id` IS NOT NULL
  ) AS `t1`
  GROUP BY
    1,
    2,
    3
)
SELECT
  *
FROM (
  SELECT
    'segment' AS `part`,
    `t4`.`dim0`,
    `t4`.`variant`,
    `t4`.`units`
  FROM (
    SELECT
      `t3`.`dim0`,
      `t3`.`variant`,
      COUNT(*) AS `units`
    FROM `t2` AS `t3`
    GROUP BY
      1,
      2
  ) AS `t4`
) AS `t6`
UNION ALL
SELECT
  *
FROM (
  SELECT
    'overall' AS `part`,
    CAST(NULL AS STRING) AS `dim0`,
    `t7`.`variant`,
    `t7`.`units`
  FROM (
    SELECT
      `t5`.`variant`,
      COUNT(*) AS `units`
    FROM (
      SELECT DISTINCT
        `t3`.`variant`,
        `t3`.`unit`
      FROM `t2` AS `t3`
    ) AS `t5`
    GROUP BY
      1
  ) AS `t7`
) AS `t8`;
