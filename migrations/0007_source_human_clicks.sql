-- A source's human clicks, all time, kept at write time beside its total clicks (issue 15:
-- the report's sources page shows delivered, clicked customers, click rate, total and
-- human clicks, sortable by each).
--
-- Summing `source_hourly` or `link_totals` per source on every sources page would read
-- every hour or link of every source to sort 500 rows; a counter in `source_totals` is one
-- more bigint in a row ingestion already updates. A burst correction takes one human click
-- from the earlier click's source, as it does from its link and its hour.
--
-- `clickd.message_stats` gains `human_clicks` as its last column (CREATE OR REPLACE VIEW
-- keeps the existing columns, so analysts' queries that name them read the same).
--
-- Existing databases are filled from `link_totals`, shard by shard: a click counts in its
-- link's and its source's rows of the same shard, with the same corrections, so the sum of
-- a source's links' human clicks is the source's (and unlike `activity`, which an operator
-- may prune, `link_totals` holds every click ever folded).

ALTER TABLE clickd_internal.source_totals ADD COLUMN human_clicks bigint NOT NULL DEFAULT 0;

UPDATE clickd_internal.source_totals t SET human_clicks = l.human_clicks
FROM (
    SELECT shard, source_kind, source_id, sum(human_clicks) AS human_clicks
    FROM clickd_internal.link_totals GROUP BY 1, 2, 3
) l
WHERE t.shard = l.shard AND t.source_kind = l.source_kind AND t.source_id = l.source_id AND l.human_clicks <> 0;

CREATE OR REPLACE VIEW clickd.message_stats AS
SELECT source_kind, source_id, sum(delivered)::bigint AS delivered,
       sum(clicked_customers)::bigint AS clicked_customers, sum(total_clicks)::bigint AS total_clicks,
       CASE WHEN sum(delivered) > 0 THEN round(sum(clicked_customers) / sum(delivered), 6) END AS click_rate,
       sum(human_clicks)::bigint AS human_clicks
FROM clickd_internal.source_totals
GROUP BY source_key, source_kind, source_id;
