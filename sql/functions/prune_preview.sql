-- octo_webhooks.prune_preview(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- What rounds of prune() with this retention would delete now, counted
-- without deleting (`octo-webhooks prune --dry-run`): ended deliveries older
-- than the retention and their attempts; events whose deliveries all go,
-- and events that reached no webhook, older than the retention, before the
-- first event inside it (prune() walks events in id order and stops there).
-- A count over the history: an operator's command, not for a hot path.
CREATE OR REPLACE FUNCTION octo_webhooks.prune_preview(p_retention interval,
                                                       OUT events bigint, OUT deliveries bigint, OUT attempts bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_cut   timestamptz := clock_timestamp() - p_retention;
    v_from  bigint := (SELECT pruned_to FROM octo_webhooks.maintenance);
    v_stop  bigint;
BEGIN
    SELECT min(id) INTO v_stop FROM octo_webhooks.events WHERE id > v_from AND created_at >= v_cut;
    SELECT count(*), coalesce(sum((SELECT count(*) FROM octo_webhooks.attempts a WHERE a.delivery_id = d.id)), 0)
      INTO deliveries, attempts
      FROM octo_webhooks.deliveries d WHERE d.status <> 'pending' AND d.completed_at < v_cut;
    SELECT count(*) INTO events FROM octo_webhooks.events e
     WHERE CASE WHEN EXISTS (SELECT 1 FROM octo_webhooks.deliveries d WHERE d.event_id = e.id)
                THEN NOT EXISTS (SELECT 1 FROM octo_webhooks.deliveries d WHERE d.event_id = e.id
                                    AND (d.status = 'pending' OR d.completed_at >= v_cut))
                ELSE e.id > v_from AND (v_stop IS NULL OR e.id < v_stop) AND e.routed END;
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.prune_preview(interval) FROM PUBLIC;
