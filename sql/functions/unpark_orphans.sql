-- octo_webhooks.unpark_orphans(): defined here only; the module re-creates it
-- when this file changes (see README, "Schema").
-- Releases parked deliveries that nothing would release: emit() parked one
-- behind a pending delivery of the same object and webhook, and that one
-- ended (complete() looked for a parked successor) before the emitting
-- transaction committed. Each object's earliest parked delivery with no
-- pending one before it becomes due now; the rest stay in line. The
-- dispatchers run it about once a second; it reads only parked rows.
CREATE OR REPLACE FUNCTION octo_webhooks.unpark_orphans() RETURNS integer
-- Planned afresh each call (once a second): a plan the session kept from
-- while deliveries was empty probed each parked row's line through a whole
-- webhook's backlog (1,500 parked behind 1,500 pending: 2 ms of PostgreSQL
-- per delivery, 450 deliveries/s).
LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan SET enable_seqscan = off AS $$
DECLARE
    v_n int;
BEGIN
    -- (the parked rows off the end of deliveries_due, in its order: a plan
    -- made while the table was empty must not walk every pending row)
    UPDATE octo_webhooks.deliveries n SET next_attempt_at = clock_timestamp()
     WHERE n.id = ANY (ARRAY(SELECT x.id FROM octo_webhooks.deliveries x
                              WHERE x.status = 'pending' AND x.next_attempt_at >= 'infinity'
                              ORDER BY x.next_attempt_at DESC LIMIT 10000))
       AND n.status = 'pending' AND n.next_attempt_at = 'infinity'
       AND NOT EXISTS (SELECT 1 FROM octo_webhooks.deliveries p
                        WHERE p.webhook_id = n.webhook_id AND p.object_key = n.object_key
                          AND p.status = 'pending' AND p.event_id < n.event_id);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n > 0 THEN
        PERFORM pg_notify('octo_webhooks', '');
    END IF;
    RETURN v_n;
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.unpark_orphans() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.unpark_orphans() TO octo_webhooks_runtime;  -- the dispatcher
