-- Activity retention (issue 30, step 3; docs/design/erasure.md, section 4): activity is
-- partitioned by the month (UTC) of occurred_at, so that keeping it for a bounded time is a
-- DROP of whole months, never a DELETE (no bloat, no vacuum).
--
-- * `clickd_internal.activity` becomes a native partitioned table, RANGE (occurred_at), one
--   partition per month named `activity_pYYYY_MM`, and `activity_default` for a row of a
--   month without one (an edge's clock far ahead). Its key becomes (shard, log_id, lsn,
--   occurred_at): a partitioned table's unique keys must hold the partition key. A record's
--   time never changes, and the checkpoints' compare-and-set (not this key) is what writes
--   each record once. The rows are copied into the months they belong to; the analysts'
--   view `clickd.activity` is the same view of the new table.
-- * `clickd_ingest.ensure_activity_partition(schema, month)`: makes a month's partition of
--   `<schema>.activity` (live or a rebuild's shadow) if it has none, moving the default
--   partition's rows of that month into it. The ingest daemon makes this month's and the
--   next ahead; a writer makes a past month it meets.
-- * `clickd_ingest.drop_activity_partition(schema, name)`: drops one month, and records it
--   (rows, bounds, when) in `clickd_ingest.retention_drops`, in one transaction; moves
--   `clickd_ingest.activity_retention.dropped_before`, before which activity is never
--   written again (by ingestion or a rebuild: a rebuild brings no dropped month back).
-- * `clickd.retention_drops`: the operator's view of the drops.

CREATE TABLE clickd_ingest.activity_retention (
    only_row       boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    -- The last --activity-retention an ingest daemon dropped with (NULL: none has).
    retention      interval,
    -- Activity before this instant has been dropped and is never written again.
    dropped_before timestamptz
);
INSERT INTO clickd_ingest.activity_retention DEFAULT VALUES;

CREATE TABLE clickd_ingest.retention_drops (
    partition   text        NOT NULL,
    range_start timestamptz NOT NULL,
    range_end   timestamptz NOT NULL,
    rows        bigint      NOT NULL,
    retention   interval,
    dropped_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (range_start, dropped_at)
);
REVOKE ALL ON clickd_ingest.activity_retention, clickd_ingest.retention_drops FROM PUBLIC;

CREATE FUNCTION clickd_ingest.ensure_activity_partition(p_schema text, p_month timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $function$
DECLARE
    lo   timestamptz := date_trunc('month', p_month AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    hi   timestamptz := (date_trunc('month', p_month AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    name text := 'activity_p' || to_char(date_trunc('month', p_month AT TIME ZONE 'UTC'), 'YYYY_MM');
    held boolean;
BEGIN
    -- Two writers meeting the same new month: the second finds it made.
    PERFORM pg_advisory_xact_lock(7160310842977212);
    IF to_regclass(format('%I.%I', p_schema, name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- PostgreSQL refuses a partition whose rows the default partition holds: they move.
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.activity_default WHERE occurred_at >= %L AND occurred_at < %L)', p_schema, lo, hi)
        INTO held;
    IF held THEN
        EXECUTE format('CREATE TEMP TABLE clickd_moving_activity AS SELECT * FROM %I.activity_default WHERE occurred_at >= %L AND occurred_at < %L',
                       p_schema, lo, hi);
        EXECUTE format('DELETE FROM %I.activity_default WHERE occurred_at >= %L AND occurred_at < %L', p_schema, lo, hi);
    END IF;
    EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.activity FOR VALUES FROM (%L) TO (%L)', p_schema, name, p_schema, lo, hi);
    IF held THEN
        EXECUTE format('INSERT INTO %I.activity SELECT * FROM clickd_moving_activity', p_schema);
        DROP TABLE clickd_moving_activity;
    END IF;
    RETURN true;
END
$function$;

CREATE FUNCTION clickd_ingest.drop_activity_partition(p_schema text, p_name text, p_retention interval) RETURNS bigint
LANGUAGE plpgsql AS $function$
DECLARE
    lo    timestamptz;
    hi    timestamptz;
    n     bigint;
BEGIN
    IF p_name !~ '^activity_p[0-9]{4}_[0-9]{2}$' THEN
        RAISE EXCEPTION 'clickd: % is not a month of activity', p_name;
    END IF;
    lo := (to_date(substr(p_name, 11), 'YYYY_MM')::timestamp) AT TIME ZONE 'UTC';
    hi := (to_date(substr(p_name, 11), 'YYYY_MM')::timestamp + interval '1 month') AT TIME ZONE 'UTC';
    IF to_regclass(format('%I.%I', p_schema, p_name)) IS NULL THEN
        RETURN NULL;
    END IF;
    -- Rows are counted under the lock the drop takes: the count is what is dropped.
    EXECUTE format('LOCK TABLE %I.%I IN ACCESS EXCLUSIVE MODE', p_schema, p_name);
    EXECUTE format('SELECT count(*) FROM %I.%I', p_schema, p_name) INTO n;
    EXECUTE format('DROP TABLE %I.%I', p_schema, p_name);
    -- The drops of a rebuild's shadow months are the live ones' (already recorded).
    IF p_schema = 'clickd_internal' THEN
        INSERT INTO clickd_ingest.retention_drops (partition, range_start, range_end, rows, retention)
        VALUES (p_name, lo, hi, n, p_retention);
    END IF;
    UPDATE clickd_ingest.activity_retention
    SET dropped_before = greatest(coalesce(dropped_before, '-infinity'), hi), retention = p_retention;
    RETURN n;
END
$function$;
REVOKE ALL ON FUNCTION clickd_ingest.ensure_activity_partition, clickd_ingest.drop_activity_partition FROM PUBLIC;

-- The table, partitioned; its rows moved into their months.
ALTER TABLE clickd_internal.activity RENAME TO activity_unpartitioned;
ALTER INDEX clickd_internal.activity_pkey RENAME TO activity_unpartitioned_pkey;
ALTER INDEX clickd_internal.activity_customer_time RENAME TO activity_unpartitioned_customer_time;

CREATE TABLE clickd_internal.activity (
    LIKE clickd_internal.activity_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (shard, log_id, lsn, occurred_at)
) PARTITION BY RANGE (occurred_at);
-- A person's activity by time.
CREATE INDEX activity_customer_time ON clickd_internal.activity (customer_id, occurred_at);
CREATE TABLE clickd_internal.activity_default PARTITION OF clickd_internal.activity DEFAULT;

DO $do$
DECLARE
    month timestamptz;
BEGIN
    FOR month IN
        SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        FROM clickd_internal.activity_unpartitioned
        UNION
        SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        UNION
        SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
    LOOP
        -- Not far ahead: rows of an edge's clock years fast stay in the default partition.
        IF month <= now() + interval '1 month' THEN
            PERFORM clickd_ingest.ensure_activity_partition('clickd_internal', month);
        END IF;
    END LOOP;
END
$do$;

INSERT INTO clickd_internal.activity SELECT * FROM clickd_internal.activity_unpartitioned;

CREATE OR REPLACE VIEW clickd.activity AS
SELECT customer_id, occurred_at, kind, delivery_id, source_kind, source_id, message_type,
       link_id, url, human, bot_reason, user_agent, ip, open_reason
FROM clickd_internal.activity;

DROP TABLE clickd_internal.activity_unpartitioned;

CREATE VIEW clickd.retention_drops AS
SELECT partition, range_start, range_end, rows, retention, dropped_at FROM clickd_ingest.retention_drops;
GRANT SELECT ON clickd.retention_drops TO clickd_analyst;
