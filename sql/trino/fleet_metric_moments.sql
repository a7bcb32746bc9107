-- every guarded experiment at once (check_all with guardrails): per-variant moments of every metric grouped by experiment, for the same experiments
SELECT
  "t8"."experiment",
  "t8"."variant",
  COUNT(*) FILTER(WHERE
    (
      "t8"."value__load_ms" IS NOT NULL
    )
    AND NOT (
      ABS("t8"."value__load_ms") <= CAST(1.7976931348623157e+308 AS DOUBLE)
    )) AS "nonfinite__load_ms",
  COUNT(*) FILTER(WHERE
    "t8"."value__load_ms" IS NOT NULL) AS "m0__n",
  MAX("t8"."shift__load_ms__") AS "m0__shift",
  AVG("t8"."value__load_ms" - "t8"."shift__load_ms__") FILTER(WHERE
    "t8"."value__load_ms" IS NOT NULL) AS "m0__numerator_mean",
  VARIANCE("t8"."value__load_ms" - "t8"."shift__load_ms__") FILTER(WHERE
    "t8"."value__load_ms" IS NOT NULL) AS "m0__numerator_var"
FROM (
  SELECT
    "t6"."experiment",
    "t6"."variant",
    "t6"."unit__key",
    "t6"."value__load_ms",
    "t7"."shift__load_ms__"
  FROM (
    SELECT
      "t3"."experiment",
      "t3"."variant",
      "t3"."unit_id" AS "unit__key",
      SUM("t3"."load_ms") AS "value__load_ms"
    FROM (
      SELECT
        *
      FROM "exposures" AS "t0"
      WHERE
        "t0"."variant" IS NOT NULL
        AND "t0"."unit_id" IS NOT NULL
        AND "t0"."experiment" IS NOT NULL
        AND (
          (
            (
              "t0"."experiment" = 'checkout-redesign'
            )
            AND (
              "t0"."ts" >= CAST(FROM_ISO8601_TIMESTAMP('2026-01-05T00:00:00') AS TIMESTAMP)
            )
          )
          OR NOT (
            "t0"."experiment" IN ('checkout-redesign')
          )
        )
    ) AS "t3"
    GROUP BY
      1,
      2,
      3
  ) AS "t6"
  CROSS JOIN (
    SELECT
      COALESCE(MAX("t2"."value"), CAST(0.0 AS DOUBLE)) AS "shift__load_ms__"
    FROM (
      SELECT
        "t0"."load_ms" AS "value"
      FROM "exposures" AS "t0"
      WHERE
        ABS("t0"."load_ms") <= CAST(1.7976931348623157e+308 AS DOUBLE)
      LIMIT 1
    ) AS "t2"
  ) AS "t7"
) AS "t8"
GROUP BY
  1,
  2;
