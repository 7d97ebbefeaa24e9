-- src.public.items -> src.items and src.items_history, rendered for duckdb
-- key: id; scratch tables: temp-per-segment

BEGIN;

-- segment 1: changes, some of them snapshot rows, some without unchanged TOAST values (name, price)

-- drop_stage: the previous segment's stage
DROP TABLE IF EXISTS "_cdc_stage";

-- load_stage: create the stage and bulk-load the segment
CREATE TEMPORARY TABLE "_cdc_stage" AS
SELECT
  CAST("id" AS BIGINT) AS "id",
  CAST("name" AS TEXT) AS "name",
  CAST("price" AS DECIMAL(12, 2)) AS "price",
  CAST("_cdc_valid_from" AS TIMESTAMPTZ) AS "_cdc_valid_from",
  CAST("_cdc_is_deleted" AS BOOLEAN) AS "_cdc_is_deleted",
  CAST("_cdc_op" AS TEXT) AS "_cdc_op",
  CAST("_cdc_source_pos" AS TEXT) AS "_cdc_source_pos",
  CAST("_cdc_tx_id" AS TEXT) AS "_cdc_tx_id",
  CAST("_cdc_unavailable" AS TEXT) AS "_cdc_unavailable"
FROM "_cdc_stage_arrow";

-- drop_unchanged_snapshot_rows: re-read rows equal to their key's previous version are no change (backfill)
DELETE FROM "_cdc_stage"
WHERE
  "_cdc_stage"."_cdc_op" = 'r'
  AND EXISTS(
    SELECT
      1
    FROM (
      SELECT
        "id",
        "name",
        "price",
        "_cdc_source_pos",
        "_cdc_is_deleted",
        "_cdc_op",
        LAG("_cdc_source_pos") OVER (PARTITION BY "id" ORDER BY "_cdc_source_pos") AS "_prev_pos",
        LAG("_cdc_is_deleted") OVER (PARTITION BY "id" ORDER BY "_cdc_source_pos") AS "_prev_deleted",
        LAG("name") OVER (PARTITION BY "id" ORDER BY "_cdc_source_pos") AS "_prev_0",
        LAG("price") OVER (PARTITION BY "id" ORDER BY "_cdc_source_pos") AS "_prev_1"
      FROM (
        SELECT
          "h"."id",
          "h"."name",
          "h"."price",
          "h"."_cdc_source_pos",
          "h"."_cdc_is_deleted",
          "h"."_cdc_op"
        FROM "src"."items_history" AS "h"
        WHERE
          EXISTS(
            SELECT
              1
            FROM "_cdc_stage" AS "k"
            WHERE
              "k"."id" = "h"."id"
          )
        UNION ALL
        SELECT
          "id",
          "name",
          "price",
          "_cdc_source_pos",
          "_cdc_is_deleted",
          "_cdc_op"
        FROM "_cdc_stage"
      ) AS "u"
    ) AS "p"
    WHERE
      "p"."id" = "_cdc_stage"."id"
      AND "p"."_cdc_source_pos" = "_cdc_stage"."_cdc_source_pos"
      AND "p"."_cdc_op" = 'r'
      AND NOT "p"."_prev_pos" IS NULL
      AND NOT "p"."_prev_deleted"
      AND "p"."name" IS NOT DISTINCT FROM "p"."_prev_0"
      AND "p"."price" IS NOT DISTINCT FROM "p"."_prev_1"
  );

-- remove_applied: drop staged versions history already has
DELETE FROM "_cdc_stage"
WHERE
  EXISTS(
    SELECT
      1
    FROM "src"."items_history" AS "h"
    WHERE
      "h"."id" = "_cdc_stage"."id"
      AND "h"."_cdc_source_pos" = "_cdc_stage"."_cdc_source_pos"
  );

-- collect_keys: drop the previous key table
DROP TABLE IF EXISTS "_cdc_keys";

-- collect_keys: the keys this segment touches
CREATE TEMPORARY TABLE "_cdc_keys" AS
SELECT DISTINCT
  "id"
FROM "_cdc_stage";

-- count_staged: the versions this segment adds
SELECT
  COUNT(*)
FROM "_cdc_stage";

-- insert_versions: append the new versions, open
INSERT INTO "src"."items_history" (
  "id",
  "name",
  "price",
  "_cdc_valid_from",
  "_cdc_valid_to",
  "_cdc_is_current",
  "_cdc_is_deleted",
  "_cdc_op",
  "_cdc_source_pos",
  "_cdc_tx_id",
  "_cdc_ingested_at"
)
SELECT
  "id",
  "name",
  "price",
  "_cdc_valid_from",
  CAST(NULL AS TIMESTAMPTZ),
  FALSE,
  "_cdc_is_deleted",
  "_cdc_op",
  "_cdc_source_pos",
  "_cdc_tx_id",
  CURRENT_TIMESTAMP
FROM "_cdc_stage";

-- relink: valid_from/valid_to/is_current of the touched keys
UPDATE "src"."items_history" SET "_cdc_valid_from" = "w"."eff_from", "_cdc_valid_to" = "w"."next_from", "_cdc_is_current" = "w"."next_pos" IS NULL
FROM (
  SELECT
    "id",
    "_cdc_source_pos",
    MIN("_cdc_valid_from") OVER (
      PARTITION BY "id"
      ORDER BY "_cdc_source_pos"
      ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING
    ) AS "eff_from",
    MIN("_cdc_valid_from") OVER (
      PARTITION BY "id"
      ORDER BY "_cdc_source_pos"
      ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING
    ) AS "next_from",
    LEAD("_cdc_source_pos") OVER (PARTITION BY "id" ORDER BY "_cdc_source_pos") AS "next_pos"
  FROM "src"."items_history" AS "h"
  WHERE
    EXISTS(
      SELECT
        1
      FROM "_cdc_keys"
      WHERE
        "_cdc_keys"."id" = "h"."id"
    )
) AS "w"
WHERE
  "items_history"."id" = "w"."id"
  AND "items_history"."_cdc_source_pos" = "w"."_cdc_source_pos"
  AND (
    "items_history"."_cdc_valid_from" IS DISTINCT FROM "w"."eff_from"
    OR "items_history"."_cdc_valid_to" IS DISTINCT FROM "w"."next_from"
    OR "items_history"."_cdc_is_current" <> (
      "w"."next_pos" IS NULL
    )
  );

-- carry_unavailable: unchanged TOAST values from the key's previous version
UPDATE "src"."items_history" SET "name" = CASE WHEN "w"."_m1" THEN "w"."_f1" ELSE "items_history"."name" END, "price" = CASE WHEN "w"."_m2" THEN "w"."_f2" ELSE "items_history"."price" END
FROM (
  SELECT
    "id",
    "_cdc_source_pos",
    "_m1",
    "_m2",
    FIRST_VALUE("_v1") OVER (PARTITION BY "id", "_g1" ORDER BY "_cdc_source_pos") AS "_f1",
    FIRST_VALUE("_v2") OVER (PARTITION BY "id", "_g2" ORDER BY "_cdc_source_pos") AS "_f2"
  FROM (
    SELECT
      *,
      SUM(CASE WHEN "_m1" THEN 0 ELSE 1 END) OVER (
        PARTITION BY "id"
        ORDER BY "_cdc_source_pos"
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS "_g1",
      SUM(CASE WHEN "_m2" THEN 0 ELSE 1 END) OVER (
        PARTITION BY "id"
        ORDER BY "_cdc_source_pos"
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS "_g2"
    FROM (
      SELECT
        "h"."id",
        "h"."_cdc_source_pos",
        "h"."name" AS "_v1",
        "h"."price" AS "_v2",
        COALESCE(STRPOS("_cdc_stage"."_cdc_unavailable", ',1,') > 0, FALSE) AS "_m1",
        COALESCE(STRPOS("_cdc_stage"."_cdc_unavailable", ',2,') > 0, FALSE) AS "_m2"
      FROM "src"."items_history" AS "h"
      LEFT JOIN "_cdc_stage"
        ON "h"."id" = "_cdc_stage"."id"
        AND "h"."_cdc_source_pos" = "_cdc_stage"."_cdc_source_pos"
      WHERE
        EXISTS(
          SELECT
            1
          FROM "_cdc_keys"
          WHERE
            "_cdc_keys"."id" = "h"."id"
        )
    ) AS "j"
  ) AS "g"
) AS "w"
WHERE
  "items_history"."id" = "w"."id"
  AND "items_history"."_cdc_source_pos" = "w"."_cdc_source_pos"
  AND (
    "w"."_m1" OR "w"."_m2"
  );

-- carry_forward: deletes take the values they close
UPDATE "src"."items_history" SET "name" = "p"."_prev_0", "price" = "p"."_prev_1"
FROM (
  SELECT
    "id",
    "_cdc_source_pos",
    LAG("_cdc_source_pos") OVER (PARTITION BY "id" ORDER BY "_cdc_source_pos") AS "_prev_pos",
    LAG("name") OVER (PARTITION BY "id" ORDER BY "_cdc_source_pos") AS "_prev_0",
    LAG("price") OVER (PARTITION BY "id" ORDER BY "_cdc_source_pos") AS "_prev_1"
  FROM "src"."items_history" AS "h"
  WHERE
    EXISTS(
      SELECT
        1
      FROM "_cdc_keys"
      WHERE
        "_cdc_keys"."id" = "h"."id"
    )
    AND EXISTS(
      SELECT
        1
      FROM "src"."items_history" AS "d"
      WHERE
        "d"."_cdc_op" = 'd'
    )
) AS "p"
WHERE
  "items_history"."id" = "p"."id"
  AND "items_history"."_cdc_source_pos" = "p"."_cdc_source_pos"
  AND "items_history"."_cdc_op" = 'd'
  AND NOT "p"."_prev_pos" IS NULL;

-- refresh_current: drop the touched keys from current
DELETE FROM "src"."items"
WHERE
  EXISTS(
    SELECT
      1
    FROM "_cdc_keys"
    WHERE
      "_cdc_keys"."id" = "items"."id"
  );

-- refresh_current: insert their live current versions
INSERT INTO "src"."items" (
  "id",
  "name",
  "price",
  "_cdc_valid_from",
  "_cdc_op",
  "_cdc_source_pos",
  "_cdc_tx_id",
  "_cdc_ingested_at"
)
SELECT
  "id",
  "name",
  "price",
  "_cdc_valid_from",
  "_cdc_op",
  "_cdc_source_pos",
  "_cdc_tx_id",
  "_cdc_ingested_at"
FROM "src"."items_history" AS "h"
WHERE
  "h"."_cdc_is_current"
  AND NOT "h"."_cdc_is_deleted"
  AND EXISTS(
    SELECT
      1
    FROM "_cdc_keys"
    WHERE
      "_cdc_keys"."id" = "h"."id"
  );

-- segment 2: a truncate (one deleted version per live key)

-- drop_stage: the previous segment's stage
DROP TABLE IF EXISTS "_cdc_stage";

-- load_stage: an empty stage
CREATE TEMPORARY TABLE "_cdc_stage" AS
SELECT
  CAST("id" AS BIGINT) AS "id",
  CAST("name" AS TEXT) AS "name",
  CAST("price" AS DECIMAL(12, 2)) AS "price",
  CAST("_cdc_valid_from" AS TIMESTAMPTZ) AS "_cdc_valid_from",
  CAST("_cdc_is_deleted" AS BOOLEAN) AS "_cdc_is_deleted",
  CAST("_cdc_op" AS TEXT) AS "_cdc_op",
  CAST("_cdc_source_pos" AS TEXT) AS "_cdc_source_pos",
  CAST("_cdc_tx_id" AS TEXT) AS "_cdc_tx_id",
  CAST("_cdc_unavailable" AS TEXT) AS "_cdc_unavailable"
FROM "_cdc_stage_arrow";

-- stage_truncate: one deleted version per key live just before the truncate
INSERT INTO "_cdc_stage" (
  "id",
  "name",
  "price",
  "_cdc_valid_from",
  "_cdc_is_deleted",
  "_cdc_op",
  "_cdc_source_pos",
  "_cdc_tx_id",
  "_cdc_unavailable"
)
SELECT
  "id",
  "name",
  "price",
  CAST('2026-01-01T00:00:00+00:00' AS TIMESTAMPTZ),
  TRUE,
  't',
  '<position>',
  'tx',
  NULL
FROM (
  SELECT
    "id",
    "name",
    "price",
    "_cdc_is_deleted",
    ROW_NUMBER() OVER (PARTITION BY "id" ORDER BY "_cdc_source_pos" DESC) AS "_cdc_rank"
  FROM "src"."items_history"
  WHERE
    "_cdc_source_pos" < '<position>'
) AS "h"
WHERE
  "h"."_cdc_rank" = 1 AND NOT "h"."_cdc_is_deleted";

-- remove_applied: drop staged versions history already has
DELETE FROM "_cdc_stage"
WHERE
  EXISTS(
    SELECT
      1
    FROM "src"."items_history" AS "h"
    WHERE
      "h"."id" = "_cdc_stage"."id"
      AND "h"."_cdc_source_pos" = "_cdc_stage"."_cdc_source_pos"
  );

-- collect_keys: drop the previous key table
DROP TABLE IF EXISTS "_cdc_keys";

-- collect_keys: the keys this segment touches
CREATE TEMPORARY TABLE "_cdc_keys" AS
SELECT DISTINCT
  "id"
FROM "_cdc_stage";

-- count_staged: the versions this segment adds
SELECT
  COUNT(*)
FROM "_cdc_stage";

-- insert_versions: append the new versions, open
INSERT INTO "src"."items_history" (
  "id",
  "name",
  "price",
  "_cdc_valid_from",
  "_cdc_valid_to",
  "_cdc_is_current",
  "_cdc_is_deleted",
  "_cdc_op",
  "_cdc_source_pos",
  "_cdc_tx_id",
  "_cdc_ingested_at"
)
SELECT
  "id",
  "name",
  "price",
  "_cdc_valid_from",
  CAST(NULL AS TIMESTAMPTZ),
  FALSE,
  "_cdc_is_deleted",
  "_cdc_op",
  "_cdc_source_pos",
  "_cdc_tx_id",
  CURRENT_TIMESTAMP
FROM "_cdc_stage";

-- relink: valid_from/valid_to/is_current of the touched keys
UPDATE "src"."items_history" SET "_cdc_valid_from" = "w"."eff_from", "_cdc_valid_to" = "w"."next_from", "_cdc_is_current" = "w"."next_pos" IS NULL
FROM (
  SELECT
    "id",
    "_cdc_source_pos",
    MIN("_cdc_valid_from") OVER (
      PARTITION BY "id"
      ORDER BY "_cdc_source_pos"
      ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING
    ) AS "eff_from",
    MIN("_cdc_valid_from") OVER (
      PARTITION BY "id"
      ORDER BY "_cdc_source_pos"
      ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING
    ) AS "next_from",
    LEAD("_cdc_source_pos") OVER (PARTITION BY "id" ORDER BY "_cdc_source_pos") AS "next_pos"
  FROM "src"."items_history" AS "h"
  WHERE
    EXISTS(
      SELECT
        1
      FROM "_cdc_keys"
      WHERE
        "_cdc_keys"."id" = "h"."id"
    )
) AS "w"
WHERE
  "items_history"."id" = "w"."id"
  AND "items_history"."_cdc_source_pos" = "w"."_cdc_source_pos"
  AND (
    "items_history"."_cdc_valid_from" IS DISTINCT FROM "w"."eff_from"
    OR "items_history"."_cdc_valid_to" IS DISTINCT FROM "w"."next_from"
    OR "items_history"."_cdc_is_current" <> (
      "w"."next_pos" IS NULL
    )
  );

-- carry_forward: deletes take the values they close
UPDATE "src"."items_history" SET "name" = "p"."_prev_0", "price" = "p"."_prev_1"
FROM (
  SELECT
    "id",
    "_cdc_source_pos",
    LAG("_cdc_source_pos") OVER (PARTITION BY "id" ORDER BY "_cdc_source_pos") AS "_prev_pos",
    LAG("name") OVER (PARTITION BY "id" ORDER BY "_cdc_source_pos") AS "_prev_0",
    LAG("price") OVER (PARTITION BY "id" ORDER BY "_cdc_source_pos") AS "_prev_1"
  FROM "src"."items_history" AS "h"
  WHERE
    EXISTS(
      SELECT
        1
      FROM "_cdc_keys"
      WHERE
        "_cdc_keys"."id" = "h"."id"
    )
    AND EXISTS(
      SELECT
        1
      FROM "src"."items_history" AS "d"
      WHERE
        "d"."_cdc_op" = 'd'
    )
) AS "p"
WHERE
  "items_history"."id" = "p"."id"
  AND "items_history"."_cdc_source_pos" = "p"."_cdc_source_pos"
  AND "items_history"."_cdc_op" = 'd'
  AND NOT "p"."_prev_pos" IS NULL;

-- refresh_current: drop the touched keys from current
DELETE FROM "src"."items"
WHERE
  EXISTS(
    SELECT
      1
    FROM "_cdc_keys"
    WHERE
      "_cdc_keys"."id" = "items"."id"
  );

-- refresh_current: insert their live current versions
INSERT INTO "src"."items" (
  "id",
  "name",
  "price",
  "_cdc_valid_from",
  "_cdc_op",
  "_cdc_source_pos",
  "_cdc_tx_id",
  "_cdc_ingested_at"
)
SELECT
  "id",
  "name",
  "price",
  "_cdc_valid_from",
  "_cdc_op",
  "_cdc_source_pos",
  "_cdc_tx_id",
  "_cdc_ingested_at"
FROM "src"."items_history" AS "h"
WHERE
  "h"."_cdc_is_current"
  AND NOT "h"."_cdc_is_deleted"
  AND EXISTS(
    SELECT
      1
    FROM "_cdc_keys"
    WHERE
      "_cdc_keys"."id" = "h"."id"
  );

-- offsets: the next Kafka offsets
DELETE FROM "_cdchub"."kafka_offsets"
WHERE
  "consumer_group" = '<group>' AND "topic" = '<topic>' AND "partition" IN (0);

-- offsets
INSERT INTO "_cdchub"."kafka_offsets" (
  "consumer_group",
  "topic",
  "partition",
  "next_offset",
  "updated_at"
)
VALUES
  (?, ?, ?, ?, ?);

-- batch log: one row per table
INSERT INTO "_cdchub"."batches" (
  "batch_id",
  "source",
  "table_name",
  "events",
  "versions",
  "lag_min_ms",
  "lag_p50_ms",
  "lag_p95_ms",
  "lag_p99_ms",
  "lag_max_ms",
  "first_commit_time",
  "last_commit_time",
  "committed_at"
)
VALUES
  (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

COMMIT;
