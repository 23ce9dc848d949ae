-- 003: signing secrets, ordering per object, per-webhook caps, endpoint
-- signals (410), auto-disable. claim() and complete() become functions: each
-- is still one round trip, but runs several statements with fresh snapshots.

ALTER TABLE octo_webhooks.webhooks
    ADD COLUMN secret                 text,          -- whsec_<base64>: signs deliveries
    ADD COLUMN secret_previous        text,          -- still signs during a rotation
    ADD COLUMN secret_previous_until  timestamptz,
    ADD COLUMN failing_since          timestamptz,   -- first failed attempt since the last success
    ADD COLUMN disabled_reason        text,          -- why the module deactivated it
    ADD COLUMN disabled_at            timestamptz;

-- Ordering per object: a delivery whose (webhook, object) already has a
-- pending delivery waits parked (next_attempt_at = 'infinity') and is
-- unparked when the one before it ends. The due index then holds only heads.
CREATE INDEX deliveries_object ON octo_webhooks.deliveries (webhook_id, object_key, event_id)
    WHERE status = 'pending';
-- claim() walks the webhooks with pending work (a loose index scan) and takes
-- each one's due heads up to its caps.
CREATE INDEX deliveries_webhook_due ON octo_webhooks.deliveries (webhook_id, next_attempt_at)
    WHERE status = 'pending';

-- Per-webhook rate cap: claims in the current one-second window.
CREATE TABLE octo_webhooks.webhook_rate (
    webhook_id    uuid PRIMARY KEY,
    window_start  timestamptz NOT NULL,
    used          integer NOT NULL
);

-- When a new delivery of an object to a webhook falls due: now, or parked
-- ('infinity') behind an earlier pending delivery of the same object.
CREATE FUNCTION octo_webhooks.first_due(p_webhook uuid, p_key text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN EXISTS (SELECT 1 FROM octo_webhooks.deliveries p
                              WHERE p.webhook_id = p_webhook AND p.object_key = p_key
                                AND p.status = 'pending')
                THEN 'infinity'::timestamptz ELSE clock_timestamp() END
$$;

CREATE OR REPLACE FUNCTION octo_webhooks.emit(p_event text, p_object jsonb, p_connection text DEFAULT NULL,
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

    INSERT INTO octo_webhooks.deliveries (event_id, webhook_id, connection_id, webhook, object_key,
                                          next_attempt_at)
         SELECT v_id, w.id, w.connection_id, octo_webhooks.webhook_snapshot(w), v_key,
                octo_webhooks.first_due(w.id, v_key)
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
    INSERT INTO octo_webhooks.events (event_type, object_key, object, connection_id)
         VALUES (w.event_type, v_key, p_object, p_connection)
      RETURNING id INTO event_id;
    INSERT INTO octo_webhooks.deliveries (event_id, webhook_id, connection_id, webhook, object_key,
                                          next_attempt_at)
         VALUES (event_id, w.id, w.connection_id, octo_webhooks.webhook_snapshot(w), v_key,
                 octo_webhooks.first_due(w.id, v_key))
      RETURNING id INTO delivery_id;
    PERFORM pg_notify('octo_webhooks', '');
    RETURN NEXT;
END $$;

-- Claims due deliveries: per webhook at most p_per_webhook in flight and at
-- most p_rate claimed per second (0: no rate cap), p_limit in all, oldest due
-- webhook first. Claims of all dispatchers take turns on one advisory lock so
-- the caps hold exactly across hosts; SKIP LOCKED keeps rows being completed
-- from blocking a claim. A last row with o_id NULL tells the dispatcher when
-- to look again: o_held > 0 if a cap held due work back, o_next_in the
-- seconds until the next delivery falls due (NULL: none waiting).
CREATE FUNCTION octo_webhooks.claim(p_limit int, p_lease interval, p_owner text,
                                    p_per_webhook int, p_rate int)
RETURNS TABLE (o_id uuid, o_claim uuid, o_attempts int, o_webhook text, o_event_type text,
               o_object_key text, o_object text, o_connection text, o_language text,
               o_supplier text, o_secret text, o_secret_previous text,
               o_held int, o_next_in float8)
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
                      NULL::int, NULL::float8;
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
    o_held := v_held;
    o_next_in := extract(epoch FROM v_next - clock_timestamp());
    RETURN NEXT;
END $$;

-- Deactivates webhooks (410 Gone, auto-disable) and fails what they still
-- had pending: a later recover brings those back.
CREATE FUNCTION octo_webhooks.deactivate(p_webhooks uuid[], p_reason text)
RETURNS void LANGUAGE sql AS $$
    UPDATE octo_webhooks.webhooks
       SET active = false, disabled_reason = p_reason, disabled_at = clock_timestamp(),
           updated_at = clock_timestamp()
     WHERE id = ANY (p_webhooks);
    UPDATE octo_webhooks.deliveries
       SET status = 'failed', claim_id = NULL, completed_at = clock_timestamp(),
           last_error = 'webhook deactivated: ' || p_reason
     WHERE webhook_id = ANY (p_webhooks) AND status = 'pending';
$$;

-- Records a batch of attempts (JSON array: id, claim, attempt, started,
-- code, latency, status, retry_in, excerpt, error, gone) and applies them:
-- outcomes only while the lease holds, 410 deactivation, failing_since and
-- auto-disable after p_disable_after, and the next delivery of each object
-- that ended unparked.
CREATE FUNCTION octo_webhooks.complete(p_results jsonb, p_owner text, p_disable_after interval)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_done  jsonb;
    v_hooks uuid[];
    v_n     int;
BEGIN
    WITH r AS (SELECT * FROM jsonb_to_recordset(p_results) AS r(id uuid, claim uuid, attempt int,
                   started float8, code int, latency int, status text, retry_in float8,
                   excerpt text, error text, gone boolean)),
    upd AS (UPDATE octo_webhooks.deliveries d
               SET status = r.status, attempts = r.attempt, claim_id = NULL,
                   next_attempt_at = CASE WHEN r.status = 'pending'
                       THEN clock_timestamp() + r.retry_in * interval '1 second' ELSE d.next_attempt_at END,
                   completed_at = CASE WHEN r.status = 'pending' THEN NULL ELSE clock_timestamp() END,
                   last_status = r.code, last_error = r.error
              FROM r WHERE d.id = r.id AND d.claim_id = r.claim AND d.status = 'pending'
             RETURNING d.id, d.webhook_id, d.object_key, r.status),
    ins AS (INSERT INTO octo_webhooks.attempts (delivery_id, attempt, started_at, status_code,
                   latency_ms, response_excerpt, error, dispatcher)
            SELECT r.id, r.attempt, to_timestamp(r.started), r.code, r.latency, r.excerpt, r.error, p_owner
              FROM r JOIN octo_webhooks.deliveries d ON d.id = r.id)
    SELECT coalesce(jsonb_agg(jsonb_build_object('webhook_id', upd.webhook_id,
                   'object_key', upd.object_key, 'status', upd.status)), '[]') INTO v_done FROM upd;

    -- The webhook's failing streak (any attempt counts, applied or not: it
    -- happened). In a batch the newest attempt decides.
    WITH a AS (SELECT d.webhook_id, to_timestamp(r.started) AS started,
                      coalesce(r.code BETWEEN 200 AND 299, false) AS ok
                 FROM jsonb_to_recordset(p_results) AS r(id uuid, started float8, code int)
                 JOIN octo_webhooks.deliveries d ON d.id = r.id),
    s1 AS (SELECT webhook_id, max(started) AS last, max(started) FILTER (WHERE ok) AS last_ok
             FROM a GROUP BY webhook_id),
    s AS (SELECT s1.webhook_id, s1.last, s1.last_ok,
                 (SELECT min(a.started) FROM a WHERE a.webhook_id = s1.webhook_id AND NOT a.ok
                     AND (s1.last_ok IS NULL OR a.started > s1.last_ok)) AS first_fail
            FROM s1),
    v AS (SELECT w.id, CASE WHEN s.last_ok = s.last THEN NULL
                            WHEN s.last_ok IS NOT NULL THEN s.first_fail
                            ELSE coalesce(w.failing_since, s.first_fail) END AS since
            FROM s JOIN octo_webhooks.webhooks w ON w.id = s.webhook_id)
    UPDATE octo_webhooks.webhooks w SET failing_since = v.since
      FROM v WHERE w.id = v.id AND w.failing_since IS DISTINCT FROM v.since;

    -- 410 Gone: the endpoint asks us to stop.
    SELECT array_agg(DISTINCT d.webhook_id) INTO v_hooks
      FROM jsonb_to_recordset(p_results) AS r(id uuid, gone boolean)
      JOIN octo_webhooks.deliveries d ON d.id = r.id
      JOIN octo_webhooks.webhooks w ON w.id = d.webhook_id
     WHERE r.gone AND w.active;
    IF v_hooks IS NOT NULL THEN
        PERFORM octo_webhooks.deactivate(v_hooks, 'the endpoint answered 410 Gone');
    END IF;

    -- Auto-disable: every attempt failed for p_disable_after.
    SELECT array_agg(w.id) INTO v_hooks FROM octo_webhooks.webhooks w
     WHERE w.active AND w.failing_since <= clock_timestamp() - p_disable_after
       AND w.id IN (SELECT d.webhook_id FROM jsonb_to_recordset(p_results) AS r(id uuid)
                      JOIN octo_webhooks.deliveries d ON d.id = r.id);
    IF v_hooks IS NOT NULL THEN
        PERFORM octo_webhooks.deactivate(v_hooks,
            'every delivery attempt failed for ' || p_disable_after::text);
    END IF;

    -- The next delivery of each object whose delivery ended.
    UPDATE octo_webhooks.deliveries n SET next_attempt_at = clock_timestamp()
      FROM (SELECT DISTINCT x.webhook_id, x.object_key
              FROM jsonb_to_recordset(v_done) AS x(webhook_id uuid, object_key text, status text)
             WHERE x.status <> 'pending') t
     WHERE n.id = (SELECT p.id FROM octo_webhooks.deliveries p
                    WHERE p.webhook_id = t.webhook_id AND p.object_key = t.object_key
                      AND p.status = 'pending' ORDER BY p.event_id LIMIT 1)
       AND n.next_attempt_at = 'infinity';
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n > 0 THEN
        PERFORM pg_notify('octo_webhooks', '');
    END IF;
END $$;

-- Requeues a connection's failed deliveries of one webhook created since a
-- time, keeping the order per object: the first of each object goes now
-- unless the object already has one pending, the rest wait parked.
CREATE FUNCTION octo_webhooks.recover(p_webhook uuid, p_connection text, p_since timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_n int;
BEGIN
    WITH f AS (
        SELECT d.id,
               row_number() OVER (PARTITION BY d.object_key ORDER BY d.event_id) AS rn,
               EXISTS (SELECT 1 FROM octo_webhooks.deliveries p
                        WHERE p.webhook_id = d.webhook_id AND p.object_key = d.object_key
                          AND p.status = 'pending') AS busy
          FROM octo_webhooks.deliveries d
         WHERE d.webhook_id = p_webhook AND d.connection_id = p_connection
           AND d.status = 'failed' AND d.created_at >= p_since)
    UPDATE octo_webhooks.deliveries d
       SET status = 'pending', claim_id = NULL, completed_at = NULL,
           next_attempt_at = CASE WHEN f.rn = 1 AND NOT f.busy THEN clock_timestamp()
                                  ELSE 'infinity'::timestamptz END
      FROM f WHERE d.id = f.id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n > 0 THEN
        PERFORM pg_notify('octo_webhooks', '');
    END IF;
    RETURN v_n;
END $$;

-- Times as the API shows them.
CREATE FUNCTION octo_webhooks.iso(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- A delivery with its attempts, as GET /webhooks/{id}/deliveries lists it.
CREATE FUNCTION octo_webhooks.delivery_json(d octo_webhooks.deliveries) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', d.id, 'webhookId', d.webhook_id, 'eventId', d.event_id, 'event', e.event_type,
        'objectKey', d.object_key, 'status', d.status, 'attemptCount', d.attempts,
        'createdAt', octo_webhooks.iso(d.created_at),
        'nextAttemptAt', CASE WHEN d.status = 'pending' AND d.next_attempt_at <> 'infinity'
                              THEN octo_webhooks.iso(d.next_attempt_at) END,
        'waitingForEarlier', d.status = 'pending' AND d.next_attempt_at = 'infinity',
        'completedAt', octo_webhooks.iso(d.completed_at),
        'lastStatusCode', d.last_status, 'lastError', d.last_error,
        'attempts', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'attempt', a.attempt, 'startedAt', octo_webhooks.iso(a.started_at),
                'statusCode', a.status_code, 'latencyMs', a.latency_ms,
                'responseExcerpt', a.response_excerpt, 'error', a.error) ORDER BY a.attempt, a.id)
            FROM octo_webhooks.attempts a WHERE a.delivery_id = d.id), '[]'::jsonb))
      FROM octo_webhooks.events e WHERE e.id = d.event_id
$$;
