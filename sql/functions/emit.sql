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
-- Every statement here is a lookup by key; a supplier's pooled session keeps
-- the plans made when object_states or webhooks were nearly empty (a fresh
-- install), and a sequential scan chosen then would read the whole table on
-- every emit once it has grown.
SET enable_seqscan = off AS $$
DECLARE
    v_type text := octo_webhooks.event_type(p_event);
    v_key  text;
    v_id   bigint;
    v_prev jsonb;
    v_hooks  uuid[];
    v_conns  text[];
    v_snaps  jsonb[];
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
    -- webhook of the type (webhooks_types_active). Each webhook is captured
    -- as it is now (webhook_snapshot, inlined).
    IF v_type IN ('booking_update', 'order_update') THEN
        IF p_connection IS NOT NULL THEN
            SELECT array_agg(w.id ORDER BY w.seq), array_agg(w.connection_id ORDER BY w.seq),
                   array_agg(octo_webhooks.webhook_snapshot(w) ORDER BY w.seq)
              INTO v_hooks, v_conns, v_snaps
              FROM octo_webhooks.webhooks w
             WHERE w.connection_id = p_connection AND w.active AND v_type = ANY (w.event_types)
               -- seed 003: BOOKING_UPDATE to a subscription only when the booking is
               -- confirmed or cancelled (a status-less object: always)
               AND (w.dialect = 'octo' OR v_type <> 'booking_update'
                    OR coalesce(p_object->>'status', 'CONFIRMED') IN ('CONFIRMED', 'CANCELLED'));
        END IF;
    ELSE
        SELECT array_agg(w.id ORDER BY w.seq), array_agg(w.connection_id ORDER BY w.seq),
               array_agg(octo_webhooks.webhook_snapshot(w) ORDER BY w.seq)
          INTO v_hooks, v_conns, v_snaps
          FROM octo_webhooks.webhooks w
         WHERE w.active AND w.event_types @> ARRAY[v_type];
    END IF;
    IF v_hooks IS NULL THEN
        RETURN v_id;
    END IF;
    -- A delivery waits parked ('infinity') behind a pending one of the same
    -- object to the same webhook (parked_behind: one probe per webhook), and
    -- is due at once otherwise.
    INSERT INTO octo_webhooks.deliveries (event_id, webhook_id, connection_id, webhook, object_key,
                                          next_attempt_at)
         SELECT v_id, h.id, h.conn, h.snap, v_key,
                CASE WHEN h.id = ANY (p.hooks) THEN 'infinity'::timestamptz ELSE clock_timestamp() END
           FROM unnest(v_hooks, v_conns, v_snaps) WITH ORDINALITY AS h(id, conn, snap, n),
                (SELECT octo_webhooks.parked_behind(v_hooks, v_key) AS hooks) p
          ORDER BY h.n;
    PERFORM pg_notify('octo_webhooks', '');
    RETURN v_id;
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.emit(text, jsonb, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.emit(text, jsonb, text, text, jsonb) TO octo_webhooks_emitter;
