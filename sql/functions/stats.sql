-- octo_webhooks.stats(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- The queue's figures for /metrics and /status, cheap at any size: no
-- count(*) over a big table. pending, due and failed are exact up to 1,000
-- (index scans under a cap) and planner estimates above; succeeded is exact
-- while the table is small and an estimate (statistics) beyond.
CREATE OR REPLACE FUNCTION octo_webhooks.stats() RETURNS jsonb LANGUAGE plpgsql AS $$
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
REVOKE ALL ON FUNCTION octo_webhooks.stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.stats() TO octo_webhooks_runtime;  -- /metrics, /status
