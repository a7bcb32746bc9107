-- traffic matrix: active and first-exposure units per bin and variant (traffic anomaly, chi-square and anytime-valid SRM)
SELECT
  "t5"."bin" AS "bin",
  "t5"."variant" AS "variant",
  "t5"."active" AS "active",
  COALESCE("t8"."new", 0) AS "new"
FROM (
  SELECT
    "t2"."bin" AS "bin",
    "t2"."variant" AS "variant",
    COUNT(*) AS "active"
  FROM (
    SELECT DISTINCT
      CAST(FLOOR(toRelativeSecondNum("t0"."ts") / 3600) AS Nullable(Int64)) AS "bin",
      "t0"."variant" AS "variant",
      "t0"."unit_id" AS "unit"
    FROM "exposures" AS "t0"
    WHERE
      isNotNull("t0"."ts") AND isNotNull("t0"."variant") AND isNotNull("t0"."unit_id")
  ) AS "t2"
  GROUP BY
    "t2"."bin",
    "t2"."variant"
) AS "t5"
LEFT OUTER JOIN (
  SELECT
    "t6"."bin" AS "bin",
    "t6"."variant" AS "variant",
    COUNT(*) AS "new"
  FROM (
    SELECT
      CAST(FLOOR(toRelativeSecondNum("t3"."first_ts") / 3600) AS Nullable(Int64)) AS "bin",
      "t3"."variant" AS "variant"
    FROM (
      SELECT
        "t1"."variant" AS "variant",
        "t1"."unit" AS "unit",
        MIN("t1"."ts") AS "first_ts"
      FROM (
        SELECT
          "t0"."ts" AS "ts",
          "t0"."variant" AS "variant",
          "t0"."unit_id" AS "unit"
        FROM "exposures" AS "t0"
        WHERE
          isNotNull("t0"."ts") AND isNotNull("t0"."variant") AND isNotNull("t0"."unit_id")
      ) AS "t1"
      GROUP BY
        "t1"."variant",
        "t1"."unit"
    ) AS "t3"
  ) AS "t6"
  GROUP BY
    "t6"."bin",
    "t6"."variant"
) AS "t8"
  ON "t5"."bin" = "t8"."bin" AND "t5"."variant" = "t8"."variant";
