-- traffic matrix: active and first-exposure units per bin and variant, with the multiple-exposure events per bin (run_telemetry_checks: traffic anomaly, chi-square, anytime-valid SRM, MULTIPLE_EXPOSURE)
WITH `t1` AS (
  SELECT
    `t0`.`ts`,
    `t0`.`variant`,
    `t0`.`unit_id` AS `unit`
  FROM `exposures` AS `t0`
  WHERE
    `t0`.`ts` IS NOT NULL
    AND `t0`.`variant` IS NOT NULL
    AND `t0`.`unit_id` IS NOT NULL
), `t3` AS (
  SELECT
    `t2`.`variant`,
    `t2`.`unit`,
    MIN(`t2`.`ts`) AS `first_ts`
  FROM `t1` AS `t2`
  GROUP BY
    1,
    2
), `t8` AS (
  SELECT
    `t4`.`unit`,
    MIN(`t4`.`first_ts`) AS `at`,
    COUNT(*) AS `variants`
  FROM `t3` AS `t4`
  GROUP BY
    1
), `t23` AS (
  SELECT
    `t6`.`unit`,
    `t6`.`variant`,
    `t6`.`first_ts`,
    `t21`.`variant` AS `variant_right`,
    `t21`.`first_ts` AS `first_ts_right`
  FROM `t3` AS `t6`
  INNER JOIN (
    SELECT
      `t10`.`unit`,
      `t10`.`variants`
    FROM `t8` AS `t10`
    WHERE
      `t10`.`variants` > 1
  ) AS `t14`
    ON `t6`.`unit` = `t14`.`unit`
  INNER JOIN (
    SELECT
      `t6`.`unit`,
      `t6`.`variant`,
      `t6`.`first_ts`
    FROM `t3` AS `t6`
    INNER JOIN (
      SELECT
        `t10`.`unit`,
        `t10`.`variants`
      FROM `t8` AS `t10`
      WHERE
        `t10`.`variants` > 1
    ) AS `t14`
      ON `t6`.`unit` = `t14`.`unit`
  ) AS `t21`
    ON `t6`.`unit` = `t21`.`unit`
)
SELECT
  *
FROM (
  SELECT
    *
  FROM (
    SELECT
      'matrix' AS `part`,
      `t9`.`bin`,
      `t9`.`variant`,
      CAST(NULL AS STRING) AS `second_variant`,
      `t9`.`active`,
      COALESCE(`t15`.`new`, 0) AS `new`,
      CAST(NULL AS BIGINT) AS `units`
    FROM (
      SELECT
        `t5`.`bin`,
        `t5`.`variant`,
        COUNT(*) AS `active`
      FROM (
        SELECT
          CAST(FLOOR(TRY_DIVIDE(UNIX_TIMESTAMP(CAST(`t2`.`ts` AS TIMESTAMP)), 3600)) AS BIGINT) AS `bin`,
          `t2`.`variant`,
          `t2`.`unit`
        FROM `t1` AS `t2`
        GROUP BY
          1,
          2,
          3
      ) AS `t5`
      GROUP BY
        1,
        2
    ) AS `t9`
    LEFT OUTER JOIN (
      SELECT
        `t11`.`bin`,
        `t11`.`variant`,
        COUNT(*) AS `new`
      FROM (
        SELECT
          CAST(FLOOR(TRY_DIVIDE(UNIX_TIMESTAMP(CAST(`t4`.`first_ts` AS TIMESTAMP)), 3600)) AS BIGINT) AS `bin`,
          `t4`.`variant`
        FROM `t3` AS `t4`
      ) AS `t11`
      GROUP BY
        1,
        2
    ) AS `t15`
      ON `t9`.`bin` = `t15`.`bin` AND `t9`.`variant` = `t15`.`variant`
  ) AS `t19`
  UNION ALL
  SELECT
    *
  FROM (
    SELECT
      'units' AS `part`,
      `t17`.`bin`,
      CAST(NULL AS STRING) AS `variant`,
      CAST(NULL AS STRING) AS `second_variant`,
      CAST(NULL AS BIGINT) AS `active`,
      CAST(NULL AS BIGINT) AS `new`,
      `t17`.`units`
    FROM (
      SELECT
        `t16`.`bin`,
        COUNT(*) AS `units`
      FROM (
        SELECT
          CAST(FLOOR(TRY_DIVIDE(UNIX_TIMESTAMP(CAST(`t10`.`at` AS TIMESTAMP)), 3600)) AS BIGINT) AS `bin`
        FROM `t8` AS `t10`
      ) AS `t16`
      GROUP BY
        1
    ) AS `t17`
  ) AS `t20`
) AS `t22`
UNION ALL
SELECT
  *
FROM (
  SELECT
    *
  FROM (
    SELECT
      'multiple' AS `part`,
      `t31`.`bin`,
      CAST(NULL AS STRING) AS `variant`,
      CAST(NULL AS STRING) AS `second_variant`,
      CAST(NULL AS BIGINT) AS `active`,
      CAST(NULL AS BIGINT) AS `new`,
      `t31`.`units`
    FROM (
      SELECT
        `t30`.`bin`,
        COUNT(*) AS `units`
      FROM (
        SELECT
          CAST(FLOOR(TRY_DIVIDE(UNIX_TIMESTAMP(CAST(`t26`.`at` AS TIMESTAMP)), 3600)) AS BIGINT) AS `bin`
        FROM (
          SELECT
            `t25`.`unit`,
            MIN(`t25`.`at`) AS `at`
          FROM (
            SELECT
              `t24`.`unit`,
              `t24`.`variant`,
              `t24`.`variant_right` AS `second_variant`,
              GREATEST(`t24`.`first_ts`, `t24`.`first_ts_right`) AS `at`
            FROM `t23` AS `t24`
            WHERE
              `t24`.`variant` < `t24`.`variant_right`
          ) AS `t25`
          GROUP BY
            1
        ) AS `t26`
      ) AS `t30`
      GROUP BY
        1
    ) AS `t31`
  ) AS `t32`
  UNION ALL
  SELECT
    *
  FROM (
    SELECT
      'pair' AS `part`,
      `t28`.`bin`,
      `t28`.`variant`,
      `t28`.`second_variant`,
      CAST(NULL AS BIGINT) AS `active`,
      CAST(NULL AS BIGINT) AS `new`,
      `t28`.`units`
    FROM (
      SELECT
        `t27`.`bin`,
        `t27`.`variant`,
        `t27`.`second_variant`,
        COUNT(*) AS `units`
      FROM (
        SELECT
          `t24`.`variant`,
          `t24`.`variant_right` AS `second_variant`,
          CAST(FLOOR(
            TRY_DIVIDE(
              UNIX_TIMESTAMP(CAST(GREATEST(`t24`.`first_ts`, `t24`.`first_ts_right`) AS TIMESTAMP)),
              3600
            )
          ) AS BIGINT) AS `bin`
        FROM `t23` AS `t24`
        WHERE
          `t24`.`variant` < `t24`.`variant_right`
      ) AS `t27`
      GROUP BY
        1,
        2,
        3
    ) AS `t28`
  ) AS `t29`
) AS `t33`
LIMIT 5000001;
