-- Clicker rows keyed by their link's number instead of the link's three text columns
-- (measured in bench/ingest.sh; docs/benchmarks.md). With real cardinalities there is a
-- clicker row for nearly every click, so `link_clickers` grows as fast as `activity`, and
-- its upsert was the part of ingestion that slowed down as the data grew: a primary key of
-- (16-byte number, customer) is smaller and much cheaper to compare than four text
-- columns.
--
-- * `link_key` is a function of the link's key alone, computed by the ingest daemon
--   (`ProjectionBatch.LinkKey.number`): the first 16 bytes of SHA-256 over
--   `<bytes>:<source_kind>,<bytes>:<source_id>,<bytes>:<link_id>,` (netstrings, lengths in
--   UTF-8 bytes), as a UUID. Every daemon and every rebuild gives a link the same number,
--   so no lookup is needed to write a clicker row and a rebuild compares row for row.
-- * `link_totals` gets the column (unique); `link_clickers` is rebuilt as
--   `(link_key, customer_id, …)`, its rows carried over. Ingestion upserts a batch's links
--   before its clicker rows, in the same transaction, so every clicker row has its link.
-- * The analysts' views keep their columns and meaning; they join the two tables.

CREATE FUNCTION pg_temp.link_key(source_kind text, source_id text, link_id text) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT encode(substring(sha256(
        convert_to(octet_length(convert_to(source_kind, 'UTF8')) || ':' || source_kind || ','
                || octet_length(convert_to(source_id, 'UTF8')) || ':' || source_id || ','
                || octet_length(convert_to(link_id, 'UTF8')) || ':' || link_id || ',', 'UTF8')
    ) FROM 1 FOR 16), 'hex')::uuid
$$;

ALTER TABLE clickd_internal.link_totals ADD COLUMN link_key uuid;
UPDATE clickd_internal.link_totals SET link_key = pg_temp.link_key(source_kind, source_id, link_id);
ALTER TABLE clickd_internal.link_totals ALTER COLUMN link_key SET NOT NULL;
ALTER TABLE clickd_internal.link_totals ADD CONSTRAINT link_totals_link_key UNIQUE (link_key);

CREATE TABLE clickd_internal.link_clickers_by_key (
    link_key         uuid        NOT NULL,
    customer_id      text        NOT NULL,
    clicks           bigint      NOT NULL DEFAULT 0,
    human_clicks     bigint      NOT NULL DEFAULT 0,
    first_clicked_at timestamptz,
    last_clicked_at  timestamptz,
    PRIMARY KEY (link_key, customer_id)
) WITH (fillfactor = 90);

INSERT INTO clickd_internal.link_clickers_by_key (link_key, customer_id, clicks, human_clicks, first_clicked_at, last_clicked_at)
SELECT pg_temp.link_key(source_kind, source_id, link_id), customer_id, clicks, human_clicks, first_clicked_at, last_clicked_at
FROM clickd_internal.link_clickers;

CREATE OR REPLACE VIEW clickd.link_clicks AS
SELECT t.source_kind, t.source_id, t.link_id, t.url, t.total_clicks, t.human_clicks,
       (SELECT count(*) FROM clickd_internal.link_clickers_by_key c
         WHERE c.link_key = t.link_key AND c.human_clicks > 0) AS unique_clickers,
       t.first_click_at, t.last_click_at
FROM clickd_internal.link_totals t;

CREATE OR REPLACE VIEW clickd.link_clickers AS
SELECT t.source_kind, t.source_id, t.link_id, c.customer_id, c.clicks, c.human_clicks, c.first_clicked_at, c.last_clicked_at
FROM clickd_internal.link_clickers_by_key c
JOIN clickd_internal.link_totals t USING (link_key);

CREATE OR REPLACE VIEW clickd.message_stats AS
SELECT s.source_kind, s.source_id, s.delivered,
       c.clicked_customers, s.total_clicks,
       CASE WHEN s.delivered > 0 THEN round(c.clicked_customers::numeric / s.delivered, 6) END AS click_rate
FROM clickd_internal.source_totals s
CROSS JOIN LATERAL (
    SELECT count(DISTINCT lc.customer_id) AS clicked_customers
    FROM clickd_internal.link_totals t
    JOIN clickd_internal.link_clickers_by_key lc USING (link_key)
    WHERE t.source_kind = s.source_kind AND t.source_id = s.source_id AND lc.human_clicks > 0
) c;

DROP TABLE clickd_internal.link_clickers;
ALTER TABLE clickd_internal.link_clickers_by_key RENAME TO link_clickers;
ALTER INDEX clickd_internal.link_clickers_by_key_pkey RENAME TO link_clickers_pkey;
