-- Leaner projections (measured in bench/ingest.sh; docs/benchmarks.md):
--
-- * activity_delivery is dropped: the burst rule is evaluated in the daemon, from the log,
--   and no analyst query of docs/analysts.md looks up activity by delivery. It cost a
--   random B-tree insert per event.
-- * link_totals_top is dropped: it indexed total_clicks, which every batch updates, so no
--   update of link_totals could be HOT (each one wrote three index entries). A source's
--   links are found through the primary key's (source_kind, source_id) prefix and sorted —
--   a source has tens of links, not millions.
-- * source_clickers is dropped: who clicked anything in a source is the distinct
--   customers of that source's link_clickers rows, so message_stats counts them there;
--   one upsert per click fewer.
-- * The counter tables leave room in each page for HOT updates (fillfactor).

DROP INDEX clickd_internal.activity_delivery;
DROP INDEX clickd_internal.link_totals_top;

CREATE OR REPLACE VIEW clickd.message_stats AS
SELECT s.source_kind, s.source_id, s.delivered,
       c.clicked_customers, s.total_clicks,
       CASE WHEN s.delivered > 0 THEN round(c.clicked_customers::numeric / s.delivered, 6) END AS click_rate
FROM clickd_internal.source_totals s
CROSS JOIN LATERAL (
    SELECT count(DISTINCT lc.customer_id) AS clicked_customers FROM clickd_internal.link_clickers lc
     WHERE lc.source_kind = s.source_kind AND lc.source_id = s.source_id AND lc.human_clicks > 0
) c;

DROP TABLE clickd_internal.source_clickers;

ALTER TABLE clickd_internal.link_totals SET (fillfactor = 70);
ALTER TABLE clickd_internal.source_totals SET (fillfactor = 50);
ALTER TABLE clickd_internal.link_clickers SET (fillfactor = 90);
