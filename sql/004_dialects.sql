-- 004: payload fidelity and the notifications dialect (issue 5).
--
-- diff[]: the state of each booking, order and product as last sent lives in
-- object_states; emit() copies it into the new event (events.previous) and
-- replaces it, so the dispatcher computes one diff per event from one row.
--
-- Dialects: a stored webhook is either an octo/webhooks Webhook (one event
-- type) or a seed-003 notifications subscription (several types); both are
-- rows of webhooks, fanned out by the same emit() and delivered by the same
-- dispatcher with the same retries.

CREATE TABLE octo_webhooks.object_states (
    event_type  text NOT NULL,
    object_key  text NOT NULL,
    object      jsonb NOT NULL,
    event_id    bigint NOT NULL,       -- the event that sent this state
    PRIMARY KEY (event_type, object_key)
);
ALTER TABLE octo_webhooks.events
    ADD COLUMN previous jsonb,
    -- a trigger route's sample object: always sent as it is (never resolved)
    ADD COLUMN sample boolean NOT NULL DEFAULT false;

ALTER TABLE octo_webhooks.webhooks
    ADD COLUMN dialect      text NOT NULL DEFAULT 'octo' CHECK (dialect IN ('octo', 'notifications')),
    ADD COLUMN event_types  text[];
UPDATE octo_webhooks.webhooks SET event_types = ARRAY[event_type];
ALTER TABLE octo_webhooks.webhooks
    ALTER COLUMN event_types SET NOT NULL,
    ADD CONSTRAINT webhooks_event_types_check CHECK (cardinality(event_types) BETWEEN 1 AND 3
        AND event_types <@ ARRAY['booking_update', 'order_update', 'availability_update', 'product_update']);
-- An octo webhook receives exactly its event; a subscription's event_type is
-- its first type (listings and the attempt log read it).
CREATE FUNCTION octo_webhooks.webhooks_types() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.dialect = 'octo' OR NEW.event_types IS NULL THEN
        NEW.event_types := ARRAY[NEW.event_type];
    ELSE
        NEW.event_type := NEW.event_types[1];
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER webhooks_types BEFORE INSERT OR UPDATE ON octo_webhooks.webhooks
    FOR EACH ROW EXECUTE FUNCTION octo_webhooks.webhooks_types();
DROP INDEX octo_webhooks.webhooks_event_active;
CREATE INDEX webhooks_types_active ON octo_webhooks.webhooks USING gin (event_types) WHERE active;

-- The snapshot gains the dialect (the payload's shape).
CREATE OR REPLACE FUNCTION octo_webhooks.webhook_snapshot(w octo_webhooks.webhooks) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', w.id, 'event', w.event, 'url', w.url,
        'url_display', w.url_display, 'active', w.active, 'retryOnError', w.retry_on_error,
        'useContactLanguage', w.use_contact_language, 'headers', w.headers,
        'capabilities', to_jsonb(w.capabilities), 'dialect', w.dialect)
$$;

CREATE OR REPLACE FUNCTION octo_webhooks.emit(p_event text, p_object jsonb, p_connection text DEFAULT NULL,
                                              p_language text DEFAULT NULL, p_supplier jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_type text := octo_webhooks.event_type(p_event);
    v_key  text;
    v_id   bigint;
    v_prev jsonb;
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

    INSERT INTO octo_webhooks.deliveries (event_id, webhook_id, connection_id, webhook, object_key,
                                          next_attempt_at)
         SELECT v_id, w.id, w.connection_id, octo_webhooks.webhook_snapshot(w), v_key,
                octo_webhooks.first_due(w.id, v_key)
           FROM octo_webhooks.webhooks w
          WHERE w.active AND w.event_types @> ARRAY[v_type]
            AND CASE w.dialect
                WHEN 'octo' THEN p_connection IS NULL OR v_type NOT IN ('booking_update', 'order_update')
                                 OR w.connection_id = p_connection
                -- seed 003: BOOKING_UPDATE only to the connection that made the booking,
                -- when it is confirmed or cancelled (a status-less object: always)
                ELSE v_type <> 'booking_update'
                     OR (w.connection_id IS NOT DISTINCT FROM p_connection
                         AND coalesce(p_object->>'status', 'CONFIRMED') IN ('CONFIRMED', 'CANCELLED'))
            END
          ORDER BY w.seq;
    IF FOUND THEN
        PERFORM pg_notify('octo_webhooks', '');
    END IF;
    RETURN v_id;
END $$;

-- Claims due deliveries: per webhook at most p_per_webhook in flight and at
-- most p_rate claimed per second (0: no rate cap), p_limit in all, oldest due
-- webhook first. Claims of all dispatchers take turns on one advisory lock so
-- the caps hold exactly across hosts; SKIP LOCKED keeps rows being completed
-- from blocking a claim. A last row with o_id NULL tells the dispatcher when
-- to look again: o_held > 0 if a cap held due work back, o_next_in the
-- seconds until the next delivery falls due (NULL: none waiting).
DROP FUNCTION octo_webhooks.claim(int, interval, text, int, int);
CREATE FUNCTION octo_webhooks.claim(p_limit int, p_lease interval, p_owner text,
                                    p_per_webhook int, p_rate int)
RETURNS TABLE (o_id uuid, o_claim uuid, o_attempts int, o_webhook text, o_event_type text,
               o_object_key text, o_object text, o_connection text, o_language text,
               o_supplier text, o_secret text, o_secret_previous text,
               o_held int, o_next_in float8,
               o_previous text, o_event_id bigint, o_event_at text, o_sample boolean)
-- Plain index scans only: they mark the index entries completed deliveries
-- left dead, so later claims skip them instead of revisiting the heap.
LANGUAGE plpgsql SET enable_bitmapscan = off AS $$
DECLARE
    h       record;
    v_now   timestamptz;
    v_left  int := p_limit;
    v_take  int;
    v_used  int;
    v_got   int;
    v_held  int := 0;
    v_next  timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(7261003, 1);
    v_now := clock_timestamp();
    FOR h IN
        WITH RECURSIVE hooks(wid) AS (
            (SELECT d.webhook_id FROM octo_webhooks.deliveries d
              WHERE d.status = 'pending' ORDER BY d.webhook_id LIMIT 1)
            UNION ALL
            SELECT (SELECT d.webhook_id FROM octo_webhooks.deliveries d
                     WHERE d.status = 'pending' AND d.webhook_id > hooks.wid
                     ORDER BY d.webhook_id LIMIT 1)
              FROM hooks WHERE hooks.wid IS NOT NULL)
        SELECT x.wid, x.due FROM (
            SELECT hooks.wid, (SELECT d.next_attempt_at FROM octo_webhooks.deliveries d
                                WHERE d.status = 'pending' AND d.webhook_id = hooks.wid
                                ORDER BY d.next_attempt_at LIMIT 1) AS due
              FROM hooks WHERE hooks.wid IS NOT NULL) x
         ORDER BY x.due
    LOOP
        IF h.due > v_now THEN
            -- parked lines ('infinity') are released by complete(), not by time
            IF h.due <> 'infinity' THEN
                v_next := h.due;
            END IF;
            EXIT;
        END IF;
        IF v_left <= 0 THEN
            v_held := v_held + 1;
            EXIT;
        END IF;
        -- In flight: claimed, lease running.
        SELECT p_per_webhook - count(*) INTO v_take FROM (
            SELECT 1 FROM octo_webhooks.deliveries d
             WHERE d.webhook_id = h.wid AND d.status = 'pending' AND d.next_attempt_at > v_now
               AND d.next_attempt_at < 'infinity' AND d.claim_id IS NOT NULL
             ORDER BY d.webhook_id, d.next_attempt_at LIMIT p_per_webhook) x;
        v_take := least(v_take, v_left);
        IF p_rate > 0 THEN
            SELECT CASE WHEN r.window_start = date_trunc('second', v_now) THEN r.used ELSE 0 END
              INTO v_used FROM octo_webhooks.webhook_rate r WHERE r.webhook_id = h.wid;
            v_take := least(v_take, p_rate - coalesce(v_used, 0));
        END IF;
        IF v_take <= 0 THEN
            v_held := v_held + 1;
            CONTINUE;
        END IF;
        RETURN QUERY
            WITH due AS (
                SELECT d.id FROM octo_webhooks.deliveries d
                 WHERE d.status = 'pending' AND d.webhook_id = h.wid AND d.next_attempt_at <= v_now
                 ORDER BY d.next_attempt_at LIMIT v_take FOR UPDATE SKIP LOCKED)
            UPDATE octo_webhooks.deliveries d
               SET next_attempt_at = v_now + p_lease, claim_id = gen_random_uuid(), claimed_by = p_owner
              FROM due JOIN octo_webhooks.events e ON true
                   LEFT JOIN octo_webhooks.webhooks w ON w.id = h.wid
             WHERE d.id = due.id AND e.id = d.event_id
            RETURNING d.id, d.claim_id, d.attempts, d.webhook::text, e.event_type, d.object_key,
                      e.object::text, d.connection_id, e.language, e.supplier::text, w.secret,
                      CASE WHEN w.secret_previous_until > v_now THEN w.secret_previous END,
                      NULL::int, NULL::float8,
                      e.previous::text, e.id, octo_webhooks.iso(e.created_at), e.sample;
        GET DIAGNOSTICS v_got = ROW_COUNT;
        -- a cap, not the batch, stopped us: is more of this webhook due?
        IF v_got = v_take AND v_take < v_left AND EXISTS (
                SELECT 1 FROM octo_webhooks.deliveries d
                 WHERE d.status = 'pending' AND d.webhook_id = h.wid AND d.next_attempt_at <= v_now) THEN
            v_held := v_held + 1;
        END IF;
        v_left := v_left - v_got;
        IF p_rate > 0 AND v_got > 0 THEN
            INSERT INTO octo_webhooks.webhook_rate AS r (webhook_id, window_start, used)
                 VALUES (h.wid, date_trunc('second', v_now), v_got)
            ON CONFLICT (webhook_id) DO UPDATE
                SET used = CASE WHEN r.window_start = excluded.window_start
                                THEN r.used + excluded.used ELSE excluded.used END,
                    window_start = excluded.window_start;
        END IF;
    END LOOP;
    o_id := NULL; o_claim := NULL; o_attempts := NULL; o_webhook := NULL; o_event_type := NULL;
    o_object_key := NULL; o_object := NULL; o_connection := NULL; o_language := NULL;
    o_supplier := NULL; o_secret := NULL; o_secret_previous := NULL;
    o_previous := NULL; o_event_id := NULL; o_event_at := NULL; o_sample := NULL;
    o_held := v_held;
    o_next_in := extract(epoch FROM v_next - clock_timestamp());
    RETURN NEXT;
END $$;

-- The trigger route's events are marked as samples (sent as they are).
CREATE OR REPLACE FUNCTION octo_webhooks.emit_to_webhook(p_webhook uuid, p_connection text, p_object jsonb)
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
    INSERT INTO octo_webhooks.events (event_type, object_key, object, connection_id, sample)
         VALUES (w.event_type, v_key, p_object, p_connection, true)
      RETURNING id INTO event_id;
    INSERT INTO octo_webhooks.deliveries (event_id, webhook_id, connection_id, webhook, object_key,
                                          next_attempt_at)
         VALUES (event_id, w.id, w.connection_id, octo_webhooks.webhook_snapshot(w), v_key,
                 octo_webhooks.first_due(w.id, v_key))
      RETURNING id INTO delivery_id;
    PERFORM pg_notify('octo_webhooks', '');
    RETURN NEXT;
END $$;

-- Resolve mode (OctoWebhooksResolve): the dispatcher fetches each view of an
-- object (capabilities, language) from the supplier's API at delivery time;
-- the view fetched for each event is kept so the next event's diff starts
-- from what that view last sent. Rows a week old that a later one follows are
-- pruned as views are recorded.
CREATE TABLE octo_webhooks.resolved_states (
    state_key   text NOT NULL,          -- event type/object key|capabilities|language
    event_id    bigint NOT NULL,
    object      jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (state_key, event_id)
);

CREATE FUNCTION octo_webhooks.view_state(p_key text, p_event bigint, p_object jsonb)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_prev text;
BEGIN
    INSERT INTO octo_webhooks.resolved_states (state_key, event_id, object)
         VALUES (p_key, p_event, p_object)
    ON CONFLICT (state_key, event_id) DO UPDATE
        SET object = excluded.object, recorded_at = excluded.recorded_at;
    SELECT r.object::text INTO v_prev FROM octo_webhooks.resolved_states r
     WHERE r.state_key = p_key AND r.event_id < p_event ORDER BY r.event_id DESC LIMIT 1;
    DELETE FROM octo_webhooks.resolved_states r
     WHERE r.state_key = p_key AND r.recorded_at < clock_timestamp() - interval '7 days'
       AND EXISTS (SELECT 1 FROM octo_webhooks.resolved_states n
                    WHERE n.state_key = p_key AND n.event_id > r.event_id);
    RETURN v_prev;
END $$;
