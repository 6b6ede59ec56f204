-- Erasure, step 1 (issue 30; docs/design/erasure.md, sections 2 and 2a): the list of erased
-- people, and what lets ingestion honour it exactly once.
--
-- * `clickd_ingest.erasure_key`: 32 random bytes (two gen_random_uuid()s, which PostgreSQL
--   draws from its strong random source), the key of the MACs below. In clickd_ingest, the
--   schema a rebuild does not rename: the list is the same for the live and the shadow tables.
-- * `clickd_ingest.erasures`: one row per erased person, never the id in clear —
--   HMAC-SHA256(key, customer id) — with the person's shard, when asked and when erased.
-- * `checkpoints.erasure_seq`: raised on every checkpoint row of a shard by each erasure
--   of the shard, in the erasure's transaction. Each batch's compare-and-set includes it: a
--   batch folded before the erasure committed (it may hold the person) is refused, and its
--   worker loads the list and folds again.
-- * `clickd_ingest.apply_batch` takes that sequence as a last argument (76); the old
--   signature is dropped. On a mismatch it returns {0, -1, shards}.
-- * `clickd.erasures`: what the operator sees (no id, no MAC).

CREATE TABLE clickd_ingest.erasure_key (key bytea NOT NULL CHECK (length(key) = 32));
INSERT INTO clickd_ingest.erasure_key
SELECT decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex');

CREATE TABLE clickd_ingest.erasures (
    shard        integer     NOT NULL CHECK (shard >= 0),
    customer_mac bytea       NOT NULL CHECK (length(customer_mac) = 32),
    erasure_id   uuid        NOT NULL DEFAULT gen_random_uuid(),
    requested_at timestamptz NOT NULL DEFAULT now(),
    erased_at    timestamptz,
    log_clean_at timestamptz,
    PRIMARY KEY (customer_mac)
);
CREATE INDEX erasures_pending ON clickd_ingest.erasures (shard) WHERE erased_at IS NULL;

ALTER TABLE clickd_internal.checkpoints ADD COLUMN erasure_seq bigint NOT NULL DEFAULT 0;

DROP FUNCTION clickd_ingest.apply_batch;  -- the one of migration 0010 (the name is unique)

CREATE FUNCTION clickd_ingest.apply_batch(
    p_shard integer, p_schema text, p_log uuid, p_shards integer, p_expected bigint, p_through bigint, p_window_start bigint,
    -- activity (without shard, log_id: the batch's)
    a_lsn bigint[], a_customer text[], a_occurred timestamptz[], a_kind text[], a_delivery text[],
    a_source_kind text[], a_source_id text[], a_message_type text[], a_link_id text[], a_url text[],
    a_human boolean[], a_bot_reason text[], a_user_agent text[], a_ip inet[], a_open_reason text[],
    -- burst corrections: the activity row's LSN and its bot reason
    c_lsn bigint[], c_reason text[],
    -- dead letters
    d_lsn bigint[], d_error text[], d_payload bytea[],
    -- link_totals deltas
    l_key uuid[], l_source_kind text[], l_source_id text[], l_link_id text[], l_url text[],
    l_total bigint[], l_human bigint[], l_first timestamptz[], l_last timestamptz[],
    -- link_clickers deltas
    lc_key uuid[], lc_customer text[], lc_clicks bigint[], lc_human bigint[], lc_first timestamptz[], lc_last timestamptz[],
    -- link_daily deltas
    ld_key uuid[], ld_day date[], ld_total bigint[], ld_human bigint[],
    -- source_hourly deltas
    sh_key uuid[], sh_hour timestamptz[], sh_delivered bigint[], sh_total bigint[], sh_human bigint[],
    sh_opens bigint[], sh_person_opens bigint[],
    -- bot_daily deltas
    bd_key uuid[], bd_day date[], bd_reason text[], bd_clicks bigint[],
    -- source_totals deltas
    s_key uuid[], s_kind text[], s_id text[], s_delivered bigint[], s_clicks bigint[], s_human bigint[],
    s_opens bigint[], s_machine_opens bigint[],
    -- source_clickers deltas
    sc_key uuid[], sc_customer text[], sc_human bigint[],
    -- source_openers deltas
    so_key uuid[], so_customer text[], so_opens bigint[],
    -- open_daily deltas
    od_key uuid[], od_day date[], od_reason text[], od_opens bigint[],
    -- the shard's erasure_seq the batch was folded under (migration 0011)
    p_erasure_seq bigint
) RETURNS bigint[] LANGUAGE plpgsql AS $function$
DECLARE
    current bigint;
    found_shards integer;
    found_seq bigint;
    moved integer;
    change_keys uuid[];
    changes bigint[];
    opened_keys uuid[];
    opened_changes bigint[];
BEGIN
    EXECUTE format(
        'SELECT c.lsn, s.shards, c.erasure_seq FROM %1$I.checkpoints c, %1$I.sharding s WHERE c.shard = $1 AND c.log_id = $2 FOR UPDATE OF c',
        p_schema) INTO current, found_shards, found_seq USING p_shard, p_log;
    IF found_shards IS NULL THEN
        EXECUTE format('SELECT shards FROM %I.sharding', p_schema) INTO found_shards;
    END IF;
    -- A batch folded before an erasure of its shard committed may hold the person: it is
    -- refused as if the checkpoint had moved, and folded again with the new list.
    IF current IS NULL OR current <> p_expected OR found_shards <> p_shards OR found_seq <> p_erasure_seq THEN
        RETURN ARRAY[0, CASE WHEN found_seq <> p_erasure_seq THEN -1 ELSE current END, found_shards];
    END IF;

    -- Every INSERT selects its rows FROM the batch's checkpoint row (locked above: exactly
    -- one row) joined with the arrays, and takes the shard from it: Citus then pushes the
    -- whole INSERT … SELECT down to that one shard as one task. An INSERT … SELECT from the
    -- arrays alone is one Citus runs "via the coordinator" (on the worker, through an
    -- intermediate result), and a modifying CTE it splits into subplans: both were measured
    -- to cost the workers twice the CPU (docs/design/citus.md). On PostgreSQL the join
    -- costs one index lookup per statement.
    IF cardinality(a_lsn) > 0 THEN
        EXECUTE format($q$
            INSERT INTO %1$I.activity (shard, log_id, lsn, customer_id, occurred_at, kind, delivery_id, source_kind, source_id,
                                       message_type, link_id, url, human, bot_reason, user_agent, ip, open_reason)
            SELECT c.shard, c.log_id, u.*
            FROM %1$I.checkpoints c, unnest($3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) AS u
            WHERE c.shard = $1 AND c.log_id = $2
            $q$, p_schema)
        USING p_shard, p_log, a_lsn, a_customer, a_occurred, a_kind, a_delivery, a_source_kind, a_source_id,
              a_message_type, a_link_id, a_url, a_human, a_bot_reason, a_user_agent, a_ip, a_open_reason;
    END IF;
    IF cardinality(c_lsn) > 0 THEN
        -- An LSN corrected under two reasons keeps the last in their order, as one UPDATE
        -- per reason in that order did.
        EXECUTE format($q$
            UPDATE %I.activity a SET human = false, bot_reason = c.reason
            FROM (SELECT DISTINCT ON (lsn) lsn, reason FROM unnest($3, $4) AS u(lsn, reason) ORDER BY lsn, reason DESC) c
            WHERE a.shard = $1 AND a.log_id = $2 AND a.lsn = c.lsn
            $q$, p_schema) USING p_shard, p_log, c_lsn, c_reason;
    END IF;
    IF cardinality(d_lsn) > 0 THEN
        EXECUTE format($q$
            INSERT INTO %1$I.dead_letters (shard, log_id, lsn, error, payload)
            SELECT c.shard, c.log_id, u.* FROM %1$I.checkpoints c, unnest($3, $4, $5) AS u
            WHERE c.shard = $1 AND c.log_id = $2
            ON CONFLICT DO NOTHING
            $q$, p_schema) USING p_shard, p_log, d_lsn, d_error, d_payload;
    END IF;
    -- A compare-and-set again: the row locked above may belong to tables a rebuild swapped
    -- out while this call waited for it.
    EXECUTE format($q$
        UPDATE %I.checkpoints SET lsn = $3, window_start = $4, updated_at = now()
        WHERE shard = $1 AND log_id = $2 AND lsn = $5
        $q$, p_schema) USING p_shard, p_log, p_through, p_window_start, p_expected;
    GET DIAGNOSTICS moved = ROW_COUNT;
    IF moved <> 1 THEN
        RAISE EXCEPTION 'the checkpoint of log % shard % moved during the batch; it will be retried', p_log, p_shard
            USING ERRCODE = 'serialization_failure';
    END IF;

    -- The counters, as the temporary-table shape upserts them (ProjectionStore.writeCounts),
    -- keys in order (every daemon locks them in one order); the distinct counts move with
    -- the clicker rows (count_changes).
    IF cardinality(l_key) > 0 THEN
        EXECUTE format($q$
            INSERT INTO %1$I.link_clickers AS t
                (shard, link_key, customer_id, clicks, human_clicks, first_clicked_at, last_clicked_at)
            SELECT c.shard, d.* FROM %1$I.checkpoints c, unnest($3, $4, $5, $6, $7, $8) AS d
            WHERE c.shard = $1 AND c.log_id = $2 ORDER BY 1, 2, 3
            ON CONFLICT (shard, link_key, customer_id) DO UPDATE SET
                clicks = t.clicks + EXCLUDED.clicks,
                human_clicks = t.human_clicks + EXCLUDED.human_clicks,
                first_clicked_at = LEAST(t.first_clicked_at, EXCLUDED.first_clicked_at),
                last_clicked_at = GREATEST(t.last_clicked_at, EXCLUDED.last_clicked_at)
            $q$, p_schema) USING p_shard, p_log, lc_key, lc_customer, lc_clicks, lc_human, lc_first, lc_last;
        SELECT * INTO change_keys, changes
        FROM clickd_ingest.count_changes(p_shard, p_schema, 'link_clickers', 'link_key', 'human_clicks', lc_key, lc_customer, lc_human);
        EXECUTE format($q$
            INSERT INTO %1$I.link_totals AS t
                (shard, link_key, source_kind, source_id, link_id, url, total_clicks, human_clicks, unique_clickers,
                 first_click_at, last_click_at)
            SELECT c.shard, l.link_key, l.source_kind, l.source_id, l.link_id, l.url, l.total, l.human, coalesce(u.change, 0),
                   l.first, l.last
            FROM %1$I.checkpoints c,
                 unnest($3, $4, $5, $6, $7, $8, $9, $10, $11) AS l(link_key, source_kind, source_id, link_id, url, total, human, first, last)
                 LEFT JOIN unnest($12, $13) AS u(link_key, change) USING (link_key)
            WHERE c.shard = $1 AND c.log_id = $2 ORDER BY l.link_key
            ON CONFLICT (shard, link_key) DO UPDATE SET
                url = EXCLUDED.url,
                total_clicks = t.total_clicks + EXCLUDED.total_clicks,
                human_clicks = t.human_clicks + EXCLUDED.human_clicks,
                unique_clickers = t.unique_clickers + EXCLUDED.unique_clickers,
                first_click_at = LEAST(t.first_click_at, EXCLUDED.first_click_at),
                last_click_at = GREATEST(t.last_click_at, EXCLUDED.last_click_at)
            $q$, p_schema)
        USING p_shard, p_log, l_key, l_source_kind, l_source_id, l_link_id, l_url, l_total, l_human, l_first, l_last,
              change_keys, changes;
    END IF;
    IF cardinality(ld_key) > 0 THEN
        EXECUTE format($q$
            INSERT INTO %1$I.link_daily AS t (shard, link_key, day, total_clicks, human_clicks)
            SELECT c.shard, d.* FROM %1$I.checkpoints c, unnest($3, $4, $5, $6) AS d
            WHERE c.shard = $1 AND c.log_id = $2 ORDER BY 1, 2, 3
            ON CONFLICT (shard, link_key, day) DO UPDATE SET
                total_clicks = t.total_clicks + EXCLUDED.total_clicks, human_clicks = t.human_clicks + EXCLUDED.human_clicks
            $q$, p_schema) USING p_shard, p_log, ld_key, ld_day, ld_total, ld_human;
    END IF;
    IF cardinality(sh_key) > 0 THEN
        EXECUTE format($q$
            INSERT INTO %1$I.source_hourly AS t
                (shard, source_key, hour, delivered, total_clicks, human_clicks, total_opens, person_opens)
            SELECT c.shard, d.* FROM %1$I.checkpoints c, unnest($3, $4, $5, $6, $7, $8, $9) AS d
            WHERE c.shard = $1 AND c.log_id = $2 ORDER BY 1, 2, 3
            ON CONFLICT (shard, source_key, hour) DO UPDATE SET
                delivered = t.delivered + EXCLUDED.delivered, total_clicks = t.total_clicks + EXCLUDED.total_clicks,
                human_clicks = t.human_clicks + EXCLUDED.human_clicks, total_opens = t.total_opens + EXCLUDED.total_opens,
                person_opens = t.person_opens + EXCLUDED.person_opens
            $q$, p_schema) USING p_shard, p_log, sh_key, sh_hour, sh_delivered, sh_total, sh_human, sh_opens, sh_person_opens;
    END IF;
    IF cardinality(bd_key) > 0 THEN
        EXECUTE format($q$
            INSERT INTO %1$I.bot_daily AS t (shard, source_key, day, bot_reason, clicks)
            SELECT c.shard, d.* FROM %1$I.checkpoints c, unnest($3, $4, $5, $6) AS d
            WHERE c.shard = $1 AND c.log_id = $2 ORDER BY 1, 2, 3, 4
            ON CONFLICT (shard, source_key, day, bot_reason) DO UPDATE SET clicks = t.clicks + EXCLUDED.clicks
            $q$, p_schema) USING p_shard, p_log, bd_key, bd_day, bd_reason, bd_clicks;
    END IF;
    IF cardinality(od_key) > 0 THEN
        EXECUTE format($q$
            INSERT INTO %1$I.open_daily AS t (shard, source_key, day, reason, opens)
            SELECT c.shard, d.* FROM %1$I.checkpoints c, unnest($3, $4, $5, $6) AS d
            WHERE c.shard = $1 AND c.log_id = $2 ORDER BY 1, 2, 3, 4
            ON CONFLICT (shard, source_key, day, reason) DO UPDATE SET opens = t.opens + EXCLUDED.opens
            $q$, p_schema) USING p_shard, p_log, od_key, od_day, od_reason, od_opens;
    END IF;
    IF cardinality(s_key) > 0 THEN
        -- As for links: a customer's first human click on any link of the source makes them
        -- a clicked customer of the source; their last one corrected away, no more.
        change_keys := '{}';
        changes := '{}';
        IF cardinality(sc_key) > 0 THEN
            EXECUTE format($q$
                INSERT INTO %1$I.source_clickers AS t (shard, source_key, customer_id, human_clicks)
                SELECT c.shard, d.* FROM %1$I.checkpoints c, unnest($3, $4, $5) AS d
                WHERE c.shard = $1 AND c.log_id = $2 ORDER BY 1, 2, 3
                ON CONFLICT (shard, source_key, customer_id) DO UPDATE SET human_clicks = t.human_clicks + EXCLUDED.human_clicks
                $q$, p_schema) USING p_shard, p_log, sc_key, sc_customer, sc_human;
            SELECT * INTO change_keys, changes
            FROM clickd_ingest.count_changes(p_shard, p_schema, 'source_clickers', 'source_key', 'human_clicks', sc_key, sc_customer, sc_human);
        END IF;
        -- The same for openers: a customer's first open of the source as a person (a human
        -- click counts as one) makes them an opened customer.
        opened_keys := '{}';
        opened_changes := '{}';
        IF cardinality(so_key) > 0 THEN
            EXECUTE format($q$
                INSERT INTO %1$I.source_openers AS t (shard, source_key, customer_id, opens)
                SELECT c.shard, d.* FROM %1$I.checkpoints c, unnest($3, $4, $5) AS d
                WHERE c.shard = $1 AND c.log_id = $2 ORDER BY 1, 2, 3
                ON CONFLICT (shard, source_key, customer_id) DO UPDATE SET opens = t.opens + EXCLUDED.opens
                $q$, p_schema) USING p_shard, p_log, so_key, so_customer, so_opens;
            SELECT * INTO opened_keys, opened_changes
            FROM clickd_ingest.count_changes(p_shard, p_schema, 'source_openers', 'source_key', 'opens', so_key, so_customer, so_opens);
        END IF;
        EXECUTE format($q$
            INSERT INTO %1$I.source_totals AS t
                (shard, source_key, source_kind, source_id, delivered, total_clicks, clicked_customers, human_clicks,
                 total_opens, machine_opens, opened_customers)
            SELECT c.shard, s.source_key, s.source_kind, s.source_id, s.delivered, s.clicks, coalesce(u.change, 0), s.human,
                   s.opens, s.machine_opens, coalesce(o.change, 0)
            FROM %1$I.checkpoints c,
                 unnest($3, $4, $5, $6, $7, $8, $9, $10)
                     AS s(source_key, source_kind, source_id, delivered, clicks, human, opens, machine_opens)
                 LEFT JOIN unnest($11, $12) AS u(source_key, change) USING (source_key)
                 LEFT JOIN unnest($13, $14) AS o(source_key, change) USING (source_key)
            WHERE c.shard = $1 AND c.log_id = $2 ORDER BY s.source_key
            ON CONFLICT (shard, source_key) DO UPDATE SET
                delivered = t.delivered + EXCLUDED.delivered, total_clicks = t.total_clicks + EXCLUDED.total_clicks,
                clicked_customers = t.clicked_customers + EXCLUDED.clicked_customers,
                human_clicks = t.human_clicks + EXCLUDED.human_clicks, total_opens = t.total_opens + EXCLUDED.total_opens,
                machine_opens = t.machine_opens + EXCLUDED.machine_opens,
                opened_customers = t.opened_customers + EXCLUDED.opened_customers
            $q$, p_schema)
        USING p_shard, p_log, s_key, s_kind, s_id, s_delivered, s_clicks, s_human, s_opens, s_machine_opens,
              change_keys, changes, opened_keys, opened_changes;
        IF 0 > ANY (sc_human) THEN
            -- A source clicker row exists while its human clicks are more than 0 (a burst
            -- correction lowers them).
            EXECUTE format($q$
                DELETE FROM %I.source_clickers t USING unnest($2, $3, $4) AS d(source_key, customer_id, human)
                WHERE t.shard = $1 AND t.source_key = d.source_key AND t.customer_id = d.customer_id
                  AND d.human < 0 AND t.human_clicks <= 0
                $q$, p_schema) USING p_shard, sc_key, sc_customer, sc_human;
        END IF;
        IF 0 > ANY (so_opens) THEN
            -- Likewise a source opener row, while its opens are more than 0.
            EXECUTE format($q$
                DELETE FROM %I.source_openers t USING unnest($2, $3, $4) AS d(source_key, customer_id, opens)
                WHERE t.shard = $1 AND t.source_key = d.source_key AND t.customer_id = d.customer_id
                  AND d.opens < 0 AND t.opens <= 0
                $q$, p_schema) USING p_shard, so_key, so_customer, so_opens;
        END IF;
    END IF;
    RETURN ARRAY[1, p_through, found_shards];
END
$function$;

REVOKE ALL ON FUNCTION clickd_ingest.apply_batch FROM PUBLIC;
REVOKE ALL ON clickd_ingest.erasure_key, clickd_ingest.erasures FROM PUBLIC;

CREATE VIEW clickd.erasures AS
SELECT erasure_id, requested_at, erased_at, log_clean_at FROM clickd_ingest.erasures;
GRANT SELECT ON clickd.erasures TO clickd_analyst;
