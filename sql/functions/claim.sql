-- octo_webhooks.claim(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- Claims due deliveries: per webhook at most p_per_webhook in flight and at
-- most p_rate claimed per second (0: no rate cap), p_limit in all, oldest due
-- webhook first; with p_hosts ({"room": [n, ...], "hooks": {"<webhook id>": i}},
-- from the dispatcher) the webhooks of host i take at most room[i] together,
-- so nothing is claimed that the dispatcher could only hand back. Claims of
-- all dispatchers take turns on one advisory lock so the caps hold exactly
-- across hosts; SKIP LOCKED keeps rows being completed from blocking a claim.
-- Events emit() recorded are routed first (fanout()). The webhooks are chosen next, then all
-- their rows are claimed by one UPDATE. A claim that does not fill its batch
-- lists its dispatcher as waiting, so emit() wakes it (see emit.sql). What the
-- claim saw behind its rows (held by a cap, next due, whether the dispatcher
-- may wait) is read in the same transaction with claim_outlook().
CREATE OR REPLACE FUNCTION octo_webhooks.claim(p_limit int, p_lease interval, p_owner text,
                                               p_per_webhook int, p_rate int, p_hosts jsonb DEFAULT NULL)
RETURNS TABLE (id uuid, claim uuid, attempts int, webhook text, event_type text,
               object_key text, object text, connection text, language text,
               supplier text, secret text, secret_previous text,
               previous text, event_id bigint, event_at text, sample boolean, repeat boolean)
-- Plain index scans only: they mark the index entries completed deliveries
-- left dead, so later claims skip them instead of revisiting the heap. And
-- nested loops by key: the planner cannot see how many rows a LIMIT taken
-- from a variable yields (it guesses a tenth of the table), and would hash
-- all deliveries and merge all events to claim a few hundred rows. JIT off:
-- with scans priced out, one left over (a tiny table) can cost enough to be
-- JIT-compiled, hundreds of milliseconds per call (seen in prune()). Generic
-- plans, always: every statement here is written to read only what its keys
-- name whatever the planner believes of the table sizes, and the default
-- (custom plans while they look cheaper) re-planned fanout()'s statements on
-- every call: 700 us a routing of one event, 175 us with the kept plans.
LANGUAGE plpgsql SET enable_bitmapscan = off SET enable_seqscan = off SET enable_hashjoin = off
                 SET enable_mergejoin = off SET jit = off SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    h       record;
    v_now   timestamptz;
    v_left  int := p_limit;
    v_take  int;
    v_due   int;
    v_used  int;
    v_held  int := 0;
    v_next  timestamptz;
    v_room  int[];
    v_hooks jsonb;
    v_g     int;
    v_wids  uuid[] := '{}';
    v_takes int[] := '{}';
    v_few   boolean;
    v_fl    int;
    v_counted timestamptz;
    v_due_all int;
    v_ratio float8;
    v_fan   record;
    v_asleep boolean := false;
    v_listed timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(7261003, 1);
    v_now := clock_timestamp();
    -- Route what emit() recorded, oldest first, about a thousand deliveries'
    -- worth per claim (how many deliveries an event makes is learnt per
    -- session: eight events at first, then an estimate that rises at once and
    -- falls by halves, so a burst of events with many webhooks never makes one
    -- routing of tens of thousands). Always, however much is due: the events
    -- behind a backlog held by a cap are other tenants' (a claim that leaves
    -- some unrouted says so, and the dispatcher claims again at once).
    IF EXISTS (SELECT 1 FROM octo_webhooks.events e WHERE NOT e.routed) THEN
        v_ratio := nullif(current_setting('octo_webhooks.fanout_ratio', true), '')::float8;
        SELECT * INTO v_fan FROM octo_webhooks.fanout(
            CASE WHEN v_ratio IS NULL THEN 8
                 ELSE least(1000, greatest(1, ceil(greatest(1000, p_limit) / v_ratio)))::int END);
        IF v_fan.events > 0 THEN
            v_ratio := greatest(1, v_fan.deliveries::float8 / v_fan.events,
                                (coalesce(v_ratio, 1) + v_fan.deliveries::float8 / v_fan.events) / 2);
            PERFORM set_config('octo_webhooks.fanout_ratio', v_ratio::text, false);
            -- more than this claim takes: the other dispatchers may share them
            IF v_fan.deliveries > p_limit THEN
                PERFORM pg_notify('octo_webhooks', '');
            END IF;
            v_now := clock_timestamp();
        END IF;
    END IF;
    SELECT count(*) INTO v_due_all FROM (
        SELECT 1 FROM octo_webhooks.deliveries d
         WHERE d.status = 'pending' AND d.next_attempt_at <= v_now
         ORDER BY d.next_attempt_at LIMIT p_limit + 1) x;
    -- Few due (the steady state): they are read straight off deliveries_due
    -- (leased and parked rows are not due), so the claim costs what is due,
    -- not what every webhook with pending work has. Many due (a backlog):
    -- the webhooks are walked one by one, so one webhook's pile cannot fill
    -- the batch ahead of the others.
    v_few := v_due_all <= p_limit;
    IF p_hosts IS NOT NULL THEN
        v_room := ARRAY(SELECT x::int FROM jsonb_array_elements_text(p_hosts->'room') AS x);
        v_hooks := p_hosts->'hooks';
    END IF;
    FOR h IN
        -- (in due order under a LIMIT it cannot reach: deliveries_due, never a
        -- walk of every pending row by webhook in a plan made while empty)
        SELECT d.webhook_id AS wid, min(d.next_attempt_at) AS due, count(*)::int AS n
          FROM (SELECT d.webhook_id, d.next_attempt_at FROM octo_webhooks.deliveries d
                 WHERE v_few AND d.status = 'pending' AND d.next_attempt_at <= v_now
                 ORDER BY d.next_attempt_at LIMIT p_limit + 1) d
         GROUP BY d.webhook_id
        UNION ALL
        (WITH RECURSIVE hooks(wid) AS (
            (SELECT d.webhook_id FROM octo_webhooks.deliveries d
              WHERE d.status = 'pending' ORDER BY d.webhook_id LIMIT 1)
            UNION ALL
            SELECT (SELECT d.webhook_id FROM octo_webhooks.deliveries d
                     WHERE d.status = 'pending' AND d.webhook_id > hooks.wid
                     ORDER BY d.webhook_id LIMIT 1)
              FROM hooks WHERE hooks.wid IS NOT NULL)
        SELECT x.wid, x.due, NULL::int FROM (
            SELECT hooks.wid, (SELECT d.next_attempt_at FROM octo_webhooks.deliveries d
                                WHERE d.status = 'pending' AND d.webhook_id = hooks.wid
                                ORDER BY d.next_attempt_at LIMIT 1) AS due
              FROM hooks WHERE hooks.wid IS NOT NULL) x
         WHERE NOT v_few)
        ORDER BY 2
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
        -- A host with no room left: nothing to count (the common case when
        -- one reseller's many webhooks share a busy endpoint).
        v_g := NULL;
        IF v_hooks IS NOT NULL THEN
            v_g := (v_hooks->>h.wid::text)::int + 1;
            IF v_g IS NOT NULL AND v_room[v_g] <= 0 THEN
                v_held := v_held + 1;
                CONTINUE;
            END IF;
        END IF;
        -- In flight: the webhook's count (webhook_flight). When it says the
        -- cap binds, and was not recounted this last second, the leases
        -- still running are counted (one lost with a killed dispatcher would
        -- otherwise hold a slot until the lease's row is claimed again).
        SELECT f.in_flight, f.counted_at INTO v_fl, v_counted
          FROM octo_webhooks.webhook_flight f WHERE f.webhook_id = h.wid;
        v_fl := coalesce(v_fl, 0);
        IF v_fl >= p_per_webhook AND v_counted < v_now - interval '1 second' THEN
            SELECT count(*) INTO v_fl FROM (
                SELECT 1 FROM octo_webhooks.deliveries d
                 WHERE d.webhook_id = h.wid AND d.status = 'pending' AND d.next_attempt_at > v_now
                   AND d.next_attempt_at < 'infinity' AND d.claim_id IS NOT NULL
                 ORDER BY d.webhook_id, d.next_attempt_at LIMIT p_per_webhook) x;
            UPDATE octo_webhooks.webhook_flight f SET in_flight = v_fl, counted_at = v_now
             WHERE f.webhook_id = h.wid;
        END IF;
        v_take := p_per_webhook - v_fl;
        IF p_rate > 0 THEN
            SELECT CASE WHEN r.window_start = date_trunc('second', v_now) THEN r.used ELSE 0 END
              INTO v_used FROM octo_webhooks.webhook_rate r WHERE r.webhook_id = h.wid;
            v_take := least(v_take, p_rate - coalesce(v_used, 0));
        END IF;
        IF v_g IS NOT NULL THEN
            v_take := least(v_take, v_room[v_g]);
        END IF;
        IF v_take <= 0 THEN
            v_held := v_held + 1;
            CONTINUE;
        END IF;
        -- How many are due, up to one more than it may take: more means a
        -- cap (not the batch, not the lack of work) held this webhook back.
        -- (The few-due read counted them already.)
        IF h.n IS NOT NULL THEN
            v_due := h.n;
        ELSE
            SELECT count(*) INTO v_due FROM (
                SELECT 1 FROM octo_webhooks.deliveries d
                 WHERE d.status = 'pending' AND d.webhook_id = h.wid AND d.next_attempt_at <= v_now
                 ORDER BY d.next_attempt_at LIMIT v_take + 1) x;
        END IF;
        IF v_due > v_take AND v_take < v_left THEN
            v_held := v_held + 1;
        END IF;
        v_take := least(v_take, v_due, v_left);
        IF v_take <= 0 THEN
            CONTINUE;
        END IF;
        v_wids := v_wids || h.wid;
        v_takes := v_takes || v_take;
        v_left := v_left - v_take;
        IF v_g IS NOT NULL THEN
            v_room[v_g] := v_room[v_g] - v_take;
        END IF;
    END LOOP;
    IF v_few THEN       -- what falls due next (a retry, a lease running out)
        SELECT min(d.next_attempt_at) INTO v_next FROM octo_webhooks.deliveries d
         WHERE d.status = 'pending' AND d.next_attempt_at > v_now AND d.next_attempt_at < 'infinity';
    END IF;
    -- Less than a batch: the dispatcher now waits for a NOTIFY (or its poll)
    -- if emit() is sure to send one. It must be listed, by an earlier
    -- transaction (emit() reads the listing with its own snapshot), and no
    -- emit() that may have looked before the listing was visible may still
    -- be open: they hold emit()'s lock shared to their commit, so taking it
    -- exclusively, at once released, proves it (held only for that instant:
    -- emit()s never wait on a claim). Not yet listed, not granted, or an
    -- event came meanwhile: the dispatcher must claim again soon.
    IF coalesce((SELECT sum(t) FROM unnest(v_takes) t), 0) < p_limit THEN
        SELECT s.since INTO v_listed FROM octo_webhooks.dispatcher_sleep s WHERE s.owner = p_owner;
        IF v_listed IS NULL THEN
            INSERT INTO octo_webhooks.dispatcher_sleep (owner, since) VALUES (p_owner, v_now)
            ON CONFLICT (owner) DO NOTHING;
            -- rows a dead dispatcher left (the living refresh theirs)
            DELETE FROM octo_webhooks.dispatcher_sleep s WHERE s.since < v_now - interval '15 minutes';
        ELSE
            IF v_listed < v_now - interval '1 minute' THEN
                UPDATE octo_webhooks.dispatcher_sleep s SET since = v_now WHERE s.owner = p_owner;
            END IF;
            IF pg_try_advisory_lock(7261003, 2) THEN
                PERFORM pg_advisory_unlock(7261003, 2);
                -- (NULL: events wait to be routed, claim again at once)
                v_asleep := CASE WHEN EXISTS (SELECT 1 FROM octo_webhooks.events e WHERE NOT e.routed)
                                 THEN NULL ELSE true END;
            END IF;
        END IF;
    ELSE
        DELETE FROM octo_webhooks.dispatcher_sleep s WHERE s.owner = p_owner;
    END IF;
    PERFORM set_config('octo_webhooks.claim_held', v_held::text, true),
            set_config('octo_webhooks.claim_next_in',
                       coalesce(extract(epoch FROM v_next - clock_timestamp())::text, ''), true),
            set_config('octo_webhooks.claim_asleep', coalesce(v_asleep::text, 'more'), true);
    IF cardinality(v_wids) = 0 THEN
        RETURN;
    END IF;
    -- One statement for every chosen webhook's due heads.
    RETURN QUERY
        WITH picks AS (SELECT p.wid, p.take FROM unnest(v_wids, v_takes) AS p(wid, take)),
        due AS (
            SELECT c.id, c.stale, p.wid FROM picks p
             CROSS JOIN LATERAL (
                -- stale: leased before, the lease ran out (still counted in flight)
                SELECT d.id, d.claim_id IS NOT NULL AS stale FROM octo_webhooks.deliveries d
                 WHERE d.status = 'pending' AND d.webhook_id = p.wid AND d.next_attempt_at <= v_now
                 ORDER BY d.next_attempt_at LIMIT p.take FOR UPDATE SKIP LOCKED) c),
        upd AS (
            UPDATE octo_webhooks.deliveries d
               SET next_attempt_at = v_now + p_lease, claim_id = gen_random_uuid(), claimed_by = p_owner
              FROM due
             -- (the ids as an index condition: a plan made while deliveries
             -- was empty must not scan it whole, see complete.sql)
             WHERE d.id = ANY (ARRAY(SELECT due.id FROM due)) AND d.id = due.id
            RETURNING d.id, d.claim_id, d.attempts, d.webhook, d.object_key, d.connection_id, d.event_id,
                      d.webhook_id, due.stale),
        flight AS (
            INSERT INTO octo_webhooks.webhook_flight AS f (webhook_id, in_flight)
                 SELECT u.webhook_id, count(*) FILTER (WHERE NOT u.stale) FROM upd u GROUP BY u.webhook_id
            ON CONFLICT (webhook_id) DO UPDATE SET in_flight = f.in_flight + excluded.in_flight),
        rate AS (
            INSERT INTO octo_webhooks.webhook_rate AS r (webhook_id, window_start, used)
                 SELECT u.webhook_id, date_trunc('second', v_now), count(*)
                   FROM upd u WHERE p_rate > 0 GROUP BY u.webhook_id
            ON CONFLICT (webhook_id) DO UPDATE
                SET used = CASE WHEN r.window_start = excluded.window_start
                                THEN r.used + excluded.used ELSE excluded.used END,
                    window_start = excluded.window_start)
        -- An event's object, previous state and supplier travel once per
        -- claim (on its first row; "repeat" rows take them from it): with
        -- many webhooks an event is claimed many times over.
        SELECT u.id, u.claim_id, u.attempts, u.webhook::text, e.event_type, u.object_key,
               CASE WHEN u.first THEN e.object::text END, u.connection_id, e.language,
               CASE WHEN u.first THEN e.supplier::text END, w.secret,
               CASE WHEN w.secret_previous_until > v_now THEN w.secret_previous END,
               CASE WHEN u.first THEN e.previous::text END, e.id, octo_webhooks.iso(e.created_at), e.sample,
               NOT u.first
          FROM (SELECT upd.*, row_number() OVER (PARTITION BY upd.event_id) = 1 AS first FROM upd) u
               JOIN octo_webhooks.events e ON e.id = u.event_id
               LEFT JOIN octo_webhooks.webhooks w ON w.id = u.webhook_id;
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.claim(int, interval, text, int, int, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.claim(int, interval, text, int, int, jsonb) TO octo_webhooks_runtime;  -- the dispatcher
