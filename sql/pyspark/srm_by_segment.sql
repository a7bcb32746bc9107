-- distinct units per segment and variant (check_srm_by)
SELECT
  `t1`.`dim0`,
  `t1`.`variant`,
  COUNT(DISTINCT `t1`.`unit`) AS `units`
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
  2;
