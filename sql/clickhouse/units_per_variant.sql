-- distinct units per variant (check_live_srm on its own)
SELECT
  "t1"."variant" AS "variant",
  uniq("t1"."unit") AS "units"
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
  "t1"."variant";
