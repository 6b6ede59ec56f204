-- Deliveries and clicks per source, UTC hour and bot reason (issue 15, the report pages;
-- docs/design/report.md, "A rollup for time").
--
-- A campaign's chart over a few days needs hours, and the bots page needs reasons over a
-- date range. Both from `activity` would be O(clicks) per page; this table is O(sources ×
-- hours × reasons), kept at write time like `link_daily`:
--
-- * `bot_reason = ''` holds the hour's deliveries and human clicks; any other value that
--   reason's bot clicks. A later click that turns an earlier one into a burst moves one click
--   of the earlier click's hour from '' to 'burst'.
-- * Keyed by shard first (a source's rows are spread over the shards of its customers, as
--   `source_totals` is); the views sum the shards and take the source's names from
--   `source_totals` (every source with an hourly row has a totals row in the same shard).
-- * Existing databases are filled from `activity` (what an operator deleted from it is not
--   counted here, as it is not in `link_daily`).

CREATE TABLE clickd_internal.source_hourly (
    shard      integer     NOT NULL CHECK (shard >= 0),
    source_key uuid        NOT NULL,
    hour       timestamptz NOT NULL,
    bot_reason text        NOT NULL,
    delivered  bigint      NOT NULL DEFAULT 0,
    clicks     bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (shard, source_key, hour, bot_reason)
) WITH (fillfactor = 70);
-- A date range across every source (the bots page): the hours first, then their sources.
-- Ingestion rarely touches it: a batch's upserts mostly update rows that exist, and `hour`
-- never changes, so those updates stay HOT.
CREATE INDEX source_hourly_hour ON clickd_internal.source_hourly (hour);

INSERT INTO clickd_internal.source_hourly (shard, source_key, hour, bot_reason, delivered, clicks)
SELECT a.shard, t.source_key, date_trunc('hour', a.occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       CASE WHEN a.kind = 'delivered' OR a.human THEN '' ELSE coalesce(a.bot_reason, 'unknown') END,
       count(*) FILTER (WHERE a.kind = 'delivered'), count(*) FILTER (WHERE a.kind = 'clicked_link')
FROM clickd_internal.activity a
JOIN clickd_internal.source_totals t ON t.shard = a.shard AND t.source_kind = a.source_kind AND t.source_id = a.source_id
GROUP BY 1, 2, 3, 4;

-- A source's deliveries and clicks by hour (UTC), bots included in total_clicks.
CREATE VIEW clickd.source_clicks_hourly AS
SELECT t.source_kind, t.source_id, h.hour,
       sum(h.delivered)::bigint AS delivered, sum(h.clicks)::bigint AS total_clicks,
       coalesce(sum(h.clicks) FILTER (WHERE h.bot_reason = ''), 0)::bigint AS human_clicks
FROM clickd_internal.source_hourly h
JOIN clickd_internal.source_totals t ON t.shard = h.shard AND t.source_key = h.source_key
GROUP BY t.source_key, t.source_kind, t.source_id, h.hour;

-- A source's bot clicks by hour (UTC) and reason.
CREATE VIEW clickd.bot_clicks_hourly AS
SELECT t.source_kind, t.source_id, h.hour, h.bot_reason, sum(h.clicks)::bigint AS clicks
FROM clickd_internal.source_hourly h
JOIN clickd_internal.source_totals t ON t.shard = h.shard AND t.source_key = h.source_key
WHERE h.bot_reason <> ''
GROUP BY t.source_key, t.source_kind, t.source_id, h.hour, h.bot_reason;

GRANT SELECT ON clickd.source_clicks_hourly, clickd.bot_clicks_hourly TO clickd_analyst;
