-- octo_webhooks.claim(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- Claims due deliveries: per webhook at most p_per_webhook in flight and at
-- most p_rate claimed per second (0: no rate cap), p_limit in all, oldest due
-- webhook first. Claims of all dispatchers take turns on one advisory lock so
-- the caps hold exactly across hosts; SKIP LOCKED keeps rows being completed
-- from blocking a claim. A last row with o_id NULL tells the dispatcher when
-- to look again: o_held > 0 if a cap held due work back, o_next_in the
-- seconds until the next delivery falls due (NULL: none waiting).
CREATE OR REPLACE FUNCTION octo_webhooks.claim(p_limit int, p_lease interval, p_owner text,
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
REVOKE ALL ON FUNCTION octo_webhooks.claim(int, interval, text, int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.claim(int, interval, text, int, int) TO octo_webhooks_runtime;  -- the dispatcher
