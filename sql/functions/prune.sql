-- octo_webhooks.prune(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- SECURITY DEFINER with a fixed search_path: the runtime role may prune
-- through it without DELETE on any table.
-- One prune batch, in one dispatcher at a time across all hosts (a
-- transaction-scoped advisory lock; skipped while another holds it). The
-- events tally runs on every call; the deletions only when the last round
-- that finished ran p_every ago or more (or the last batch was full). Each call is its own short
-- transaction touching at most p_batch rows of each kind, so no long lock
-- and no WAL burst. Order: count new events by type (so pruning never
-- loses a count), then ended deliveries older than the retention (their
-- attempts first), their events once no delivery is left, events that
-- never had one, object and resolved states of events beyond the horizon,
-- old rate windows and notices.
CREATE OR REPLACE FUNCTION octo_webhooks.prune(p_retention interval, p_every interval, p_batch int, p_owner text)
-- Every row it deletes is found by key (the ended index, the batch's ids):
-- as complete(), index scans only; left to itself, with statistics behind a
-- bulk load, the planner seq-scanned attempts for `delivery_id = ANY (500
-- ids)` (133 ms instead of 4 ms a batch in bench/ops). jit off: a seq scan
-- that remains (the one-row maintenance table) then costs 1e10, past
-- jit_above_cost, and JIT-compiling it took 450 ms a call.
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET jit = off AS $$
DECLARE
    m           octo_webhooks.maintenance;
    v_started   timestamptz := clock_timestamp();
    v_cut       timestamptz := clock_timestamp() - p_retention;
    v_mark      bigint;
    v_ev        bigint[];
    v_scan      bigint[];
    v_stop      bigint;
    v_to        bigint;
    v_ids       uuid[];
    v_dl        int := 0;
    v_att       int := 0;
    v_events    int := 0;
    v_n         int;
    v_states    int := 0;
    v_more      boolean := false;
    v_tally_full boolean;
    v_win       bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('octo_webhooks.prune')) THEN
        RETURN jsonb_build_object('ran', false, 'why', 'locked');
    END IF;
    SELECT * INTO m FROM octo_webhooks.maintenance FOR UPDATE;

    -- Tally: events older than 5 s (an emit still uncommitted after that
    -- is not counted), at most 20 batches' worth a call; a full one asks to
    -- be called again at once, so the tally outruns any emit rate.
    SELECT coalesce(max(id), m.tallied_to), count(*) >= p_batch * 20 INTO v_win, v_tally_full
      FROM (SELECT id FROM octo_webhooks.events WHERE id > m.tallied_to ORDER BY id LIMIT p_batch * 20) x;
    SELECT coalesce(max(id), m.tallied_to) INTO v_mark FROM octo_webhooks.events
     WHERE id > m.tallied_to AND id <= v_win AND created_at < clock_timestamp() - interval '5 seconds';
    v_tally_full := v_tally_full AND v_mark = v_win;     -- more to count that is old enough
    INSERT INTO octo_webhooks.event_totals AS t (event_type, n)
    SELECT event_type, count(*) FROM octo_webhooks.events WHERE id > m.tallied_to AND id <= v_mark
     GROUP BY event_type
    ON CONFLICT (event_type) DO UPDATE SET n = t.n + EXCLUDED.n;
    m.tallied_to := v_mark;
    IF NOT m.prune_more AND m.pruned_at > clock_timestamp() - p_every THEN
        UPDATE octo_webhooks.maintenance SET tallied_to = m.tallied_to;
        RETURN jsonb_build_object('ran', false, 'why', 'recent', 'more', v_tally_full);
    END IF;

    -- Ended deliveries beyond the retention, oldest first, deleted children
    -- first: their attempts in one statement, then the deliveries, then their
    -- events once no delivery is left (the foreign keys' ON DELETE CASCADE
    -- would do it row by row, one trigger query per delivery; the triggers
    -- still fire but find nothing). The status is checked again as each row
    -- is deleted: a delivery replayed meanwhile (pending again) stays.
    SELECT array_agg(id), array_agg(DISTINCT event_id) INTO v_ids, v_ev
      FROM (SELECT id, event_id FROM octo_webhooks.deliveries
             WHERE status <> 'pending' AND completed_at < v_cut
             ORDER BY completed_at LIMIT p_batch) d;
    IF v_ids IS NOT NULL THEN
        -- (the recheck: one lookup of the batch's ids, usually finding none)
        DELETE FROM octo_webhooks.attempts a
         WHERE a.delivery_id = ANY (v_ids)
           AND a.delivery_id <> ALL (coalesce((SELECT array_agg(d.id) FROM octo_webhooks.deliveries d
                                                WHERE d.id = ANY (v_ids) AND d.status = 'pending'), '{}'));
        GET DIAGNOSTICS v_att = ROW_COUNT;
        DELETE FROM octo_webhooks.deliveries x WHERE x.id = ANY (v_ids) AND x.status <> 'pending';
        GET DIAGNOSTICS v_dl = ROW_COUNT;
    END IF;
    v_more := coalesce(cardinality(v_ids), 0) >= p_batch;
    IF v_ev IS NOT NULL THEN
        DELETE FROM octo_webhooks.events e
         WHERE e.id = ANY (v_ev) AND e.id <= m.tallied_to
           AND NOT EXISTS (SELECT 1 FROM octo_webhooks.deliveries d WHERE d.event_id = e.id);
        GET DIAGNOSTICS v_events = ROW_COUNT;
    END IF;

    -- Events in id order from where the last round stopped, up to the first
    -- one inside the retention: those without deliveries go (the rest go
    -- with their last delivery, above).
    SELECT array_agg(id ORDER BY id), min(id) FILTER (WHERE created_at >= v_cut) INTO v_scan, v_stop
      FROM (SELECT id, created_at FROM octo_webhooks.events
             WHERE id > m.pruned_to AND id <= m.tallied_to ORDER BY id LIMIT p_batch) x;
    IF v_scan IS NOT NULL THEN
        SELECT max(s) INTO v_to FROM unnest(v_scan) s WHERE v_stop IS NULL OR s < v_stop;
        IF v_to IS NOT NULL THEN
            DELETE FROM octo_webhooks.events e
             WHERE e.id > m.pruned_to AND e.id <= v_to AND e.routed      -- (not yet routed: kept)
               AND NOT EXISTS (SELECT 1 FROM octo_webhooks.deliveries d WHERE d.event_id = e.id);
            GET DIAGNOSTICS v_n = ROW_COUNT;
            v_events := v_events + v_n;
            m.pruned_to := v_to;
            v_more := v_more OR (v_stop IS NULL AND cardinality(v_scan) >= p_batch);
        END IF;
    END IF;

    -- States last written by an event beyond the horizon: the object's next
    -- event starts a new diff.
    DELETE FROM octo_webhooks.object_states s
     WHERE s.ctid = ANY (ARRAY(SELECT ctid FROM octo_webhooks.object_states
                                WHERE event_id <= m.pruned_to LIMIT p_batch));
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_states := v_n;
    DELETE FROM octo_webhooks.resolved_states s
     WHERE s.ctid = ANY (ARRAY(SELECT ctid FROM octo_webhooks.resolved_states
                                WHERE event_id <= m.pruned_to LIMIT p_batch));
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_states := v_states + v_n;
    v_more := v_more OR v_states >= p_batch;

    DELETE FROM octo_webhooks.webhook_rate WHERE window_start < clock_timestamp() - interval '1 minute';
    -- Notices: ended ones after the retention; ones nobody sends (no
    -- operator endpoint configured) after a day.
    DELETE FROM octo_webhooks.notices
     WHERE (status <> 'pending' AND completed_at < v_cut)
        OR (status = 'pending' AND logged AND created_at < clock_timestamp() - greatest(p_retention, interval '1 day'));
    DELETE FROM octo_webhooks.prune_log WHERE id <= (SELECT max(id) - 10000 FROM octo_webhooks.prune_log);

    UPDATE octo_webhooks.maintenance
       SET tallied_to = m.tallied_to, pruned_to = m.pruned_to, prune_more = v_more,
           pruned_at = CASE WHEN v_more THEN pruned_at ELSE clock_timestamp() END;
    INSERT INTO octo_webhooks.prune_log (owner, started_at, finished_at, deliveries, events, states)
         VALUES (p_owner, v_started, clock_timestamp(), v_dl, v_events, v_states);
    -- In-flight counts of webhooks deleted with nothing left in flight: a
    -- row per webhook ever claimed would otherwise stay. They are written
    -- under the claims' lock only (see complete()): taken last, so a claim
    -- waits for this one statement, and only when there is one to delete.
    IF EXISTS (SELECT 1 FROM octo_webhooks.webhook_flight f WHERE f.in_flight = 0
                  AND NOT EXISTS (SELECT 1 FROM octo_webhooks.webhooks w WHERE w.id = f.webhook_id)) THEN
        PERFORM pg_advisory_xact_lock(7261003, 1);
        DELETE FROM octo_webhooks.webhook_flight f WHERE f.in_flight = 0
           AND NOT EXISTS (SELECT 1 FROM octo_webhooks.webhooks w WHERE w.id = f.webhook_id);
    END IF;
    RETURN jsonb_build_object('ran', true, 'deliveries', v_dl, 'attempts', v_att, 'events', v_events, 'states', v_states,
                              'more', v_more OR v_tally_full);
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.prune(interval, interval, int, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.prune(interval, interval, int, text) TO octo_webhooks_runtime;  -- the dispatcher (pruning thread)
