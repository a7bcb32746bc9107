-- distinct units per variant (check_live_srm on its own)
SELECT
  `t1`.`variant`,
  COUNT(DISTINCT `t1`.`unit`) AS `units`
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
  1;
