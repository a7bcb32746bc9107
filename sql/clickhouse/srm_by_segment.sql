-- distinct units per segment and variant, and per variant overall (check_srm_by)
WITH "t2" AS (
  SELECT
    "t1"."dim0" AS "dim0",
    "t1"."variant" AS "variant",
    "t1"."unit" AS "unit"
  FROM (
    SELECT
      "t0"."ts" AS "ts",
      "t0"."variant" AS "variant",
      "t0"."unit_id" AS "unit",
      "t0"."platform" AS "dim0"
    FROM "exposures" AS "t0"
    WHERE
      isNotNull("t0"."ts") AND isNotNull("t0"."variant") AND isNotNull("t0"."unit_id")
  ) AS "t1"
  GROUP BY
    "t1"."dim0",
    "t1"."variant",
    "t1"."unit"
)
SELECT
  *
FROM (
  SELECT
    'segment' AS "part",
    "t4"."dim0" AS "dim0",
    "t4"."variant" AS "variant",
    "t4"."units" AS "units"
  FROM (
    SELECT
      "t3"."dim0" AS "dim0",
      "t3"."variant" AS "variant",
      COUNT(*) AS "units"
    FROM "t2" AS "t3"
    GROUP BY
      "t3"."dim0",
      "t3"."variant"
  ) AS "t4"
) AS "t6"
UNION ALL
SELECT
  *
FROM (
  SELECT
    'overall' AS "part",
    CAST(NULL AS Nullable(String)) AS "dim0",
    "t7"."variant" AS "variant",
    "t7"."units" AS "units"
  FROM (
    SELECT
      "t5"."variant" AS "variant",
      COUNT(*) AS "units"
    FROM (
      SELECT DISTINCT
        "t3"."variant" AS "variant",
        "t3"."unit" AS "unit"
      FROM "t2" AS "t3"
    ) AS "t5"
    GROUP BY
      "t5"."variant"
  ) AS "t7"
) AS "t8";
