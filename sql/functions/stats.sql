-- octo_webhooks.stats(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- The queue's figures for /metrics and /status, cheap at any size: no
-- count(*) over a big table. pending, due and failed are exact up to 1,000
-- (index scans under a cap) and estimates above (pending and failed: the
-- statistics of their partial indexes; due: the planner's); succeeded is
-- exact while the table is small and an estimate (statistics) beyond;
-- unrouted (events not yet routed to their webhooks) is exact up to 1,000.
CREATE OR REPLACE FUNCTION octo_webhooks.stats() RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_cap     int := 1000;
    v_now     timestamptz := clock_timestamp();
    v_pending bigint;
    v_due     bigint;
    v_failed  bigint;
    v_succ    bigint;
    v_total   real;
    v_est_p   boolean := false;
    v_est_d   boolean := false;
    v_est_f   boolean := false;
    v_est_s   boolean := true;
    v_oldest  timestamptz;
    v_unrouted bigint;
    v_unrouted_at timestamptz;
    v_plan    json;
BEGIN
    -- Exact under the cap: static statements (planned once per pooled
    -- connection), each reading at most v_cap entries of a partial index.
    SELECT count(*) INTO v_pending
      FROM (SELECT 1 FROM octo_webhooks.deliveries WHERE status = 'pending' LIMIT v_cap) x;
    SELECT count(*) INTO v_due
      FROM (SELECT 1 FROM octo_webhooks.deliveries WHERE status = 'pending' AND next_attempt_at <= v_now
             LIMIT v_cap) x;
    SELECT count(*) INTO v_failed
      FROM (SELECT 1 FROM octo_webhooks.deliveries WHERE status = 'failed' LIMIT v_cap) x;
    SELECT min(next_attempt_at) INTO v_oldest FROM octo_webhooks.deliveries
     WHERE status = 'pending' AND next_attempt_at <= v_now;
    -- Events emit() recorded that no dispatcher has routed yet (events_unrouted:
    -- a few entries; many means no dispatcher runs or they fall behind).
    SELECT count(*) INTO v_unrouted
      FROM (SELECT 1 FROM octo_webhooks.events WHERE NOT routed LIMIT v_cap) x;
    SELECT e.created_at INTO v_unrouted_at FROM octo_webhooks.events e WHERE NOT e.routed ORDER BY e.id LIMIT 1;
    -- Above the cap: the row counts autovacuum keeps in pg_class (of the
    -- table and of its partial indexes on pending and failed rows), no
    -- planning; the due count, which depends on the time, from the planner.
    SELECT c.reltuples INTO v_total FROM pg_catalog.pg_class c WHERE c.oid = 'octo_webhooks.deliveries'::regclass;
    IF v_pending >= v_cap THEN
        SELECT greatest(v_cap, c.reltuples)::bigint INTO v_pending
          FROM pg_catalog.pg_class c WHERE c.oid = 'octo_webhooks.deliveries_due'::regclass;
        v_est_p := true;
    END IF;
    IF v_due >= v_cap THEN
        EXECUTE format('EXPLAIN (FORMAT JSON) SELECT 1 FROM octo_webhooks.deliveries'
                       ' WHERE status = ''pending'' AND next_attempt_at <= %L::timestamptz', v_now) INTO v_plan;
        v_due := least(v_pending, greatest(v_cap, (v_plan->0->'Plan'->>'Plan Rows')::bigint));
        v_est_d := true;
    END IF;
    IF v_failed >= v_cap THEN
        SELECT greatest(v_cap, c.reltuples)::bigint INTO v_failed
          FROM pg_catalog.pg_class c WHERE c.oid = 'octo_webhooks.deliveries_failed'::regclass;
        v_est_f := true;
    END IF;
    IF v_total < 0 THEN                 -- never vacuumed or analyzed: ask the planner
        EXECUTE 'EXPLAIN (FORMAT JSON) SELECT 1 FROM octo_webhooks.deliveries' INTO v_plan;
        v_total := (v_plan->0->'Plan'->>'Plan Rows')::real;
    END IF;
    IF v_total <= 20000 THEN
        SELECT count(*) INTO v_succ FROM octo_webhooks.deliveries WHERE status = 'succeeded';
        v_est_s := false;
    ELSE
        v_succ := greatest(0, v_total::bigint - v_pending - v_failed);
    END IF;
    RETURN jsonb_build_object(
        'deliveries', jsonb_build_object('pending', v_pending, 'succeeded', v_succ, 'failed', v_failed),
        'estimated', jsonb_build_object('pending', v_est_p, 'succeeded', v_est_s, 'failed', v_est_f,
                                        'due', v_est_d),
        'due', v_due,
        'oldestDueSeconds', coalesce(greatest(extract(epoch FROM v_now - v_oldest), 0), 0),
        'unrouted', v_unrouted,
        'oldestUnroutedSeconds', coalesce(greatest(extract(epoch FROM v_now - v_unrouted_at), 0), 0),
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
REVOKE ALL ON FUNCTION octo_webhooks.stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.stats() TO octo_webhooks_runtime;  -- /metrics, /status
