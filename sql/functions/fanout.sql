-- octo_webhooks.fanout(): defined here only; the module re-creates it when
-- this file changes (see README, "Schema").
-- The outbox's relay: routes the oldest p_events events emit() recorded into
-- one delivery per matching active webhook. claim() calls it under the
-- claims' lock, so one dispatcher of all hosts routes at a time, in id order:
-- emit() makes an object's ids follow its commits, so an object's events are
-- routed in their order, and each one's previous state (diff[]) is the one
-- routed before it. Returns the events routed and the deliveries made.
--
-- Who matches is read when the event is routed, milliseconds after emit()
-- (or when a dispatcher comes back): a webhook deleted, deactivated or
-- unsubscribed meanwhile receives nothing, and one created after the event
-- nothing from before it.
--
-- SECURITY DEFINER with a fixed search_path: the runtime role routes events
-- without UPDATE on events or any right on object_states.
CREATE OR REPLACE FUNCTION octo_webhooks.fanout(p_events int, OUT events int, OUT deliveries int)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- Tables are read by key only (see claim.sql): plans are kept for the session
-- and made when the tables may have been nearly empty. Bitmap scans stay on
-- (the GIN index on event_types, which finds an availability's subscribers,
-- has no other).
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET jit = off SET plan_cache_mode = force_generic_plan AS $$  -- (generic plans: see claim.sql)
DECLARE
    v_ids  bigint[];
    v_prev jsonb[];
BEGIN
    SELECT array_agg(x.id ORDER BY x.id) INTO v_ids FROM (
        SELECT e.id FROM octo_webhooks.events e WHERE NOT e.routed ORDER BY e.id LIMIT p_events) x;
    events := coalesce(cardinality(v_ids), 0);
    deliveries := 0;
    IF events = 0 THEN
        RETURN;
    END IF;

    -- The previous state of each object: the event before it in this batch,
    -- else the state last routed (object_states), which becomes the batch's
    -- last. Availability has no diff; samples (the trigger route) are routed
    -- when made and never come here. Computed in id order into an array and
    -- applied by position: no join between the batch's sets, whose sizes a
    -- kept plan cannot know (a nested loop over them cost 1.2 s for 1,000
    -- events of 500 objects).
    SELECT array_agg(x.id ORDER BY x.id), array_agg(x.previous ORDER BY x.id) INTO v_ids, v_prev FROM (
        SELECT e.id,
               CASE WHEN e.event_type = 'availability_update' THEN NULL
                    WHEN row_number() OVER o = 1
                    THEN (SELECT s.object FROM octo_webhooks.object_states s
                           WHERE s.event_type = e.event_type AND s.object_key = e.object_key)
                    ELSE lag(e.object) OVER o END AS previous
          FROM octo_webhooks.events e
         WHERE e.id = ANY (v_ids)
        WINDOW o AS (PARTITION BY e.event_type, e.object_key ORDER BY e.id)) x;
    UPDATE octo_webhooks.events e SET routed = true, previous = v_prev[array_position(v_ids, e.id)]
     WHERE e.id = ANY (v_ids);
    INSERT INTO octo_webhooks.object_states AS s (event_type, object_key, object, event_id)
         SELECT DISTINCT ON (e.event_type, e.object_key) e.event_type, e.object_key, e.object, e.id
           FROM octo_webhooks.events e
          WHERE e.id = ANY (v_ids) AND e.event_type <> 'availability_update'
          ORDER BY e.event_type, e.object_key, e.id DESC
    ON CONFLICT (event_type, object_key) DO UPDATE SET object = excluded.object, event_id = excluded.event_id;

    -- The deliveries. A booking or order belongs to its connection: only that
    -- connection's webhooks are read (webhooks_connection_seq; the type test
    -- is written `= ANY` so the GIN index holding every tenant's bookings is
    -- never ANDed in); one without a connection reaches nobody. Availability
    -- and products reach every active webhook of the type (webhooks_types_active).
    -- A delivery waits parked ('infinity') behind a pending one of the same
    -- object to the same webhook, or behind an earlier one of this batch;
    -- else it is due since its event.
    INSERT INTO octo_webhooks.deliveries (event_id, webhook_id, connection_id, webhook, object_key,
                                          next_attempt_at)
         SELECT m.eid, m.wid, m.connection_id, m.snap, m.object_key,
                CASE WHEN m.nth > 1 OR p.parked THEN 'infinity'::timestamptz
                     ELSE least(m.created_at, clock_timestamp()) END
           FROM (SELECT e.id AS eid, w.id AS wid, w.connection_id, e.object_key, e.created_at,
                        octo_webhooks.webhook_snapshot(w) AS snap,
                        row_number() OVER (PARTITION BY w.id, e.object_key ORDER BY e.id) AS nth
                   FROM octo_webhooks.events e
                   CROSS JOIN LATERAL (
                        SELECT w.* FROM octo_webhooks.webhooks w
                         WHERE e.event_type IN ('booking_update', 'order_update')
                           AND w.connection_id = e.connection_id AND w.active
                           AND e.event_type = ANY (w.event_types) AND w.created_at <= e.created_at
                           -- seed 003: BOOKING_UPDATE to a subscription only when the booking
                           -- is confirmed or cancelled (a status-less object: always)
                           AND (w.dialect = 'octo' OR e.event_type <> 'booking_update'
                                OR coalesce(e.object->>'status', 'CONFIRMED') IN ('CONFIRMED', 'CANCELLED'))
                        UNION ALL
                        SELECT w.* FROM octo_webhooks.webhooks w
                         WHERE e.event_type IN ('availability_update', 'product_update')
                           AND w.active AND w.event_types @> ARRAY[e.event_type]
                           AND w.created_at <= e.created_at) w
                  WHERE e.id = ANY (v_ids)) m
           LEFT JOIN LATERAL (SELECT true AS parked FROM octo_webhooks.deliveries d
                               WHERE m.nth = 1 AND d.webhook_id = m.wid AND d.object_key = m.object_key
                                 AND d.status = 'pending' ORDER BY d.event_id LIMIT 1) p ON true;
    GET DIAGNOSTICS deliveries = ROW_COUNT;
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.fanout(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.fanout(int) TO octo_webhooks_runtime;  -- claim()
