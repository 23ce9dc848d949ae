-- octo_webhooks.emit(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- Records an event in the caller's transaction: it exists if and only if the
-- caller commits. The dispatchers route it to the webhooks that match
-- (fanout(), milliseconds later), so an emit() costs one row whatever the
-- webhooks, this tenant's or others' (issue 10).
--
-- The supplier's only entry point: SECURITY DEFINER with a fixed search_path,
-- executable by members of octo_webhooks_emitter (and the owner) only, who
-- need no right on any table.
CREATE OR REPLACE FUNCTION octo_webhooks.emit(p_event text, p_object jsonb, p_connection text DEFAULT NULL,
                                              p_language text DEFAULT NULL, p_supplier jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET jit = off AS $$
DECLARE
    v_type text := octo_webhooks.event_type(p_event);
    v_key  text;
    v_id   bigint;
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

    -- Events of one object take turns from here to the caller's commit, so
    -- their ids are in commit order: fanout() routes in id order, and never
    -- sees an object's event before an earlier one of the same object.
    PERFORM pg_advisory_xact_lock(7261004, hashtext(v_type || ' ' || v_key));
    INSERT INTO octo_webhooks.events (event_type, object_key, object, connection_id, language, supplier)
         VALUES (v_type, v_key, p_object, p_connection, p_language, p_supplier)
      RETURNING id INTO v_id;

    -- Wake a dispatcher only if one waits. A dispatcher waits only once its
    -- listing is committed and it could take this lock exclusively: no emit
    -- that looked before the listing was visible is open then (they hold the
    -- lock to their commit), and every later one sees it (see claim.sql).
    -- Under REPEATABLE READ or SERIALIZABLE the caller's snapshot may
    -- predate the listing: always.
    PERFORM pg_advisory_xact_lock_shared(7261003, 2);
    IF EXISTS (SELECT 1 FROM octo_webhooks.dispatcher_sleep)
       OR current_setting('transaction_isolation') <> 'read committed' THEN
        PERFORM pg_notify('octo_webhooks', '');
    END IF;
    RETURN v_id;
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.emit(text, jsonb, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.emit(text, jsonb, text, text, jsonb) TO octo_webhooks_emitter;
