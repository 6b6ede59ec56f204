-- clickd schema, version 1.
--
-- Two schemas: `clickd_internal` holds the projection tables the ingest daemon writes
-- (they may change between versions); `clickd` holds the analysts' contract — stable
-- views (docs/metrics.md defines every column). The role `clickd_analyst` may read
-- schema `clickd` and nothing else: views run with their owner's rights, so analysts never
-- need (or get) access to the internal tables.
--
-- Applied by `clickd migrate` inside one transaction; no transaction control here.

CREATE SCHEMA IF NOT EXISTS clickd_internal;
CREATE SCHEMA IF NOT EXISTS clickd;

-- How far each log (one per edge) has been projected: advanced in the same transaction as
-- the rows of its batch, with a compare-and-set on the previous value (exactly once).
CREATE TABLE clickd_internal.checkpoints (
    log_id     uuid        PRIMARY KEY,
    lsn        bigint      NOT NULL CHECK (lsn >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per click or delivery, keyed by where it is in its log.
CREATE TABLE clickd_internal.activity (
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
    PRIMARY KEY (log_id, lsn)
);
-- A person's activity by time.
CREATE INDEX activity_customer_time ON clickd_internal.activity (customer_id, occurred_at);
-- A delivery's clicks (the burst rule looks at them).
CREATE INDEX activity_delivery ON clickd_internal.activity (delivery_id, occurred_at);

-- Per (source, link): Top Clicked Links.
CREATE TABLE clickd_internal.link_totals (
    source_kind    text        NOT NULL,
    source_id      text        NOT NULL,
    link_id        text        NOT NULL,
    url            text        NOT NULL,
    total_clicks   bigint      NOT NULL DEFAULT 0,
    human_clicks   bigint      NOT NULL DEFAULT 0,
    first_click_at timestamptz,
    last_click_at  timestamptz,
    PRIMARY KEY (source_kind, source_id, link_id)
);
-- A source's top links.
CREATE INDEX link_totals_top ON clickd_internal.link_totals (source_kind, source_id, total_clicks DESC);

-- Per (source, link, customer): the unique-clicker segment. The primary key serves
-- "a link's clickers".
CREATE TABLE clickd_internal.link_clickers (
    source_kind      text        NOT NULL,
    source_id        text        NOT NULL,
    link_id          text        NOT NULL,
    customer_id      text        NOT NULL,
    clicks           bigint      NOT NULL DEFAULT 0,
    human_clicks     bigint      NOT NULL DEFAULT 0,
    first_clicked_at timestamptz,
    last_clicked_at  timestamptz,
    PRIMARY KEY (source_kind, source_id, link_id, customer_id)
);

-- Per source: deliveries and clicks (the click rate's parts).
CREATE TABLE clickd_internal.source_totals (
    source_kind  text   NOT NULL,
    source_id    text   NOT NULL,
    delivered    bigint NOT NULL DEFAULT 0,
    total_clicks bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (source_kind, source_id)
);

-- Per (source, customer): who clicked anything in the source.
CREATE TABLE clickd_internal.source_clickers (
    source_kind  text   NOT NULL,
    source_id    text   NOT NULL,
    customer_id  text   NOT NULL,
    clicks       bigint NOT NULL DEFAULT 0,
    human_clicks bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (source_kind, source_id, customer_id)
);

-- Records with a valid checksum that do not decode: kept, counted, never silently dropped.
CREATE TABLE clickd_internal.dead_letters (
    log_id      uuid        NOT NULL,
    lsn         bigint      NOT NULL,
    error       text        NOT NULL,
    payload     bytea       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (log_id, lsn)
);

-- The analysts' contract.

CREATE VIEW clickd.activity AS
SELECT customer_id, occurred_at, kind, delivery_id, source_kind, source_id, message_type,
       link_id, url, human, bot_reason, user_agent, ip
FROM clickd_internal.activity;

CREATE VIEW clickd.link_clicks AS
SELECT t.source_kind, t.source_id, t.link_id, t.url, t.total_clicks, t.human_clicks,
       (SELECT count(*) FROM clickd_internal.link_clickers c
         WHERE c.source_kind = t.source_kind AND c.source_id = t.source_id
           AND c.link_id = t.link_id AND c.human_clicks > 0) AS unique_clickers,
       t.first_click_at, t.last_click_at
FROM clickd_internal.link_totals t;

CREATE VIEW clickd.link_clickers AS
SELECT source_kind, source_id, link_id, customer_id, clicks, human_clicks, first_clicked_at, last_clicked_at
FROM clickd_internal.link_clickers;

CREATE VIEW clickd.message_stats AS
SELECT s.source_kind, s.source_id, s.delivered,
       c.clicked_customers, s.total_clicks,
       CASE WHEN s.delivered > 0 THEN round(c.clicked_customers::numeric / s.delivered, 6) END AS click_rate
FROM clickd_internal.source_totals s
CROSS JOIN LATERAL (
    SELECT count(*) AS clicked_customers FROM clickd_internal.source_clickers sc
     WHERE sc.source_kind = s.source_kind AND sc.source_id = s.source_id AND sc.human_clicks > 0
) c;

-- The read-only analyst role (cluster-wide: created once, kept if it exists — also when
-- another database of the cluster creates it at the same moment).
DO $$
BEGIN
    CREATE ROLE clickd_analyst NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
REVOKE ALL ON SCHEMA clickd_internal FROM PUBLIC;
GRANT USAGE ON SCHEMA clickd TO clickd_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA clickd TO clickd_analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA clickd GRANT SELECT ON TABLES TO clickd_analyst;
