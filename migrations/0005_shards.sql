-- Sharded projections (issue 13; docs/design/sharding.md).
--
-- Every projection table is keyed first by `shard`, a function of the customer id into
-- 0..S-1 (S: `clickd migrate --shards S`, default 32, passed to this file as the setting
-- clickd.shards). Each ingest transaction writes the rows of one (log, shard), so the
-- shards can be ingested by as many connections as the server has cores, and the same
-- schema distributes on Citus by `shard` (docs/scale-out.md). Per-link and per-source
-- counters are per-shard partial rows that the views sum; the distinct counts
-- (`unique_clickers`, `clicked_customers`) are kept by the ingest transaction instead of
-- being counted on every read; `link_daily` is the rollup of clicks per link and day.
--
-- The rows of a database projected under 0004 are carried over: every figure of the
-- views reads the same after this migration (MigrationTests). The shard of each dead
-- letter comes from its bytes; clickd computes it right after this file, in the same
-- transaction (`Migrator`), as the ingest daemon does.

-- shard(customer) = BE32(SHA-256(UTF-8 bytes of customer)[0..4]) mod shards — the same
-- as the daemon's `ShardFunction` (tested equal). In schema clickd, beside the views,
-- because a rebuild replaces the schema clickd_internal.
CREATE FUNCTION clickd.shard_of(customer text, shards integer) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (('x' || encode(substring(sha256(convert_to(customer, 'UTF8')) FROM 1 FOR 4), 'hex'))::bit(32)::bigint % shards)::integer
$$;
GRANT EXECUTE ON FUNCTION clickd.shard_of(text, integer) TO clickd_analyst;

-- The shard count of these tables (`next_shards`: the count the next `clickd rebuild`
-- builds with; `clickd migrate --shards` sets it).
CREATE TABLE clickd_internal.sharding (
    shards      integer NOT NULL CHECK (shards BETWEEN 1 AND 1024),
    next_shards integer NOT NULL CHECK (next_shards BETWEEN 1 AND 1024),
    single      boolean PRIMARY KEY DEFAULT true CHECK (single)
);
INSERT INTO clickd_internal.sharding (shards, next_shards)
SELECT s, s FROM (SELECT coalesce(nullif(current_setting('clickd.shards', true), ''), '32')::integer AS s) given;

CREATE FUNCTION pg_temp.shard(customer text) RETURNS integer
LANGUAGE sql STABLE STRICT AS $$
    SELECT clickd.shard_of(customer, (SELECT shards FROM clickd_internal.sharding))
$$;

-- A key's number (migration 0004): the first 16 bytes of SHA-256 over its fields as netstrings.
CREATE FUNCTION pg_temp.netstring(field text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT octet_length(convert_to(field, 'UTF8')) || ':' || field || ','
$$;
CREATE FUNCTION pg_temp.key_number(fields text) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT encode(substring(sha256(convert_to(fields, 'UTF8')) FROM 1 FOR 16), 'hex')::uuid
$$;

-- The old tables step aside (with their indexes' names), the new ones are filled from
-- them, the views are pointed at the new ones, and the old ones are dropped.
ALTER TABLE clickd_internal.checkpoints RENAME TO old_checkpoints;
ALTER INDEX clickd_internal.checkpoints_pkey RENAME TO old_checkpoints_pkey;
ALTER TABLE clickd_internal.activity RENAME TO old_activity;
ALTER INDEX clickd_internal.activity_pkey RENAME TO old_activity_pkey;
ALTER INDEX clickd_internal.activity_customer_time RENAME TO old_activity_customer_time;
ALTER TABLE clickd_internal.link_totals RENAME TO old_link_totals;
ALTER INDEX clickd_internal.link_totals_pkey RENAME TO old_link_totals_pkey;
ALTER INDEX clickd_internal.link_totals_link_key RENAME TO old_link_totals_link_key;
ALTER TABLE clickd_internal.link_clickers RENAME TO old_link_clickers;
ALTER INDEX clickd_internal.link_clickers_pkey RENAME TO old_link_clickers_pkey;
ALTER TABLE clickd_internal.source_totals RENAME TO old_source_totals;
ALTER INDEX clickd_internal.source_totals_pkey RENAME TO old_source_totals_pkey;
ALTER TABLE clickd_internal.dead_letters RENAME TO old_dead_letters;
ALTER INDEX clickd_internal.dead_letters_pkey RENAME TO old_dead_letters_pkey;

-- How far each (log, shard) is projected, and where its classifier's window starts.
CREATE TABLE clickd_internal.checkpoints (
    shard        integer     NOT NULL CHECK (shard >= 0),
    log_id       uuid        NOT NULL,
    lsn          bigint      NOT NULL CHECK (lsn >= 0),
    window_start bigint,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shard, log_id)
);
-- Every shard of a log starts where the log was (a replay from the log's window start
-- rebuilds each shard's window: it starts no later than the shard's own).
INSERT INTO clickd_internal.checkpoints (shard, log_id, lsn, window_start, updated_at)
SELECT s, c.log_id, c.lsn, c.window_start, c.updated_at
FROM clickd_internal.old_checkpoints c
CROSS JOIN generate_series(0, (SELECT shards - 1 FROM clickd_internal.sharding)) s;

CREATE TABLE clickd_internal.activity (
    shard        integer     NOT NULL CHECK (shard >= 0),
    log_id       uuid        NOT NULL,
    lsn          bigint      NOT NULL,
    customer_id  text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('clicked_link', 'delivered')),
    delivery_id  text        NOT NULL,
    source_kind  text        NOT NULL CHECK (source_kind IN ('campaign', 'newsletter', 'transactional')),
    source_id    text        NOT NULL,
    message_type text        NOT NULL CHECK (message_type IN ('email', 'sms', 'push', 'webhook', 'slack')),
    link_id      text,
    url          text,
    human        boolean,
    bot_reason   text,
    user_agent   text,
    ip           inet,
    PRIMARY KEY (shard, log_id, lsn)
);
INSERT INTO clickd_internal.activity
SELECT pg_temp.shard(customer_id), log_id, lsn, customer_id, occurred_at, kind, delivery_id, source_kind, source_id,
       message_type, link_id, url, human, bot_reason, user_agent, ip
FROM clickd_internal.old_activity;
-- A person's activity by time (by customer alone: the views do not show the shard).
CREATE INDEX activity_customer_time ON clickd_internal.activity (customer_id, occurred_at);

-- Per (shard, link): this shard's clicks on the link.
CREATE TABLE clickd_internal.link_totals (
    shard           integer     NOT NULL CHECK (shard >= 0),
    link_key        uuid        NOT NULL,
    source_kind     text        NOT NULL,
    source_id       text        NOT NULL,
    link_id         text        NOT NULL,
    url             text        NOT NULL,
    total_clicks    bigint      NOT NULL DEFAULT 0,
    human_clicks    bigint      NOT NULL DEFAULT 0,
    unique_clickers bigint      NOT NULL DEFAULT 0,
    first_click_at  timestamptz,
    last_click_at   timestamptz,
    PRIMARY KEY (shard, link_key)
) WITH (fillfactor = 70);
-- A source's links, and a link by its text key (not updated by ingestion: updates stay HOT).
CREATE INDEX link_totals_source ON clickd_internal.link_totals (source_kind, source_id, link_id);

CREATE TABLE clickd_internal.link_clickers (
    shard            integer     NOT NULL CHECK (shard >= 0),
    link_key         uuid        NOT NULL,
    customer_id      text        NOT NULL,
    clicks           bigint      NOT NULL DEFAULT 0,
    human_clicks     bigint      NOT NULL DEFAULT 0,
    first_clicked_at timestamptz,
    last_clicked_at  timestamptz,
    PRIMARY KEY (shard, link_key, customer_id)
) WITH (fillfactor = 90);
INSERT INTO clickd_internal.link_clickers
SELECT pg_temp.shard(customer_id), link_key, customer_id, clicks, human_clicks, first_clicked_at, last_clicked_at
FROM clickd_internal.old_link_clickers;

-- The link rows of each shard, summed from its clicker rows (a link's totals are the sums
-- of its clickers'); the destination is the link's latest, as it was.
INSERT INTO clickd_internal.link_totals
SELECT c.shard, c.link_key, t.source_kind, t.source_id, t.link_id, t.url,
       sum(c.clicks), sum(c.human_clicks), count(*) FILTER (WHERE c.human_clicks > 0),
       min(c.first_clicked_at), max(c.last_clicked_at)
FROM clickd_internal.link_clickers c
JOIN clickd_internal.old_link_totals t USING (link_key)
GROUP BY c.shard, c.link_key, t.source_kind, t.source_id, t.link_id, t.url;

-- Per (shard, link, UTC day): clicks over time, for date ranges and charts.
CREATE TABLE clickd_internal.link_daily (
    shard        integer NOT NULL CHECK (shard >= 0),
    link_key     uuid    NOT NULL,
    day          date    NOT NULL,
    total_clicks bigint  NOT NULL DEFAULT 0,
    human_clicks bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (shard, link_key, day)
) WITH (fillfactor = 70);
INSERT INTO clickd_internal.link_daily
SELECT shard, pg_temp.key_number(pg_temp.netstring(source_kind) || pg_temp.netstring(source_id) || pg_temp.netstring(link_id)),
       (occurred_at AT TIME ZONE 'UTC')::date, count(*), count(*) FILTER (WHERE human)
FROM clickd_internal.activity
WHERE kind = 'clicked_link'
GROUP BY 1, 2, 3;

-- Per (shard, source): deliveries, clicks and customers with a human click.
CREATE TABLE clickd_internal.source_totals (
    shard             integer NOT NULL CHECK (shard >= 0),
    source_key        uuid    NOT NULL,
    source_kind       text    NOT NULL,
    source_id         text    NOT NULL,
    delivered         bigint  NOT NULL DEFAULT 0,
    total_clicks      bigint  NOT NULL DEFAULT 0,
    clicked_customers bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (shard, source_key)
) WITH (fillfactor = 50);
CREATE INDEX source_totals_source ON clickd_internal.source_totals (source_kind, source_id);

-- Per (shard, source, customer): human clicks on any link of the source; a row exists
-- while that is more than 0 (so the rows are a function of the log, whatever the batches).
CREATE TABLE clickd_internal.source_clickers (
    shard        integer NOT NULL CHECK (shard >= 0),
    source_key   uuid    NOT NULL,
    customer_id  text    NOT NULL,
    human_clicks bigint  NOT NULL,
    PRIMARY KEY (shard, source_key, customer_id)
) WITH (fillfactor = 90);
INSERT INTO clickd_internal.source_clickers
SELECT c.shard, pg_temp.key_number(pg_temp.netstring(t.source_kind) || pg_temp.netstring(t.source_id)), c.customer_id, sum(c.human_clicks)
FROM clickd_internal.link_clickers c
JOIN clickd_internal.link_totals t ON t.shard = c.shard AND t.link_key = c.link_key
GROUP BY 1, 2, 3
HAVING sum(c.human_clicks) > 0;

INSERT INTO clickd_internal.source_totals (shard, source_key, source_kind, source_id, delivered, total_clicks, clicked_customers)
SELECT shard, pg_temp.key_number(pg_temp.netstring(source_kind) || pg_temp.netstring(source_id)), source_kind, source_id,
       sum(delivered), sum(clicks), sum(customers)
FROM (
    SELECT shard, source_kind, source_id, count(*) AS delivered, 0 AS clicks, 0 AS customers
    FROM clickd_internal.activity WHERE kind = 'delivered' GROUP BY 1, 2, 3
    UNION ALL
    SELECT shard, source_kind, source_id, 0, sum(total_clicks), 0
    FROM clickd_internal.link_totals GROUP BY 1, 2, 3
    UNION ALL
    SELECT t.shard, t.source_kind, t.source_id, 0, 0, count(DISTINCT c.customer_id)
    FROM clickd_internal.link_clickers c
    JOIN clickd_internal.link_totals t ON t.shard = c.shard AND t.link_key = c.link_key
    WHERE c.human_clicks > 0 GROUP BY 1, 2, 3
    UNION ALL
    -- What the finer rows do not account for (activity rows an operator deleted to keep the
    -- table small): kept in shard 0, so that every source's figures stay what they were.
    SELECT 0, o.source_kind, o.source_id, o.delivered - coalesce(d.n, 0), o.total_clicks - coalesce(c.n, 0), 0
    FROM clickd_internal.old_source_totals o
    LEFT JOIN (SELECT source_kind, source_id, count(*) AS n FROM clickd_internal.activity WHERE kind = 'delivered' GROUP BY 1, 2) d
           USING (source_kind, source_id)
    LEFT JOIN (SELECT source_kind, source_id, sum(total_clicks) AS n FROM clickd_internal.link_totals GROUP BY 1, 2) c
           USING (source_kind, source_id)
    WHERE o.delivered <> coalesce(d.n, 0) OR o.total_clicks <> coalesce(c.n, 0)
) parts
GROUP BY shard, source_kind, source_id;

-- Shard `lsn mod S` for now: clickd sets each dead letter's shard from its bytes right
-- after this file (Migrator), before the transaction commits.
CREATE TABLE clickd_internal.dead_letters (
    shard       integer     NOT NULL CHECK (shard >= 0),
    log_id      uuid        NOT NULL,
    lsn         bigint      NOT NULL,
    error       text        NOT NULL,
    payload     bytea       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shard, log_id, lsn)
);
INSERT INTO clickd_internal.dead_letters
SELECT (lsn % (SELECT shards FROM clickd_internal.sharding))::integer, log_id, lsn, error, payload, recorded_at
FROM clickd_internal.old_dead_letters;

-- The analysts' contract: the same columns, meaning and order; the shards summed.

CREATE OR REPLACE VIEW clickd.activity AS
SELECT customer_id, occurred_at, kind, delivery_id, source_kind, source_id, message_type,
       link_id, url, human, bot_reason, user_agent, ip
FROM clickd_internal.activity;

CREATE OR REPLACE VIEW clickd.link_clicks AS
SELECT source_kind, source_id, link_id,
       (array_agg(url ORDER BY last_click_at DESC NULLS LAST, url DESC))[1] AS url,
       sum(total_clicks)::bigint AS total_clicks, sum(human_clicks)::bigint AS human_clicks,
       sum(unique_clickers)::bigint AS unique_clickers,
       min(first_click_at) AS first_click_at, max(last_click_at) AS last_click_at
FROM clickd_internal.link_totals
GROUP BY link_key, source_kind, source_id, link_id;

CREATE OR REPLACE VIEW clickd.link_clickers AS
SELECT t.source_kind, t.source_id, t.link_id, c.customer_id, c.clicks, c.human_clicks, c.first_clicked_at, c.last_clicked_at
FROM clickd_internal.link_clickers c
JOIN clickd_internal.link_totals t ON t.shard = c.shard AND t.link_key = c.link_key;

CREATE OR REPLACE VIEW clickd.message_stats AS
SELECT source_kind, source_id, sum(delivered)::bigint AS delivered,
       sum(clicked_customers)::bigint AS clicked_customers, sum(total_clicks)::bigint AS total_clicks,
       CASE WHEN sum(delivered) > 0 THEN round(sum(clicked_customers) / sum(delivered), 6) END AS click_rate
FROM clickd_internal.source_totals
GROUP BY source_key, source_kind, source_id;

CREATE VIEW clickd.link_clicks_daily AS
SELECT t.source_kind, t.source_id, t.link_id, d.day,
       sum(d.total_clicks)::bigint AS total_clicks, sum(d.human_clicks)::bigint AS human_clicks
FROM clickd_internal.link_daily d
JOIN clickd_internal.link_totals t ON t.shard = d.shard AND t.link_key = d.link_key
GROUP BY t.link_key, t.source_kind, t.source_id, t.link_id, d.day;
GRANT SELECT ON clickd.link_clicks_daily TO clickd_analyst;

DROP TABLE clickd_internal.old_checkpoints, clickd_internal.old_activity, clickd_internal.old_link_totals,
    clickd_internal.old_link_clickers, clickd_internal.old_source_totals, clickd_internal.old_dead_letters;
