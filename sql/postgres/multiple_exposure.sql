-- units seen under more than one variant (check_multiple_exposure on its own)
WITH "t1" AS (
  SELECT DISTINCT
    "t0"."variant",
    "t0"."unit_id" AS "unit"
  FROM "exposures" AS "t0"
  WHERE
    "t0"."ts" IS NOT NULL
    AND "t0"."variant" IS NOT NULL
    AND "t0"."unit_id" IS NOT NULL
), "t4" AS (
  SELECT
    "t2"."unit",
    COUNT(*) AS "variants"
  FROM "t1" AS "t2"
  GROUP BY
    1
)
SELECT
  "t9"."units",
  "t9"."multiple",
  "t15"."first_variant",
  "t15"."second_variant",
  "t15"."pair_units"
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
        "t3"."variant",
        "t3"."unit",
        "t11"."variant" AS "variant_right"
      FROM "t1" AS "t3"
      INNER JOIN (
        SELECT
          "t5"."unit"
        FROM "t4" AS "t5"
        WHERE
          "t5"."variants" > 1
      ) AS "t7"
        ON "t3"."unit" = "t7"."unit"
      INNER JOIN (
        SELECT
          "t3"."variant",
          "t3"."unit"
        FROM "t1" AS "t3"
        INNER JOIN (
          SELECT
            "t5"."unit"
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
    1,
    2
) AS "t15"
  ON TRUE;
