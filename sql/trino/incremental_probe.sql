-- a later run with state= on a warehouse: the bins from the window start (2026-01-05 00:00:00+00:00) on, new units decided against the earlier rows of the same table; counts only
WITH "t1" AS (
  SELECT
    "t0"."ts",
    "t0"."variant",
    "t0"."unit_id" AS "unit"
  FROM "exposures" AS "t0"
  WHERE
    "t0"."ts" IS NOT NULL
    AND "t0"."variant" IS NOT NULL
    AND "t0"."unit_id" IS NOT NULL
    AND "t0"."ts" >= CAST(FROM_ISO8601_TIMESTAMP('2026-01-05T00:00:00') AS TIMESTAMP)
), "t5" AS (
  SELECT
    "t3"."variant",
    "t3"."unit",
    MIN("t3"."ts") AS "first_ts"
  FROM "t1" AS "t3"
  GROUP BY
    1,
    2
), "t17" AS (
  SELECT
    "t16"."variant",
    "t16"."unit",
    MIN("t16"."first_ts") AS "first_ts"
  FROM (
    SELECT
      *
    FROM (
      SELECT
        *
      FROM "t5" AS "t6"
    ) AS "t9"
    UNION ALL
    SELECT
      *
    FROM (
      SELECT
        *
      FROM (
        SELECT
          "t13"."variant",
          "t13"."unit",
          MIN("t13"."ts") AS "first_ts"
        FROM (
          SELECT
            "t4"."ts",
            "t4"."variant",
            "t4"."unit"
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
              AND "t0"."ts" < CAST(FROM_ISO8601_TIMESTAMP('2026-01-05T00:00:00') AS TIMESTAMP)
          ) AS "t4"
          WHERE
            EXISTS(
              SELECT
                1
              FROM (
                SELECT
                  "t6"."unit"
                FROM "t5" AS "t6"
              ) AS "t10"
              WHERE
                "t4"."unit" = "t10"."unit"
            )
        ) AS "t13"
        GROUP BY
          1,
          2
      ) AS "t14"
    ) AS "t15"
  ) AS "t16"
  GROUP BY
    1,
    2
), "t20" AS (
  SELECT
    "t18"."unit",
    MIN("t18"."first_ts") AS "at",
    COUNT(*) AS "variants"
  FROM "t17" AS "t18"
  GROUP BY
    1
), "t34" AS (
  SELECT
    "t19"."unit",
    "t19"."variant",
    "t19"."first_ts",
    "t32"."variant" AS "variant_right",
    "t32"."first_ts" AS "first_ts_right"
  FROM "t17" AS "t19"
  INNER JOIN (
    SELECT
      "t21"."unit",
      "t21"."variants"
    FROM "t20" AS "t21"
    WHERE
      "t21"."variants" > 1
  ) AS "t25"
    ON "t19"."unit" = "t25"."unit"
  INNER JOIN (
    SELECT
      "t19"."unit",
      "t19"."variant",
      "t19"."first_ts"
    FROM "t17" AS "t19"
    INNER JOIN (
      SELECT
        "t21"."unit",
        "t21"."variants"
      FROM "t20" AS "t21"
      WHERE
        "t21"."variants" > 1
    ) AS "t25"
      ON "t19"."unit" = "t25"."unit"
  ) AS "t32"
    ON "t19"."unit" = "t32"."unit"
)
SELECT
  *
FROM (
  SELECT
    *
  FROM (
    SELECT
      'matrix' AS "part",
      "t12"."bin",
      "t12"."variant",
      CAST(NULL AS VARCHAR) AS "second_variant",
      "t12"."active",
      COALESCE("t26"."new", 0) AS "new",
      CAST(NULL AS BIGINT) AS "units",
      "t12"."last_ts"
    FROM (
      SELECT
        "t7"."bin",
        "t7"."variant",
        COUNT(*) AS "active",
        MAX("t7"."last_ts") AS "last_ts"
      FROM (
        SELECT
          CAST(FLOOR(CAST(TO_UNIXTIME("t3"."ts") AS DOUBLE) / 3600) AS BIGINT) AS "bin",
          "t3"."variant",
          "t3"."unit",
          MAX("t3"."ts") AS "last_ts"
        FROM "t1" AS "t3"
        GROUP BY
          1,
          2,
          3
      ) AS "t7"
      GROUP BY
        1,
        2
    ) AS "t12"
    LEFT OUTER JOIN (
      SELECT
        "t22"."bin",
        "t22"."variant",
        COUNT(*) AS "new"
      FROM (
        SELECT
          CAST(FLOOR(CAST(TO_UNIXTIME("t18"."first_ts") AS DOUBLE) / 3600) AS BIGINT) AS "bin",
          "t18"."variant"
        FROM "t17" AS "t18"
        WHERE
          "t18"."first_ts" >= CAST(FROM_ISO8601_TIMESTAMP('2026-01-05T00:00:00') AS TIMESTAMP)
      ) AS "t22"
      GROUP BY
        1,
        2
    ) AS "t26"
      ON "t12"."bin" = "t26"."bin" AND "t12"."variant" = "t26"."variant"
  ) AS "t30"
  UNION ALL
  SELECT
    *
  FROM (
    SELECT
      'units' AS "part",
      "t28"."bin",
      CAST(NULL AS VARCHAR) AS "variant",
      CAST(NULL AS VARCHAR) AS "second_variant",
      CAST(NULL AS BIGINT) AS "active",
      CAST(NULL AS BIGINT) AS "new",
      "t28"."units",
      CAST(NULL AS TIMESTAMP) AS "last_ts"
    FROM (
      SELECT
        "t27"."bin",
        COUNT(*) AS "units"
      FROM (
        SELECT
          CAST(FLOOR(CAST(TO_UNIXTIME("t21"."at") AS DOUBLE) / 3600) AS BIGINT) AS "bin"
        FROM "t20" AS "t21"
        WHERE
          "t21"."at" >= CAST(FROM_ISO8601_TIMESTAMP('2026-01-05T00:00:00') AS TIMESTAMP)
      ) AS "t27"
      GROUP BY
        1
    ) AS "t28"
  ) AS "t31"
) AS "t33"
UNION ALL
SELECT
  *
FROM (
  SELECT
    *
  FROM (
    SELECT
      'multiple' AS "part",
      "t42"."bin",
      CAST(NULL AS VARCHAR) AS "variant",
      CAST(NULL AS VARCHAR) AS "second_variant",
      CAST(NULL AS BIGINT) AS "active",
      CAST(NULL AS BIGINT) AS "new",
      "t42"."units",
      CAST(NULL AS TIMESTAMP) AS "last_ts"
    FROM (
      SELECT
        "t41"."bin",
        COUNT(*) AS "units"
      FROM (
        SELECT
          CAST(FLOOR(CAST(TO_UNIXTIME("t37"."at") AS DOUBLE) / 3600) AS BIGINT) AS "bin"
        FROM (
          SELECT
            "t36"."unit",
            MIN("t36"."at") AS "at"
          FROM (
            SELECT
              "t35"."unit",
              "t35"."variant",
              "t35"."variant_right" AS "second_variant",
              GREATEST("t35"."first_ts", "t35"."first_ts_right") AS "at"
            FROM "t34" AS "t35"
            WHERE
              "t35"."variant" < "t35"."variant_right"
          ) AS "t36"
          GROUP BY
            1
        ) AS "t37"
        WHERE
          "t37"."at" >= CAST(FROM_ISO8601_TIMESTAMP('2026-01-05T00:00:00') AS TIMESTAMP)
      ) AS "t41"
      GROUP BY
        1
    ) AS "t42"
  ) AS "t43"
  UNION ALL
  SELECT
    *
  FROM (
    SELECT
      'pair' AS "part",
      "t39"."bin",
      "t39"."variant",
      "t39"."second_variant",
      CAST(NULL AS BIGINT) AS "active",
      CAST(NULL AS BIGINT) AS "new",
      "t39"."units",
      CAST(NULL AS TIMESTAMP) AS "last_ts"
    FROM (
      SELECT
        "t38"."bin",
        "t38"."variant",
        "t38"."second_variant",
        COUNT(*) AS "units"
      FROM (
        SELECT
          "t35"."variant",
          "t35"."variant_right" AS "second_variant",
          CAST(FLOOR(
            CAST(TO_UNIXTIME(GREATEST("t35"."first_ts", "t35"."first_ts_right")) AS DOUBLE) / 3600
          ) AS BIGINT) AS "bin"
        FROM "t34" AS "t35"
        WHERE
          "t35"."variant" < "t35"."variant_right"
          AND GREATEST("t35"."first_ts", "t35"."first_ts_right") >= CAST(FROM_ISO8601_TIMESTAMP('2026-01-05T00:00:00') AS TIMESTAMP)
      ) AS "t38"
      GROUP BY
        1,
        2,
        3
    ) AS "t39"
  ) AS "t40"
) AS "t44";
