-- per-variant moments of every metric (calculate_metrics, guardrails)
SELECT
  `t2`.`variant`,
  SUM(
    CAST(`t2`.`value__load_ms` IS NOT NULL AND NOT ISNAN(`t2`.`value__load_ms`) AS BIGINT)
  ) AS `m0__n`,
  AVG(
    IF(
      `t2`.`value__load_ms` IS NOT NULL AND NOT ISNAN(`t2`.`value__load_ms`),
      `t2`.`value__load_ms`,
      NULL
    )
  ) AS `m0__numerator_mean`,
  VARIANCE(
    IF(
      `t2`.`value__load_ms` IS NOT NULL AND NOT ISNAN(`t2`.`value__load_ms`),
      `t2`.`value__load_ms`,
      NULL
    )
  ) AS `m0__numerator_var`
FROM (
  SELECT
    `t1`.`variant`,
    `t1`.`unit_id` AS `unit__key`,
    SUM(`t1`.`load_ms`) AS `value__load_ms`
  FROM (
    SELECT
      *
    FROM `exposures` AS `t0`
    WHERE
      `t0`.`variant` IS NOT NULL AND `t0`.`unit_id` IS NOT NULL
  ) AS `t1`
  GROUP BY
    1,
    2
) AS `t2`
GROUP BY
  1;
