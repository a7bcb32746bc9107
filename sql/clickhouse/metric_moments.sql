-- per-variant moments of every metric (calculate_metrics, guardrails)
SELECT
  "t8"."variant" AS "variant",
  countIf(
    isNotNull("t8"."value__load_ms")
    AND NOT (
      ABS("t8"."value__load_ms") <= 1.7976931348623157e+308
    )
  ) AS "nonfinite__load_ms",
  countIf(isNotNull("t8"."value__load_ms")) AS "m0__n",
  MAX("t8"."shift__load_ms__") AS "m0__shift",
  avgIf("t8"."value__load_ms" - "t8"."shift__load_ms__", isNotNull("t8"."value__load_ms")) AS "m0__numerator_mean",
  varSampIf("t8"."value__load_ms" - "t8"."shift__load_ms__", isNotNull("t8"."value__load_ms")) AS "m0__numerator_var"
FROM (
  SELECT
    "t5"."variant" AS "variant",
    "t5"."unit__key" AS "unit__key",
    "t5"."value__load_ms" AS "value__load_ms",
    "t7"."shift__load_ms__" AS "shift__load_ms__"
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
  ) AS "t5"
  CROSS JOIN (
    SELECT
      COALESCE(MAX("t3"."value"), 0.0) AS "shift__load_ms__"
    FROM (
      SELECT
        "t0"."load_ms" AS "value"
      FROM "exposures" AS "t0"
      WHERE
        ABS("t0"."load_ms") <= 1.7976931348623157e+308
      LIMIT 1
    ) AS "t3"
  ) AS "t7"
) AS "t8"
GROUP BY
  "t8"."variant";
