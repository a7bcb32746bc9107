-- every experiment at once (check_all): the traffic matrix and multiple exposure grouped by experiment, for a configured experiment 'checkout-redesign' from 2026-01-05 00:00:00+00:00 on and every experiment the config does not list
WITH `t1` AS (
  SELECT
    `t0`.`ts`,
    `t0`.`variant`,
    `t0`.`unit_id` AS `unit`,
    `t0`.`experiment`
  FROM `exposures` AS `t0`
  WHERE
    `t0`.`ts` IS NOT NULL
    AND `t0`.`variant` IS NOT NULL
    AND `t0`.`unit_id` IS NOT NULL
    AND `t0`.`experiment` IS NOT NULL
    AND (
      (
        (
          `t0`.`experiment` = 'checkout-redesign'
        )
        AND (
          `t0`.`ts` >= DATETIME('2026-01-05T00:00:00')
        )
      )
      OR NOT (
        `t0`.`experiment` IN ('checkout-redesign')
      )
    )
), `t3` AS (
  SELECT
    `t2`.`experiment`,
    `t2`.`variant`,
    `t2`.`unit`,
    MIN(`t2`.`ts`) AS `first_ts`
  FROM `t1` AS `t2`
  GROUP BY
    1,
    2,
    3
), `t7` AS (
  SELECT
    `t4`.`experiment`,
    `t4`.`unit`,
    MIN(`t4`.`first_ts`) AS `at`,
    COUNT(*) AS `variants`
  FROM `t3` AS `t4`
  GROUP BY
    1,
    2
), `t23` AS (
  SELECT
    `t6`.`experiment`,
    `t6`.`unit`,
    `t6`.`variant`,
    `t6`.`first_ts`,
    `t21`.`variant` AS `variant_right`,
    `t21`.`first_ts` AS `first_ts_right`
  FROM `t3` AS `t6`
  INNER JOIN (
    SELECT
      `t9`.`experiment`,
      `t9`.`unit`,
      `t9`.`variants`
    FROM `t7` AS `t9`
    WHERE
      `t9`.`variants` > 1
  ) AS `t14`
    ON `t6`.`experiment` = `t14`.`experiment` AND `t6`.`unit` = `t14`.`unit`
  INNER JOIN (
    SELECT
      `t6`.`experiment`,
      `t6`.`unit`,
      `t6`.`variant`,
      `t6`.`first_ts`
    FROM `t3` AS `t6`
    INNER JOIN (
      SELECT
        `t9`.`experiment`,
        `t9`.`unit`,
        `t9`.`variants`
      FROM `t7` AS `t9`
      WHERE
        `t9`.`variants` > 1
    ) AS `t14`
      ON `t6`.`experiment` = `t14`.`experiment` AND `t6`.`unit` = `t14`.`unit`
  ) AS `t21`
    ON `t6`.`experiment` = `t21`.`experiment` AND `t6`.`unit` = `t21`.`unit`
)
SELECT
  *
FROM (
  SELECT
    *
  FROM (
    SELECT
      `t10`.`experiment`,
      'matrix' AS `part`,
      `t10`.`bin`,
      `t10`.`variant`,
      CAST(NULL AS STRING) AS `second_variant`,
      `t10`.`active`,
      COALESCE(`t15`.`new`, 0) AS `new`,
      CAST(NULL AS INT64) AS `units`,
      `t10`.`last_ts`
    FROM (
      SELECT
        `t5`.`experiment`,
        `t5`.`bin`,
        `t5`.`variant`,
        COUNT(*) AS `active`,
        MAX(`t5`.`last_ts`) AS `last_ts`
      FROM (
        SELECT
          `t2`.`experiment`,
          CAST(FLOOR(ieee_divide(UNIX_SECONDS(`t2`.`ts`), 3600)) AS INT64) AS `bin`,
          `t2`.`variant`,
          `t2`.`unit`,
          MAX(`t2`.`ts`) AS `last_ts`
        FROM `t1` AS `t2`
        GROUP BY
          1,
          2,
          3,
          4
      ) AS `t5`
      GROUP BY
        1,
        2,
        3
    ) AS `t10`
    LEFT OUTER JOIN (
      SELECT
        `t11`.`experiment`,
        `t11`.`bin`,
        `t11`.`variant`,
        COUNT(*) AS `new`
      FROM (
        SELECT
          `t4`.`experiment`,
          CAST(FLOOR(ieee_divide(UNIX_SECONDS(`t4`.`first_ts`), 3600)) AS INT64) AS `bin`,
          `t4`.`variant`
        FROM `t3` AS `t4`
      ) AS `t11`
      GROUP BY
        1,
        2,
        3
    ) AS `t15`
      ON `t10`.`experiment` = `t15`.`experiment`
      AND `t10`.`bin` = `t15`.`bin`
      AND `t10`.`variant` = `t15`.`variant`
  ) AS `t19`
  UNION ALL
  SELECT
    *
  FROM (
    SELECT
      `t17`.`experiment`,
      'units' AS `part`,
      `t17`.`bin`,
      CAST(NULL AS STRING) AS `variant`,
      CAST(NULL AS STRING) AS `second_variant`,
      CAST(NULL AS INT64) AS `active`,
      CAST(NULL AS INT64) AS `new`,
      `t17`.`units`,
      CAST(NULL AS DATETIME) AS `last_ts`
    FROM (
      SELECT
        `t16`.`experiment`,
        `t16`.`bin`,
        COUNT(*) AS `units`
      FROM (
        SELECT
          `t9`.`experiment`,
          CAST(FLOOR(ieee_divide(UNIX_SECONDS(`t9`.`at`), 3600)) AS INT64) AS `bin`
        FROM `t7` AS `t9`
      ) AS `t16`
      GROUP BY
        1,
        2
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
      `t31`.`experiment`,
      'multiple' AS `part`,
      `t31`.`bin`,
      CAST(NULL AS STRING) AS `variant`,
      CAST(NULL AS STRING) AS `second_variant`,
      CAST(NULL AS INT64) AS `active`,
      CAST(NULL AS INT64) AS `new`,
      `t31`.`units`,
      CAST(NULL AS DATETIME) AS `last_ts`
    FROM (
      SELECT
        `t30`.`experiment`,
        `t30`.`bin`,
        COUNT(*) AS `units`
      FROM (
        SELECT
          `t26`.`experiment`,
          CAST(FLOOR(ieee_divide(UNIX_SECONDS(`t26`.`at`), 3600)) AS INT64) AS `bin`
        FROM (
          SELECT
            `t25`.`experiment`,
            `t25`.`unit`,
            MIN(`t25`.`at`) AS `at`
          FROM (
            SELECT
              `t24`.`experiment`,
              `t24`.`unit`,
              `t24`.`variant`,
              `t24`.`variant_right` AS `second_variant`,
              GREATEST(`t24`.`first_ts`, `t24`.`first_ts_right`) AS `at`
            FROM `t23` AS `t24`
            WHERE
              `t24`.`variant` < `t24`.`variant_right`
          ) AS `t25`
          GROUP BY
            1,
            2
        ) AS `t26`
      ) AS `t30`
      GROUP BY
        1,
        2
    ) AS `t31`
  ) AS `t32`
  UNION ALL
  SELECT
    *
  FROM (
    SELECT
      `t28`.`experiment`,
      'pair' AS `part`,
      `t28`.`bin`,
      `t28`.`variant`,
      `t28`.`second_variant`,
      CAST(NULL AS INT64) AS `active`,
      CAST(NULL AS INT64) AS `new`,
      `t28`.`units`,
      CAST(NULL AS DATETIME) AS `last_ts`
    FROM (
      SELECT
        `t27`.`experiment`,
        `t27`.`bin`,
        `t27`.`variant`,
        `t27`.`second_variant`,
        COUNT(*) AS `units`
      FROM (
        SELECT
          `t24`.`experiment`,
          `t24`.`variant`,
          `t24`.`variant_right` AS `second_variant`,
          CAST(FLOOR(
            ieee_divide(UNIX_SECONDS(GREATEST(`t24`.`first_ts`, `t24`.`first_ts_right`)), 3600)
          ) AS INT64) AS `bin`
        FROM `t23` AS `t24`
        WHERE
          `t24`.`variant` < `t24`.`variant_right`
      ) AS `t27`
      GROUP BY
        1,
        2,
        3,
        4
    ) AS `t28`
  ) AS `t29`
) AS `t33`;
