-- traffic matrix: active and first-exposure units per bin and variant (traffic anomaly, chi-square and anytime-valid SRM)
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
)
SELECT
  "t6"."bin",
  "t6"."variant",
  "t6"."active",
  COALESCE("t9"."new", 0) AS "new"
FROM (
  SELECT
    "t4"."bin",
    "t4"."variant",
    COUNT(*) AS "active"
  FROM (
    SELECT
      CAST(FLOOR(DATE_PART('epoch', "t2"."ts") / 3600) AS BIGINT) AS "bin",
      "t2"."variant",
      "t2"."unit"
    FROM "t1" AS "t2"
    GROUP BY
      1,
      2,
      3
  ) AS "t4"
  GROUP BY
    1,
    2
) AS "t6"
LEFT OUTER JOIN (
  SELECT
    "t7"."bin",
    "t7"."variant",
    COUNT(*) AS "new"
  FROM (
    SELECT
      CAST(FLOOR(DATE_PART('epoch', "t3"."first_ts") / 3600) AS BIGINT) AS "bin",
      "t3"."variant"
    FROM (
      SELECT
        "t2"."variant",
        "t2"."unit",
        MIN("t2"."ts") AS "first_ts"
      FROM "t1" AS "t2"
      GROUP BY
        1,
        2
    ) AS "t3"
  ) AS "t7"
  GROUP BY
    1,
    2
) AS "t9"
  ON "t6"."bin" = "t9"."bin" AND "t6"."variant" = "t9"."variant"
LIMIT 5000001;
