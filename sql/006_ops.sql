-- 005: operations. Retention (prune), the figures behind /metrics and
-- /status (stats), events counted by type, and the operator's notices.

-- Pruning walks ended deliveries oldest first: a partial index holds only
-- them (pending rows, the hot ones, are not in it).
CREATE INDEX deliveries_ended ON octo_webhooks.deliveries (completed_at) WHERE status <> 'pending';
-- Failed deliveries are few: counted exactly (up to a cap) from their own index.
CREATE INDEX deliveries_failed ON octo_webhooks.deliveries (webhook_id) WHERE status = 'failed';
-- States are pruned by the event that wrote them.
CREATE INDEX object_states_event ON octo_webhooks.object_states (event_id);
CREATE INDEX resolved_states_event ON octo_webhooks.resolved_states (event_id);

-- One row: where pruning and the events tally are. Whoever holds the prune
-- advisory lock updates it.
CREATE TABLE octo_webhooks.maintenance (
    one           boolean PRIMARY KEY DEFAULT true CHECK (one),
    tallied_to    bigint NOT NULL DEFAULT 0,       -- events counted into event_totals up to this id
    pruned_to     bigint NOT NULL DEFAULT 0,       -- events older than the retention up to this id were looked at
    pruned_at     timestamptz,                     -- the last round that found nothing more to do
    prune_more    boolean NOT NULL DEFAULT false   -- the last batch was full: go on without waiting
);
INSERT INTO octo_webhooks.maintenance DEFAULT VALUES;

-- Events emitted, by type, since the schema exists (a counter that pruning
-- does not lower).
CREATE TABLE octo_webhooks.event_totals (
    event_type  text PRIMARY KEY,
    n           bigint NOT NULL
);

-- One row per prune batch (the last 10,000): who pruned, when, what.
-- Batches of different dispatchers never overlap (the advisory lock is held
-- for the whole transaction that writes the row).
CREATE TABLE octo_webhooks.prune_log (
    id          bigserial PRIMARY KEY,
    owner       text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    deliveries  integer NOT NULL,
    events      integer NOT NULL,
    states      integer NOT NULL
);

-- Operator notices: a small queue of its own, drained by the dispatchers
-- (claimed with SKIP LOCKED, retried on the retry schedule, signed), so a
-- notice survives restarts and outages like a delivery does without
-- becoming a fake webhook that resellers' listings, caps and payloads would
-- have to leave out.
CREATE TABLE octo_webhooks.notices (
    id               bigserial PRIMARY KEY,
    type             text NOT NULL CHECK (type IN ('webhook.disabled', 'delivery.exhausted')),
    webhook_id       uuid NOT NULL,
    connection_id    text NOT NULL,
    reason           text NOT NULL,
    count            integer NOT NULL DEFAULT 1,      -- exhausted deliveries folded into it
    deliveries       uuid[] NOT NULL DEFAULT '{}',   -- the first few of them
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    window_at        timestamptz NOT NULL DEFAULT clock_timestamp(), -- due no earlier than this
    logged           boolean NOT NULL DEFAULT false, -- its warn line was written
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    claim_id         uuid,
    completed_at     timestamptz,
    last_error       text
);
CREATE INDEX notices_due ON octo_webhooks.notices (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notices_unlogged ON octo_webhooks.notices (id) WHERE NOT logged;
CREATE INDEX notices_webhook ON octo_webhooks.notices (webhook_id, type, window_at);
-- Exhausted deliveries of a webhook fold into its one open notice.
CREATE UNIQUE INDEX notices_open ON octo_webhooks.notices (webhook_id)
    WHERE type = 'delivery.exhausted' AND status = 'pending' AND attempts = 0 AND claim_id IS NULL;

-- Every deactivation by the module (410, auto-disable) becomes a notice,
-- whichever path made it: a trigger on the rare webhook update, not on the
-- hot delivery rows.
CREATE FUNCTION octo_webhooks.webhook_disabled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO octo_webhooks.notices (type, webhook_id, connection_id, reason)
         VALUES ('webhook.disabled', NEW.id, NEW.connection_id, NEW.disabled_reason);
    PERFORM pg_notify('octo_webhooks', '');
    RETURN NULL;
END $$;

CREATE TRIGGER webhooks_disabled AFTER UPDATE OF active ON octo_webhooks.webhooks
    FOR EACH ROW WHEN (OLD.active AND NOT NEW.active AND NEW.disabled_reason IS NOT NULL)
    EXECUTE FUNCTION octo_webhooks.webhook_disabled();

-- After complete(): the batch's deliveries that ended failed (retries
-- exhausted, not retried, or never sendable), except 410s (their webhook's
-- disable is the notice). Folds them into one open notice per webhook, due at
-- most once a minute, and returns them for the warn lines.
CREATE FUNCTION octo_webhooks.note_exhausted(p_results jsonb)
RETURNS TABLE (webhook_id uuid, connection_id text, delivery_id uuid, reason text)
LANGUAGE sql AS $$
    WITH e AS (SELECT d.webhook_id, d.connection_id, d.id AS delivery_id,
                      coalesce(d.last_error, 'failed') AS reason
                 FROM jsonb_to_recordset(p_results) AS r(id uuid, attempt int, status text, gone boolean)
                 JOIN octo_webhooks.deliveries d ON d.id = r.id
                WHERE r.status = 'failed' AND NOT coalesce(r.gone, false) AND d.status = 'failed'
                  AND d.attempts = r.attempt
                  AND d.completed_at > clock_timestamp() - interval '10 minutes'),
    ins AS (INSERT INTO octo_webhooks.notices AS n (type, webhook_id, connection_id, reason, count,
                                                   deliveries, window_at, next_attempt_at, logged)
            SELECT 'delivery.exhausted', g.webhook_id, g.connection_id, g.reason, g.n, g.ids, w.at, w.at, true
              FROM (SELECT e.webhook_id, min(e.connection_id) AS connection_id, min(e.reason) AS reason,
                           count(*) AS n, (array_agg(e.delivery_id))[1:10] AS ids
                      FROM e GROUP BY e.webhook_id) g
             CROSS JOIN LATERAL (SELECT greatest(clock_timestamp(),
                     (SELECT max(p.window_at) + interval '1 minute' FROM octo_webhooks.notices p
                       WHERE p.webhook_id = g.webhook_id AND p.type = 'delivery.exhausted')) AS at) w
            ON CONFLICT (webhook_id) WHERE type = 'delivery.exhausted' AND status = 'pending'
                                           AND attempts = 0 AND claim_id IS NULL
            DO UPDATE SET count = n.count + EXCLUDED.count, reason = EXCLUDED.reason,
                          deliveries = (n.deliveries || EXCLUDED.deliveries)[1:10])
    SELECT * FROM e;
$$;

-- The dispatcher's notice round: disable notices not yet logged (each logged
-- once, by whoever takes it) and, when an operator endpoint is configured,
-- due notices claimed under a lease.
CREATE FUNCTION octo_webhooks.notices_take(p_send boolean, p_limit int, p_lease interval)
RETURNS TABLE (o_id bigint, o_claim uuid, o_type text, o_webhook uuid, o_connection text, o_reason text,
               o_count int, o_deliveries uuid[], o_at text, o_attempts int, o_log boolean)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH l AS (SELECT n.id FROM octo_webhooks.notices n WHERE NOT n.logged
                ORDER BY n.id LIMIT p_limit FOR UPDATE SKIP LOCKED)
    UPDATE octo_webhooks.notices n SET logged = true FROM l WHERE n.id = l.id
    RETURNING n.id, NULL::uuid, n.type, n.webhook_id, n.connection_id, n.reason, n.count, n.deliveries,
              octo_webhooks.iso(n.created_at), n.attempts, true;
    IF p_send THEN
        RETURN QUERY
        WITH c AS (SELECT n.id FROM octo_webhooks.notices n
                    WHERE n.status = 'pending' AND n.next_attempt_at <= clock_timestamp()
                    ORDER BY n.next_attempt_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
        UPDATE octo_webhooks.notices n
           SET claim_id = gen_random_uuid(), next_attempt_at = clock_timestamp() + p_lease
          FROM c WHERE n.id = c.id
        RETURNING n.id, n.claim_id, n.type, n.webhook_id, n.connection_id, n.reason, n.count, n.deliveries,
                  octo_webhooks.iso(n.created_at), n.attempts, false;
    END IF;
END $$;

-- A notice's attempt: sent, failed for good, or due again after p_retry_in.
CREATE FUNCTION octo_webhooks.notice_done(p_id bigint, p_claim uuid, p_status text, p_retry_in interval,
                                          p_error text)
RETURNS void LANGUAGE sql AS $$
    UPDATE octo_webhooks.notices
       SET status = p_status, attempts = attempts + 1, claim_id = NULL, last_error = p_error,
           next_attempt_at = CASE WHEN p_status = 'pending' THEN clock_timestamp() + p_retry_in
                                  ELSE next_attempt_at END,
           completed_at = CASE WHEN p_status = 'pending' THEN NULL ELSE clock_timestamp() END
     WHERE id = p_id AND claim_id = p_claim;
$$;

-- A count that is exact up to p_cap rows and the planner's estimate above.
CREATE FUNCTION octo_webhooks.capped_count(p_query text, p_cap int, OUT n bigint, OUT estimated boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_plan json;
BEGIN
    EXECUTE format('SELECT count(*) FROM (%s LIMIT %s) x', p_query, p_cap) INTO n;
    estimated := n >= p_cap;
    IF estimated THEN
        EXECUTE 'EXPLAIN (FORMAT JSON) ' || p_query INTO v_plan;
        n := greatest(p_cap, (v_plan->0->'Plan'->>'Plan Rows')::bigint);
    END IF;
END $$;

-- The queue's figures for /metrics and /status, cheap at any size: no
-- count(*) over a big table. pending, due and failed are exact up to 1,000
-- (index scans under a cap) and planner estimates above; succeeded is exact
-- while the table is small and an estimate (statistics) beyond.
CREATE FUNCTION octo_webhooks.stats() RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_cap     int := 1000;
    v_pending record;
    v_due     record;
    v_failed  record;
    v_total   bigint;
    v_succ    bigint;
    v_succ_est boolean := true;
    v_oldest  timestamptz;
    v_plan    json;
    v_now     timestamptz := clock_timestamp();
BEGIN
    SELECT * INTO v_pending FROM octo_webhooks.capped_count(
        'SELECT 1 FROM octo_webhooks.deliveries WHERE status = ''pending''', v_cap);
    SELECT * INTO v_due FROM octo_webhooks.capped_count(format(
        'SELECT 1 FROM octo_webhooks.deliveries WHERE status = ''pending'' AND next_attempt_at <= %L::timestamptz',
        v_now), v_cap);
    SELECT * INTO v_failed FROM octo_webhooks.capped_count(
        'SELECT 1 FROM octo_webhooks.deliveries WHERE status = ''failed''', v_cap);
    SELECT min(next_attempt_at) INTO v_oldest FROM octo_webhooks.deliveries
     WHERE status = 'pending' AND next_attempt_at <= v_now;
    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT 1 FROM octo_webhooks.deliveries' INTO v_plan;
    v_total := (v_plan->0->'Plan'->>'Plan Rows')::bigint;
    IF v_total <= 20000 THEN
        SELECT count(*) INTO v_succ FROM octo_webhooks.deliveries WHERE status = 'succeeded';
        v_succ_est := false;
    ELSE
        EXECUTE 'EXPLAIN (FORMAT JSON) SELECT 1 FROM octo_webhooks.deliveries WHERE status = ''succeeded'''
           INTO v_plan;
        v_succ := (v_plan->0->'Plan'->>'Plan Rows')::bigint;
    END IF;
    RETURN jsonb_build_object(
        'deliveries', jsonb_build_object('pending', v_pending.n, 'succeeded', v_succ, 'failed', v_failed.n),
        'estimated', jsonb_build_object('pending', v_pending.estimated, 'succeeded', v_succ_est,
                                        'failed', v_failed.estimated, 'due', v_due.estimated),
        'due', v_due.n,
        'oldestDueSeconds', coalesce(greatest(extract(epoch FROM v_now - v_oldest), 0), 0),
        'webhooks', (SELECT jsonb_build_object('active', count(*) FILTER (WHERE active),
                                               'disabled', count(*) FILTER (WHERE NOT active))
                       FROM octo_webhooks.webhooks),
        'events', coalesce((SELECT jsonb_object_agg(event_type, n) FROM octo_webhooks.event_totals), '{}'),
        'notices', (SELECT jsonb_build_object('pending', count(*)) FROM octo_webhooks.notices
                     WHERE status = 'pending'),
        'prune', (SELECT jsonb_build_object('owner', l.owner, 'at', octo_webhooks.iso(l.finished_at),
                                            'deliveries', l.deliveries, 'events', l.events)
                    FROM octo_webhooks.prune_log l ORDER BY l.id DESC LIMIT 1));
END $$;

-- One prune batch, in one dispatcher at a time across all hosts (a
-- transaction-scoped advisory lock; skipped while another holds it). The
-- events tally runs on every call; the deletions only when the last round
-- that finished ran p_every ago or more (or the last batch was full). Each call is its own short
-- transaction touching at most p_batch rows of each kind, so no long lock
-- and no WAL burst. Order: count new events by type (so pruning never
-- loses a count), then ended deliveries older than the retention (with
-- their attempts), their events once no delivery is left, events that
-- never had one, object and resolved states of events beyond the horizon,
-- old rate windows and notices.
CREATE FUNCTION octo_webhooks.prune(p_retention interval, p_every interval, p_batch int, p_owner text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    m           octo_webhooks.maintenance;
    v_started   timestamptz := clock_timestamp();
    v_cut       timestamptz := clock_timestamp() - p_retention;
    v_mark      bigint;
    v_ev        bigint[];
    v_scan      bigint[];
    v_stop      bigint;
    v_to        bigint;
    v_dl        int := 0;
    v_events    int := 0;
    v_n         int;
    v_states    int := 0;
    v_more      boolean := false;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('octo_webhooks.prune')) THEN
        RETURN jsonb_build_object('ran', false, 'why', 'locked');
    END IF;
    SELECT * INTO m FROM octo_webhooks.maintenance FOR UPDATE;

    -- Tally: events older than 5 s (an emit still uncommitted after that
    -- is not counted), at most 10 batches' worth a round.
    SELECT coalesce(max(id), m.tallied_to) INTO v_mark
      FROM (SELECT id FROM octo_webhooks.events WHERE id > m.tallied_to ORDER BY id LIMIT p_batch * 10) x;
    SELECT coalesce(max(id), m.tallied_to) INTO v_mark FROM octo_webhooks.events
     WHERE id > m.tallied_to AND id <= v_mark AND created_at < clock_timestamp() - interval '5 seconds';
    INSERT INTO octo_webhooks.event_totals AS t (event_type, n)
    SELECT event_type, count(*) FROM octo_webhooks.events WHERE id > m.tallied_to AND id <= v_mark
     GROUP BY event_type
    ON CONFLICT (event_type) DO UPDATE SET n = t.n + EXCLUDED.n;
    m.tallied_to := v_mark;
    IF NOT m.prune_more AND m.pruned_at > clock_timestamp() - p_every THEN
        UPDATE octo_webhooks.maintenance SET tallied_to = m.tallied_to;
        RETURN jsonb_build_object('ran', false, 'why', 'recent');
    END IF;

    -- Ended deliveries beyond the retention, oldest first.
    WITH d AS (SELECT id FROM octo_webhooks.deliveries
                WHERE status <> 'pending' AND completed_at < v_cut
                ORDER BY completed_at LIMIT p_batch),
    del AS (DELETE FROM octo_webhooks.deliveries x USING d WHERE x.id = d.id RETURNING x.event_id)
    SELECT count(*), array_agg(DISTINCT event_id) INTO v_dl, v_ev FROM del;
    v_more := v_dl >= p_batch;
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
             WHERE e.id > m.pruned_to AND e.id <= v_to
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
    RETURN jsonb_build_object('ran', true, 'deliveries', v_dl, 'events', v_events, 'states', v_states,
                              'more', v_more);
END $$;
