-- distinct units per segment and variant (check_srm_by)
SELECT
  "t1"."dim0" AS "dim0",
  "t1"."variant" AS "variant",
  uniq("t1"."unit") AS "units"
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
  "t1"."variant";
