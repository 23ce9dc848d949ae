-- 002: the transactional outbox (events), one delivery per (event, webhook),
-- and every attempt. octo_webhooks.emit() is the supplier's entry point.

CREATE TABLE octo_webhooks.events (
    id             bigserial PRIMARY KEY,
    event_type     text NOT NULL,
    object_key     text NOT NULL,          -- booking uuid, order id, product id, availability id
    object         jsonb NOT NULL,
    connection_id  text,                   -- booking/order events: the reseller they belong to
    language       text,
    supplier       jsonb,                  -- overrides the directives' supplier object
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- A delivery is claimed by moving next_attempt_at past a lease: a dispatcher
-- that dies leaves it due again when the lease runs out, and due-time lookups
-- stay on one partial index however many rows wait.
CREATE TABLE octo_webhooks.deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),  -- webhook-id: msg_<id>
    event_id         bigint NOT NULL REFERENCES octo_webhooks.events(id) ON DELETE CASCADE,
    webhook_id       uuid NOT NULL,        -- no FK: history outlives a deleted webhook
    connection_id    text NOT NULL,
    webhook          jsonb NOT NULL,       -- the webhook as it was at event time
    object_key       text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    claim_id         uuid,                 -- the current lease; results of an older one are ignored
    claimed_by       text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    completed_at     timestamptz,
    last_status      integer,
    last_error       text
);
CREATE INDEX deliveries_due ON octo_webhooks.deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_webhook ON octo_webhooks.deliveries (webhook_id, created_at DESC);
CREATE INDEX deliveries_event ON octo_webhooks.deliveries (event_id);

CREATE TABLE octo_webhooks.attempts (
    id               bigserial PRIMARY KEY,
    delivery_id      uuid NOT NULL REFERENCES octo_webhooks.deliveries(id) ON DELETE CASCADE,
    attempt          integer NOT NULL,
    started_at       timestamptz NOT NULL,
    status_code      integer,
    latency_ms       integer,
    response_excerpt text,
    error            text,
    dispatcher       text
);
CREATE INDEX attempts_delivery ON octo_webhooks.attempts (delivery_id, attempt);

-- 'booking.updated' and 'booking_update' are the same event.
CREATE FUNCTION octo_webhooks.event_type(p_event text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_event
        WHEN 'booking_update' THEN 'booking_update'      WHEN 'booking.updated' THEN 'booking_update'
        WHEN 'order_update' THEN 'order_update'          WHEN 'order.updated' THEN 'order_update'
        WHEN 'availability_update' THEN 'availability_update'
        WHEN 'availability.updated' THEN 'availability_update'
        WHEN 'product_update' THEN 'product_update'      WHEN 'product.updated' THEN 'product_update'
    END
$$;

-- The identifier that orders deliveries of one object and keys its diff.
CREATE FUNCTION octo_webhooks.object_key(p_type text, p_object jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_type
        WHEN 'booking_update' THEN coalesce(p_object->>'uuid', p_object->>'id')
        WHEN 'order_update' THEN coalesce(p_object->>'id', p_object->>'orderId')
        WHEN 'product_update' THEN p_object->>'id'
        WHEN 'availability_update' THEN
            CASE WHEN p_object ? 'id' THEN
                concat_ws('/', p_object->>'productId', p_object->>'optionId', p_object->>'id') END
    END
$$;

-- The webhook as deliveries see it (credentials kept for sending; the
-- payload shows url_display).
CREATE FUNCTION octo_webhooks.webhook_snapshot(w octo_webhooks.webhooks) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', w.id, 'event', w.event, 'url', w.url,
        'url_display', w.url_display, 'active', w.active, 'retryOnError', w.retry_on_error,
        'useContactLanguage', w.use_contact_language, 'headers', w.headers,
        'capabilities', to_jsonb(w.capabilities))
$$;

-- Records an event in the caller's transaction and fans it out to every
-- matching active webhook: it exists if and only if the caller commits.
CREATE FUNCTION octo_webhooks.emit(p_event text, p_object jsonb, p_connection text DEFAULT NULL,
                                   p_language text DEFAULT NULL, p_supplier jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
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

    INSERT INTO octo_webhooks.events (event_type, object_key, object, connection_id, language, supplier)
         VALUES (v_type, v_key, p_object, p_connection, p_language, p_supplier)
      RETURNING id INTO v_id;

    INSERT INTO octo_webhooks.deliveries (event_id, webhook_id, connection_id, webhook, object_key)
         SELECT v_id, w.id, w.connection_id, octo_webhooks.webhook_snapshot(w), v_key
           FROM octo_webhooks.webhooks w
          WHERE w.active AND w.event_type = v_type
            AND (p_connection IS NULL OR v_type NOT IN ('booking_update', 'order_update')
                 OR w.connection_id = p_connection)
          ORDER BY w.seq;
    IF FOUND THEN
        PERFORM pg_notify('octo_webhooks', '');
    END IF;
    RETURN v_id;
END $$;

-- One delivery to one webhook, for POST /webhooks/{id}/trigger: the same
-- queue and path as real events.
CREATE FUNCTION octo_webhooks.emit_to_webhook(p_webhook uuid, p_connection text, p_object jsonb)
RETURNS TABLE (event_id bigint, delivery_id uuid) LANGUAGE plpgsql AS $$
DECLARE
    w octo_webhooks.webhooks;
    v_key text;
BEGIN
    SELECT * INTO w FROM octo_webhooks.webhooks WHERE id = p_webhook AND connection_id = p_connection;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    v_key := octo_webhooks.object_key(w.event_type, p_object);
    IF v_key IS NULL OR v_key = '' THEN
        RAISE EXCEPTION 'octo_webhooks.emit_to_webhook: the object has no identifier'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO octo_webhooks.events (event_type, object_key, object, connection_id)
         VALUES (w.event_type, v_key, p_object, p_connection)
      RETURNING id INTO event_id;
    INSERT INTO octo_webhooks.deliveries (event_id, webhook_id, connection_id, webhook, object_key)
         VALUES (event_id, w.id, w.connection_id, octo_webhooks.webhook_snapshot(w), v_key)
      RETURNING id INTO delivery_id;
    PERFORM pg_notify('octo_webhooks', '');
    RETURN NEXT;
END $$;
