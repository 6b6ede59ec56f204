-- One (log, shard) batch applied by one function call (issue 28; docs/design/citus.md,
-- "Ingest statements on Citus").
--
-- The ingest daemon's "function" write shape: the checkpoint's check and compare-and-set,
-- the activity rows, the burst corrections, the dead letters and every counter upsert of
-- one batch in one statement, `SELECT clickd_ingest.apply_batch(…)`, with the batch's rows
-- as arrays (one per column, in the order of the temporary-table shape's COPY columns).
-- On a Citus coordinator, `clickd migrate` makes it a distributed function by its first
-- argument, co-located with the checkpoints: Citus then sends the whole call to the one
-- worker that holds the batch's shard, which runs it against its own shards — one round
-- trip, one one-phase commit, no row of the batch through the coordinator. Called outside
-- a transaction block it is its own transaction; inside one (a rebuild's swap) Citus runs
-- it on the coordinator, with the same result.
--
-- It lives in a schema of its own because a rebuild swaps `clickd_internal` for its shadow
-- schema by renaming both: the function takes the schema of the tables it writes as an
-- argument (`clickd_internal`, or the shadow schema a rebuild replays into) and runs its
-- statements with that schema quoted as an identifier (format's %I).
--
-- Returns {applied, lsn, shards}: {1, p_through, shards} when it wrote the batch, which it
-- does only when the checkpoint was `p_expected` and the shard count `p_shards`; otherwise
-- {0, the checkpoint it found, the shard count it found} ({0, NULL, shards} when the
-- (log, shard) has no checkpoint row), and the caller re-plans, as for the other shapes.

CREATE SCHEMA clickd_ingest;

-- The change of a distinct count per key (a link's unique clickers, a source's clicked
-- customers), read back after a clicker upsert: the rows it wrote are locked by it, so
-- their human clicks are this transaction's new values, and the deltas are in the arrays —
-- new - delta <= 0 < new is one more clicker, the reverse one fewer. A router SELECT on
-- one shard (on Citus it runs where apply_batch runs). Returns the keys and their changes.
CREATE FUNCTION clickd_ingest.clicker_changes(
    p_shard integer, p_schema text, p_table text, p_key text, d_key uuid[], d_customer text[], d_human bigint[],
    OUT keys uuid[], OUT changes bigint[]
) LANGUAGE plpgsql AS $function$
BEGIN
    EXECUTE format($q$
        SELECT coalesce(array_agg(key), '{}'), coalesce(array_agg(change), '{}') FROM (
            SELECT t.%3$I AS key, sum(CASE WHEN t.human_clicks > 0 AND t.human_clicks - d.human <= 0 THEN 1
                                           WHEN t.human_clicks <= 0 AND t.human_clicks - d.human > 0 THEN -1
                                           ELSE 0 END) AS change
            FROM %1$I.%2$I t JOIN unnest($2, $3, $4) AS d(key, customer_id, human)
              ON t.%3$I = d.key AND t.customer_id = d.customer_id
            WHERE t.shard = $1 GROUP BY t.%3$I) x
        $q$, p_schema, p_table, p_key) INTO keys, changes USING p_shard, d_key, d_customer, d_human;
END
$function$;

CREATE FUNCTION clickd_ingest.apply_batch(
    p_shard integer, p_schema text, p_log uuid, p_shards integer, p_expected bigint, p_through bigint, p_window_start bigint,
    -- activity (without shard, log_id: the batch's)
    a_lsn bigint[], a_customer text[], a_occurred timestamptz[], a_kind text[], a_delivery text[],
    a_source_kind text[], a_source_id text[], a_message_type text[], a_link_id text[], a_url text[],
    a_human boolean[], a_bot_reason text[], a_user_agent text[], a_ip inet[],
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
    -- bot_daily deltas
    bd_key uuid[], bd_day date[], bd_reason text[], bd_clicks bigint[],
    -- source_totals deltas
    s_key uuid[], s_kind text[], s_id text[], s_delivered bigint[], s_clicks bigint[], s_human bigint[],
    -- source_clickers deltas
    sc_key uuid[], sc_customer text[], sc_human bigint[]
) RETURNS bigint[] LANGUAGE plpgsql AS $function$
DECLARE
    current bigint;
    found_shards integer;
    moved integer;
    change_keys uuid[];
    changes bigint[];
BEGIN
    EXECUTE format(
        'SELECT c.lsn, s.shards FROM %1$I.checkpoints c, %1$I.sharding s WHERE c.shard = $1 AND c.log_id = $2 FOR UPDATE OF c',
        p_schema) INTO current, found_shards USING p_shard, p_log;
    IF found_shards IS NULL THEN
        EXECUTE format('SELECT shards FROM %I.sharding', p_schema) INTO found_shards;
    END IF;
    IF current IS NULL OR current <> p_expected OR found_shards <> p_shards THEN
        RETURN ARRAY[0, current, found_shards];
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
                                       message_type, link_id, url, human, bot_reason, user_agent, ip)
            SELECT c.shard, c.log_id, u.*
            FROM %1$I.checkpoints c, unnest($3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) AS u
            WHERE c.shard = $1 AND c.log_id = $2
            $q$, p_schema)
        USING p_shard, p_log, a_lsn, a_customer, a_occurred, a_kind, a_delivery, a_source_kind, a_source_id,
              a_message_type, a_link_id, a_url, a_human, a_bot_reason, a_user_agent, a_ip;
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
    -- the clicker rows (clicker_changes).
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
        FROM clickd_ingest.clicker_changes(p_shard, p_schema, 'link_clickers', 'link_key', lc_key, lc_customer, lc_human);
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
            INSERT INTO %1$I.source_hourly AS t (shard, source_key, hour, delivered, total_clicks, human_clicks)
            SELECT c.shard, d.* FROM %1$I.checkpoints c, unnest($3, $4, $5, $6, $7) AS d
            WHERE c.shard = $1 AND c.log_id = $2 ORDER BY 1, 2, 3
            ON CONFLICT (shard, source_key, hour) DO UPDATE SET
                delivered = t.delivered + EXCLUDED.delivered, total_clicks = t.total_clicks + EXCLUDED.total_clicks,
                human_clicks = t.human_clicks + EXCLUDED.human_clicks
            $q$, p_schema) USING p_shard, p_log, sh_key, sh_hour, sh_delivered, sh_total, sh_human;
    END IF;
    IF cardinality(bd_key) > 0 THEN
        EXECUTE format($q$
            INSERT INTO %1$I.bot_daily AS t (shard, source_key, day, bot_reason, clicks)
            SELECT c.shard, d.* FROM %1$I.checkpoints c, unnest($3, $4, $5, $6) AS d
            WHERE c.shard = $1 AND c.log_id = $2 ORDER BY 1, 2, 3, 4
            ON CONFLICT (shard, source_key, day, bot_reason) DO UPDATE SET clicks = t.clicks + EXCLUDED.clicks
            $q$, p_schema) USING p_shard, p_log, bd_key, bd_day, bd_reason, bd_clicks;
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
            FROM clickd_ingest.clicker_changes(p_shard, p_schema, 'source_clickers', 'source_key', sc_key, sc_customer, sc_human);
        END IF;
        EXECUTE format($q$
            INSERT INTO %1$I.source_totals AS t
                (shard, source_key, source_kind, source_id, delivered, total_clicks, clicked_customers, human_clicks)
            SELECT c.shard, s.source_key, s.source_kind, s.source_id, s.delivered, s.clicks, coalesce(u.change, 0), s.human
            FROM %1$I.checkpoints c,
                 unnest($3, $4, $5, $6, $7, $8) AS s(source_key, source_kind, source_id, delivered, clicks, human)
                 LEFT JOIN unnest($9, $10) AS u(source_key, change) USING (source_key)
            WHERE c.shard = $1 AND c.log_id = $2 ORDER BY s.source_key
            ON CONFLICT (shard, source_key) DO UPDATE SET
                delivered = t.delivered + EXCLUDED.delivered, total_clicks = t.total_clicks + EXCLUDED.total_clicks,
                clicked_customers = t.clicked_customers + EXCLUDED.clicked_customers,
                human_clicks = t.human_clicks + EXCLUDED.human_clicks
            $q$, p_schema)
        USING p_shard, p_log, s_key, s_kind, s_id, s_delivered, s_clicks, s_human, change_keys, changes;
        IF 0 > ANY (sc_human) THEN
            -- A source clicker row exists while its human clicks are more than 0 (a burst
            -- correction lowers them).
            EXECUTE format($q$
                DELETE FROM %I.source_clickers t USING unnest($2, $3, $4) AS d(source_key, customer_id, human)
                WHERE t.shard = $1 AND t.source_key = d.source_key AND t.customer_id = d.customer_id
                  AND d.human < 0 AND t.human_clicks <= 0
                $q$, p_schema) USING p_shard, sc_key, sc_customer, sc_human;
        END IF;
    END IF;
    RETURN ARRAY[1, p_through, found_shards];
END
$function$;

-- It writes with its caller's rights (SECURITY INVOKER); no one else need call it.
REVOKE ALL ON FUNCTION clickd_ingest.apply_batch, clickd_ingest.clicker_changes FROM PUBLIC;
