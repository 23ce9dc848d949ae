-- octo_webhooks.emit(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- Records an event in the caller's transaction and fans it out to every
-- matching active webhook: it exists if and only if the caller commits. Its
-- cost grows with the webhooks that match, not with all the others.
-- The state last sent for the object becomes the event's previous (diff[]).
--
-- The supplier's only entry point: SECURITY DEFINER with a fixed search_path,
-- executable by members of octo_webhooks_emitter (and the owner) only, who
-- need no right on any table.
CREATE OR REPLACE FUNCTION octo_webhooks.emit(p_event text, p_object jsonb, p_connection text DEFAULT NULL,
                                              p_language text DEFAULT NULL, p_supplier jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- Every statement here is a lookup by key. A supplier's pooled session keeps
-- the plans made when deliveries or object_states were nearly empty (a fresh
-- install, a pruned queue); a sequential scan chosen then would read the
-- whole table per webhook once the queue has grown. (The parking probe also
-- needs statistics on deliveries: never analyzed, the planner cannot tell
-- deliveries_object from deliveries_webhook_due, which walks the webhook's
-- backlog; autovacuum analyzes the table within its first minute of use.)
SET enable_seqscan = off SET jit = off AS $$
DECLARE
    v_type text := octo_webhooks.event_type(p_event);
    v_key  text;
    v_id   bigint;
    v_prev jsonb;
    v_n    bigint := 0;
BEGIN
    IF v_type IS NULL THEN
        RAISE EXCEPTION 'octo_webhooks.emit: unknown event %', coalesce(quote_literal(p_event), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'booking_update, order_update, availability_update, product_update (or booking.updated, ...)';
    END IF;
    IF p_object IS NULL OR jsonb_typeof(p_object) <> 'object' THEN
        RAISE EXCEPTION 'octo_webhooks.emit: object must be a JSON object, not %',
            coalesce(jsonb_typeof(p_object), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_supplier IS NOT NULL AND jsonb_typeof(p_supplier) <> 'object' THEN
        RAISE EXCEPTION 'octo_webhooks.emit: supplier must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_key := octo_webhooks.object_key(v_type, p_object);
    IF v_key IS NULL OR v_key = '' THEN
        RAISE EXCEPTION 'octo_webhooks.emit: a % object needs %', v_type,
            CASE v_type WHEN 'booking_update' THEN '"uuid"' WHEN 'order_update' THEN '"id"'
                        WHEN 'product_update' THEN '"id"' ELSE '"id" (the availability id)' END
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The state last sent for this object is what its diff starts from; the
    -- row lock makes concurrent events of one object take turns here.
    IF v_type <> 'availability_update' THEN
        SELECT s.object INTO v_prev FROM octo_webhooks.object_states s
         WHERE s.event_type = v_type AND s.object_key = v_key FOR UPDATE;
    END IF;
    INSERT INTO octo_webhooks.events (event_type, object_key, object, connection_id, language, supplier,
                                      previous)
         VALUES (v_type, v_key, p_object, p_connection, p_language, p_supplier, v_prev)
      RETURNING id INTO v_id;
    IF v_type <> 'availability_update' THEN
        INSERT INTO octo_webhooks.object_states AS s (event_type, object_key, object, event_id)
             VALUES (v_type, v_key, p_object, v_id)
        ON CONFLICT (event_type, object_key) DO UPDATE SET object = excluded.object, event_id = excluded.event_id;
    END IF;

    -- Fan-out, O(matching webhooks): a booking or order belongs to its
    -- connection, so only that connection's webhooks are read (index
    -- webhooks_connection_seq; the type test is written `= ANY` so that the
    -- GIN index on event_types, which holds every tenant's bookings, is never
    -- ANDed in); one without a connection is nobody's and reaches no webhook
    -- in either dialect. Availability and products reach every active
    -- webhook of the type (webhooks_types_active). Each delivery is parked
    -- ('infinity') behind a pending one of the same object to the same
    -- webhook, else due now: one probe of deliveries_object per webhook, in
    -- the statement (LATERAL ... LIMIT 1: never hashed over the whole index;
    -- ORDER BY event_id: that index's order, so a plan made on a near-empty
    -- table does not pick deliveries_webhook_due and walk a webhook's backlog).
    IF v_type IN ('booking_update', 'order_update') THEN
        IF p_connection IS NOT NULL THEN
            INSERT INTO octo_webhooks.deliveries (event_id, webhook_id, connection_id, webhook, object_key,
                                                  next_attempt_at)
                 SELECT v_id, w.id, w.connection_id, octo_webhooks.webhook_snapshot(w), v_key,
                        CASE WHEN p.parked THEN 'infinity'::timestamptz ELSE clock_timestamp() END
                   FROM octo_webhooks.webhooks w
                   LEFT JOIN LATERAL (SELECT true AS parked FROM octo_webhooks.deliveries d
                                       WHERE d.webhook_id = w.id AND d.object_key = v_key
                                         AND d.status = 'pending' ORDER BY d.event_id LIMIT 1) p ON true
                  WHERE w.connection_id = p_connection AND w.active AND v_type = ANY (w.event_types)
                    -- seed 003: BOOKING_UPDATE to a subscription only when the booking is
                    -- confirmed or cancelled (a status-less object: always)
                    AND (w.dialect = 'octo' OR v_type <> 'booking_update'
                         OR coalesce(p_object->>'status', 'CONFIRMED') IN ('CONFIRMED', 'CANCELLED'))
                  ORDER BY w.seq;
            GET DIAGNOSTICS v_n = ROW_COUNT;
        END IF;
    ELSE
        INSERT INTO octo_webhooks.deliveries (event_id, webhook_id, connection_id, webhook, object_key,
                                              next_attempt_at)
             SELECT v_id, w.id, w.connection_id, octo_webhooks.webhook_snapshot(w), v_key,
                    CASE WHEN p.parked THEN 'infinity'::timestamptz ELSE clock_timestamp() END
               FROM octo_webhooks.webhooks w
               LEFT JOIN LATERAL (SELECT true AS parked FROM octo_webhooks.deliveries d
                                   WHERE d.webhook_id = w.id AND d.object_key = v_key
                                     AND d.status = 'pending' ORDER BY d.event_id LIMIT 1) p ON true
              WHERE w.active AND w.event_types @> ARRAY[v_type]
              ORDER BY w.seq;
        GET DIAGNOSTICS v_n = ROW_COUNT;
    END IF;
    IF v_n > 0 THEN
        PERFORM pg_notify('octo_webhooks', '');
    END IF;
    RETURN v_id;
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.emit(text, jsonb, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.emit(text, jsonb, text, text, jsonb) TO octo_webhooks_emitter;
