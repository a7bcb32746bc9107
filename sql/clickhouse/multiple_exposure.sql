-- units seen under more than one variant (check_multiple_exposure on its own)
WITH "t1" AS (
  SELECT DISTINCT
    "t0"."variant" AS "variant",
    "t0"."unit_id" AS "unit"
  FROM "exposures" AS "t0"
  WHERE
    isNotNull("t0"."ts") AND isNotNull("t0"."variant") AND isNotNull("t0"."unit_id")
), "t4" AS (
  SELECT
    "t2"."unit" AS "unit",
    COUNT(*) AS "variants"
  FROM "t1" AS "t2"
  GROUP BY
    "t2"."unit"
)
SELECT
  "t9"."units" AS "units",
  "t9"."multiple" AS "multiple",
  "t15"."first_variant" AS "first_variant",
  "t15"."second_variant" AS "second_variant",
  "t15"."pair_units" AS "pair_units"
FROM (
  SELECT
    COUNT(*) AS "units",
    SUM(CASE WHEN "t5"."variants" > 1 THEN 1 ELSE 0 END) AS "multiple"
  FROM "t4" AS "t5"
) AS "t9"
LEFT OUTER JOIN (
  SELECT
    "t13"."variant" AS "first_variant",
    "t13"."variant_right" AS "second_variant",
    COUNT(*) AS "pair_units"
  FROM (
    SELECT
      *
    FROM (
      SELECT
        "t3"."variant" AS "variant",
        "t3"."unit" AS "unit",
        "t11"."variant" AS "variant_right"
      FROM "t1" AS "t3"
      INNER JOIN (
        SELECT
          "t5"."unit" AS "unit"
        FROM "t4" AS "t5"
        WHERE
          "t5"."variants" > 1
      ) AS "t7"
        ON "t3"."unit" = "t7"."unit"
      INNER JOIN (
        SELECT
          "t3"."variant" AS "variant",
          "t3"."unit" AS "unit"
        FROM "t1" AS "t3"
        INNER JOIN (
          SELECT
            "t5"."unit" AS "unit"
          FROM "t4" AS "t5"
          WHERE
            "t5"."variants" > 1
        ) AS "t7"
          ON "t3"."unit" = "t7"."unit"
      ) AS "t11"
        ON "t3"."unit" = "t11"."unit"
    ) AS "t12"
    WHERE
      "t12"."variant" < "t12"."variant_right"
  ) AS "t13"
  GROUP BY
    "t13"."variant",
    "t13"."variant_right"
) AS "t15"
  ON TRUE;
