-- per-variant moments of every metric (calculate_metrics, guardrails)
SELECT
  "t2"."variant" AS "variant",
  countIf(isNotNull("t2"."value__load_ms")) AS "m0__n",
  avgIf("t2"."value__load_ms", isNotNull("t2"."value__load_ms")) AS "m0__numerator_mean",
  varSampIf("t2"."value__load_ms", isNotNull("t2"."value__load_ms")) AS "m0__numerator_var"
FROM (
  SELECT
    "t1"."variant" AS "variant",
    "t1"."unit_id" AS "unit__key",
    SUM("t1"."load_ms") AS "value__load_ms"
  FROM (
    SELECT
      *
    FROM "exposures" AS "t0"
    WHERE
      isNotNull("t0"."variant") AND isNotNull("t0"."unit_id")
  ) AS "t1"
  GROUP BY
    "t1"."variant",
    "t1"."unit_id"
) AS "t2"
GROUP BY
  "t2"."variant";
