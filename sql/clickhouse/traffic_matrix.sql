-- traffic matrix: active and first-exposure units per bin and variant, with the multiple-exposure events per bin (run_telemetry_checks: traffic anomaly, chi-square, anytime-valid SRM, MULTIPLE_EXPOSURE)
SELECT
  *
FROM (
  WITH "t1" AS (
    SELECT
      "t0"."ts" AS "ts",
      "t0"."variant" AS "variant",
      "t0"."unit_id" AS "unit"
    FROM "exposures" AS "t0"
    WHERE
      isNotNull("t0"."ts") AND isNotNull("t0"."variant") AND isNotNull("t0"."unit_id")
  ), "t3" AS (
    SELECT
      "t2"."variant" AS "variant",
      "t2"."unit" AS "unit",
      MIN("t2"."ts") AS "first_ts"
    FROM "t1" AS "t2"
    GROUP BY
      "t2"."variant",
      "t2"."unit"
  ), "t8" AS (
    SELECT
      "t4"."unit" AS "unit",
      MIN("t4"."first_ts") AS "at",
      COUNT(*) AS "variants"
    FROM "t3" AS "t4"
    GROUP BY
      "t4"."unit"
  ), "t23" AS (
    SELECT
      "t6"."unit" AS "unit",
      "t6"."variant" AS "variant",
      "t6"."first_ts" AS "first_ts",
      "t21"."variant" AS "variant_right",
      "t21"."first_ts" AS "first_ts_right"
    FROM "t3" AS "t6"
    INNER JOIN (
      SELECT
        "t10"."unit" AS "unit",
        "t10"."variants" AS "variants"
      FROM "t8" AS "t10"
      WHERE
        "t10"."variants" > 1
    ) AS "t14"
      ON "t6"."unit" = "t14"."unit"
    INNER JOIN (
      SELECT
        "t6"."unit" AS "unit",
        "t6"."variant" AS "variant",
        "t6"."first_ts" AS "first_ts"
      FROM "t3" AS "t6"
      INNER JOIN (
        SELECT
          "t10"."unit" AS "unit",
          "t10"."variants" AS "variants"
        FROM "t8" AS "t10"
        WHERE
          "t10"."variants" > 1
      ) AS "t14"
        ON "t6"."unit" = "t14"."unit"
    ) AS "t21"
      ON "t6"."unit" = "t21"."unit"
  )
  SELECT
    *
  FROM (
    SELECT
      *
    FROM (
      SELECT
        'matrix' AS "part",
        "t9"."bin" AS "bin",
        "t9"."variant" AS "variant",
        CAST(NULL AS Nullable(String)) AS "second_variant",
        "t9"."active" AS "active",
        COALESCE("t15"."new", 0) AS "new",
        CAST(NULL AS Nullable(Int64)) AS "units"
      FROM (
        SELECT
          "t5"."bin" AS "bin",
          "t5"."variant" AS "variant",
          COUNT(*) AS "active"
        FROM (
          SELECT
            CAST(FLOOR(toRelativeSecondNum("t2"."ts") / 3600) AS Nullable(Int64)) AS "bin",
            "t2"."variant" AS "variant",
            "t2"."unit" AS "unit"
          FROM "t1" AS "t2"
          GROUP BY
            CAST(FLOOR(toRelativeSecondNum("t2"."ts") / 3600) AS Nullable(Int64)),
            "t2"."variant",
            "t2"."unit"
        ) AS "t5"
        GROUP BY
          "t5"."bin",
          "t5"."variant"
      ) AS "t9"
      LEFT OUTER JOIN (
        SELECT
          "t11"."bin" AS "bin",
          "t11"."variant" AS "variant",
          COUNT(*) AS "new"
        FROM (
          SELECT
            CAST(FLOOR(toRelativeSecondNum("t4"."first_ts") / 3600) AS Nullable(Int64)) AS "bin",
            "t4"."variant" AS "variant"
          FROM "t3" AS "t4"
        ) AS "t11"
        GROUP BY
          "t11"."bin",
          "t11"."variant"
      ) AS "t15"
        ON "t9"."bin" = "t15"."bin" AND "t9"."variant" = "t15"."variant"
    ) AS "t19"
    UNION ALL
    SELECT
      *
    FROM (
      SELECT
        'units' AS "part",
        "t17"."bin" AS "bin",
        CAST(NULL AS Nullable(String)) AS "variant",
        CAST(NULL AS Nullable(String)) AS "second_variant",
        CAST(NULL AS Nullable(Int64)) AS "active",
        CAST(NULL AS Nullable(Int64)) AS "new",
        "t17"."units" AS "units"
      FROM (
        SELECT
          "t16"."bin" AS "bin",
          COUNT(*) AS "units"
        FROM (
          SELECT
            CAST(FLOOR(toRelativeSecondNum("t10"."at") / 3600) AS Nullable(Int64)) AS "bin"
          FROM "t8" AS "t10"
        ) AS "t16"
        GROUP BY
          "t16"."bin"
      ) AS "t17"
    ) AS "t20"
  ) AS "t22"
  UNION ALL
  SELECT
    *
  FROM (
    SELECT
      *
    FROM (
      SELECT
        'multiple' AS "part",
        "t31"."bin" AS "bin",
        CAST(NULL AS Nullable(String)) AS "variant",
        CAST(NULL AS Nullable(String)) AS "second_variant",
        CAST(NULL AS Nullable(Int64)) AS "active",
        CAST(NULL AS Nullable(Int64)) AS "new",
        "t31"."units" AS "units"
      FROM (
        SELECT
          "t30"."bin" AS "bin",
          COUNT(*) AS "units"
        FROM (
          SELECT
            CAST(FLOOR(toRelativeSecondNum("t26"."at") / 3600) AS Nullable(Int64)) AS "bin"
          FROM (
            SELECT
              "t25"."unit" AS "unit",
              MIN("t25"."at") AS "at"
            FROM (
              SELECT
                "t24"."unit" AS "unit",
                "t24"."variant" AS "variant",
                "t24"."variant_right" AS "second_variant",
                GREATEST("t24"."first_ts", "t24"."first_ts_right") AS "at"
              FROM "t23" AS "t24"
              WHERE
                "t24"."variant" < "t24"."variant_right"
            ) AS "t25"
            GROUP BY
              "t25"."unit"
          ) AS "t26"
        ) AS "t30"
        GROUP BY
          "t30"."bin"
      ) AS "t31"
    ) AS "t32"
    UNION ALL
    SELECT
      *
    FROM (
      SELECT
        'pair' AS "part",
        "t28"."bin" AS "bin",
        "t28"."variant" AS "variant",
        "t28"."second_variant" AS "second_variant",
        CAST(NULL AS Nullable(Int64)) AS "active",
        CAST(NULL AS Nullable(Int64)) AS "new",
        "t28"."units" AS "units"
      FROM (
        SELECT
          "t27"."bin" AS "bin",
          "t27"."variant" AS "variant",
          "t27"."second_variant" AS "second_variant",
          COUNT(*) AS "units"
        FROM (
          SELECT
            "t24"."variant" AS "variant",
            "t24"."variant_right" AS "second_variant",
            CAST(FLOOR(toRelativeSecondNum(GREATEST("t24"."first_ts", "t24"."first_ts_right")) / 3600) AS Nullable(Int64)) AS "bin"
          FROM "t23" AS "t24"
          WHERE
            "t24"."variant" < "t24"."variant_right"
        ) AS "t27"
        GROUP BY
          "t27"."bin",
          "t27"."variant",
          "t27"."second_variant"
      ) AS "t28"
    ) AS "t29"
  ) AS "t33"
) AS _l_0
LIMIT 5000001;
