-- traffic matrix: active and first-exposure units per bin and variant (traffic anomaly, chi-square and anytime-valid SRM)
WITH "t1" AS (
  SELECT
    "t0"."ts" AS "ts",
    "t0"."variant" AS "variant",
    "t0"."unit_id" AS "unit"
  FROM "exposures" AS "t0"
  WHERE
    isNotNull("t0"."ts") AND isNotNull("t0"."variant") AND isNotNull("t0"."unit_id")
)
SELECT
  "t6"."bin" AS "bin",
  "t6"."variant" AS "variant",
  "t6"."active" AS "active",
  COALESCE("t9"."new", 0) AS "new"
FROM (
  SELECT
    "t4"."bin" AS "bin",
    "t4"."variant" AS "variant",
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
  ) AS "t4"
  GROUP BY
    "t4"."bin",
    "t4"."variant"
) AS "t6"
LEFT OUTER JOIN (
  SELECT
    "t7"."bin" AS "bin",
    "t7"."variant" AS "variant",
    COUNT(*) AS "new"
  FROM (
    SELECT
      CAST(FLOOR(toRelativeSecondNum("t3"."first_ts") / 3600) AS Nullable(Int64)) AS "bin",
      "t3"."variant" AS "variant"
    FROM (
      SELECT
        "t2"."variant" AS "variant",
        "t2"."unit" AS "unit",
        MIN("t2"."ts") AS "first_ts"
      FROM "t1" AS "t2"
      GROUP BY
        "t2"."variant",
        "t2"."unit"
    ) AS "t3"
  ) AS "t7"
  GROUP BY
    "t7"."bin",
    "t7"."variant"
) AS "t9"
  ON "t6"."bin" = "t9"."bin" AND "t6"."variant" = "t9"."variant"
LIMIT 5000001;
