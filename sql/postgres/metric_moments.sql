-- per-variant moments of every metric (calculate_metrics, guardrails)
SELECT
  "t8"."variant",
  COUNT(*) FILTER(WHERE
    (
      "t8"."value__load_ms" IS NOT NULL
    )
    AND NOT (
      ABS("t8"."value__load_ms") <= 1.7976931348623157e+308
    )) AS "nonfinite__load_ms",
  COUNT(*) FILTER(WHERE
    "t8"."value__load_ms" IS NOT NULL) AS "m0__n",
  MAX("t8"."shift__load_ms__") AS "m0__shift",
  AVG("t8"."value__load_ms" - "t8"."shift__load_ms__") FILTER(WHERE
    "t8"."value__load_ms" IS NOT NULL) AS "m0__numerator_mean",
  VAR_SAMP("t8"."value__load_ms" - "t8"."shift__load_ms__") FILTER(WHERE
    "t8"."value__load_ms" IS NOT NULL) AS "m0__numerator_var"
FROM (
  SELECT
    "t5"."variant",
    "t5"."unit__key",
    "t5"."value__load_ms",
    "t7"."shift__load_ms__"
  FROM (
    SELECT
      "t1"."variant",
      "t1"."unit_id" AS "unit__key",
      SUM("t1"."load_ms") AS "value__load_ms"
    FROM (
      SELECT
        *
      FROM "exposures" AS "t0"
      WHERE
        "t0"."variant" IS NOT NULL AND "t0"."unit_id" IS NOT NULL
    ) AS "t1"
    GROUP BY
      1,
      2
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
  1;
