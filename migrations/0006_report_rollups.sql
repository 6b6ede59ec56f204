-- Clicks over time per source, by the hour, and bot clicks per source by the day and
-- reason (issue 15, the report pages; docs/design/report.md, "Rollups for time").
--
-- A campaign's chart over a few days needs hours, and the bots page needs reasons over a
-- range of days, across every source. Both from `activity` would be O(clicks) per page;
-- these tables are kept at write time like `link_daily`:
--
-- * `source_hourly`: per (source, UTC hour) the deliveries, the clicks and the human clicks.
--   A later click that turns an earlier one into a burst takes one human click from the
--   earlier click's hour.
-- * `bot_daily`: per (source, UTC day, bot reason) the bot clicks (a burst correction adds
--   one under 'burst' on the earlier click's day). Days, not hours: the report's ranges are
--   whole days, and across 500 sources and 32 shards hours made the bots page read 1.3
--   million rows at 10 M events (bench/report.sh, 0.7 s) where days make it read ~1/24 of that.
-- * Keyed by shard first (a source's rows are spread over the shards of its customers, as
--   `source_totals` is); the views sum the shards and take the source's names from
--   `source_totals` (every source with a row here has a totals row in the same shard).
-- * Existing databases are filled from `activity` (what an operator deleted from it is not
--   counted here, as it is not in `link_daily`).

CREATE TABLE clickd_internal.source_hourly (
    shard        integer     NOT NULL CHECK (shard >= 0),
    source_key   uuid        NOT NULL,
    hour         timestamptz NOT NULL,
    delivered    bigint      NOT NULL DEFAULT 0,
    total_clicks bigint      NOT NULL DEFAULT 0,
    human_clicks bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (shard, source_key, hour)
) WITH (fillfactor = 70);

CREATE TABLE clickd_internal.bot_daily (
    shard      integer NOT NULL CHECK (shard >= 0),
    source_key uuid    NOT NULL,
    day        date    NOT NULL,
    bot_reason text    NOT NULL,
    clicks     bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (shard, source_key, day, bot_reason)
) WITH (fillfactor = 70);
-- A range of days across every source (the bots page): the days first, then their sources.
-- `day` never changes, so ingestion's updates of existing rows stay HOT and skip it.
CREATE INDEX bot_daily_day ON clickd_internal.bot_daily (day);

INSERT INTO clickd_internal.source_hourly (shard, source_key, hour, delivered, total_clicks, human_clicks)
SELECT a.shard, t.source_key, date_trunc('hour', a.occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       count(*) FILTER (WHERE a.kind = 'delivered'), count(*) FILTER (WHERE a.kind = 'clicked_link'), count(*) FILTER (WHERE a.human)
FROM clickd_internal.activity a
JOIN clickd_internal.source_totals t ON t.shard = a.shard AND t.source_kind = a.source_kind AND t.source_id = a.source_id
GROUP BY 1, 2, 3;

INSERT INTO clickd_internal.bot_daily (shard, source_key, day, bot_reason, clicks)
SELECT a.shard, t.source_key, (a.occurred_at AT TIME ZONE 'UTC')::date, coalesce(a.bot_reason, 'unknown'), count(*)
FROM clickd_internal.activity a
JOIN clickd_internal.source_totals t ON t.shard = a.shard AND t.source_kind = a.source_kind AND t.source_id = a.source_id
WHERE a.kind = 'clicked_link' AND NOT a.human
GROUP BY 1, 2, 3, 4;

-- A source's deliveries and clicks by hour (UTC), bots included in total_clicks.
CREATE VIEW clickd.source_clicks_hourly AS
SELECT t.source_kind, t.source_id, h.hour,
       sum(h.delivered)::bigint AS delivered, sum(h.total_clicks)::bigint AS total_clicks, sum(h.human_clicks)::bigint AS human_clicks
FROM clickd_internal.source_hourly h
JOIN clickd_internal.source_totals t ON t.shard = h.shard AND t.source_key = h.source_key
GROUP BY t.source_key, t.source_kind, t.source_id, h.hour;

-- A source's bot clicks by day (UTC) and reason. The shards are summed first and the
-- names joined after, so that a range across every source (the bots page) aggregates
-- `bot_daily`'s rows once and looks up 500 names, not 16,000 per-shard totals rows one by one.
CREATE VIEW clickd.bot_clicks_daily AS
SELECT t.source_kind, t.source_id, b.day, b.bot_reason, b.clicks
FROM (SELECT source_key, day, bot_reason, sum(clicks)::bigint AS clicks FROM clickd_internal.bot_daily GROUP BY 1, 2, 3) b
JOIN (SELECT DISTINCT source_key, source_kind, source_id FROM clickd_internal.source_totals) t USING (source_key);

GRANT SELECT ON clickd.source_clicks_hourly, clickd.bot_clicks_daily TO clickd_analyst;
