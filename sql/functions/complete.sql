-- octo_webhooks.complete(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- Records a batch of attempts (JSON array: id, claim, attempt, started,
-- code, latency, status, retry_in, excerpt, error, gone, and webhook: the
-- delivery's, as the dispatcher knows it) and applies them:
-- outcomes only while the lease holds, 410 deactivation, failing_since and
-- auto-disable after p_disable_after, and the next delivery of each object
-- that ended unparked.
CREATE OR REPLACE FUNCTION octo_webhooks.complete(p_results jsonb, p_owner text, p_disable_after interval)
-- Every row it touches is found by key from the batch: the batch's ids as an
-- index condition on deliveries' primary key (`d.id = ANY (v_ids)`), so
-- whichever side the planner puts outside, it reads the batch's rows and
-- nothing else. A plan is kept for the session; one made when deliveries
-- was empty (a fresh install, a dispatcher started before the first event,
-- a queue pruned and vacuumed) and joined only by `d.id = r.id` scanned all
-- pending deliveries on every call once the queue had grown (15 ms a call
-- with 30,000 pending). JIT off, as claim().
RETURNS void LANGUAGE plpgsql SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET jit = off SET plan_cache_mode = force_generic_plan AS $$  -- (generic plans: see claim.sql)
DECLARE
    v_done  jsonb;
    v_hooks uuid[];         -- (webhooks, then the parked heads to release)
    v_n     int;
    v_ids   uuid[] := ARRAY(SELECT (x->>'id')::uuid FROM jsonb_array_elements(p_results) x);
BEGIN
    WITH r AS MATERIALIZED (SELECT * FROM jsonb_to_recordset(p_results) AS r(id uuid, claim uuid, attempt int,
                   started float8, code int, latency int, status text, retry_in float8,
                   excerpt text, error text, gone boolean)),
    upd AS (UPDATE octo_webhooks.deliveries d
               SET status = r.status, attempts = r.attempt, claim_id = NULL,
                   next_attempt_at = CASE WHEN r.status = 'pending'
                       THEN clock_timestamp() + r.retry_in * interval '1 second' ELSE d.next_attempt_at END,
                   completed_at = CASE WHEN r.status = 'pending' THEN NULL ELSE clock_timestamp() END,
                   last_status = r.code, last_error = r.error
              -- (a lease is held by pending rows only: every move out of
              -- pending clears claim_id; no status test, so no partial index
              -- on pending rows can be taken for a scan of them all)
              FROM r WHERE d.id = ANY (v_ids) AND d.id = r.id AND d.claim_id = r.claim
             RETURNING d.id, d.webhook_id, d.object_key, r.status),
    ins AS (INSERT INTO octo_webhooks.attempts (delivery_id, attempt, started_at, status_code,
                   latency_ms, response_excerpt, error, dispatcher)
            SELECT r.id, r.attempt, to_timestamp(r.started), r.code, r.latency, r.excerpt, r.error, p_owner
              FROM r JOIN octo_webhooks.deliveries d ON d.id = r.id AND d.id = ANY (v_ids))
    SELECT coalesce(jsonb_agg(jsonb_build_object('webhook_id', upd.webhook_id,
                   'object_key', upd.object_key, 'status', upd.status)), '[]') INTO v_done FROM upd;

    -- The webhook's failing streak (any attempt counts, applied or not: it
    -- happened). In a batch the newest attempt decides. A batch of successes
    -- only (the common one), each naming its webhook, ends its webhooks'
    -- streaks without reading the deliveries again (7 us a delivery was
    -- this statement's in bench/defaults A).
    IF NOT EXISTS (SELECT 1 FROM jsonb_to_recordset(p_results) AS r(code int, webhook uuid)
                    WHERE r.webhook IS NULL OR NOT coalesce(r.code BETWEEN 200 AND 299, false)) THEN
        UPDATE octo_webhooks.webhooks w SET failing_since = NULL
         WHERE w.id = ANY (ARRAY(SELECT DISTINCT r.webhook FROM jsonb_to_recordset(p_results) AS r(webhook uuid)))
           AND w.failing_since IS NOT NULL;
    ELSE
    WITH a AS (SELECT d.webhook_id, to_timestamp(r.started) AS started,
                      coalesce(r.code BETWEEN 200 AND 299, false) AS ok
                 FROM jsonb_to_recordset(p_results) AS r(id uuid, started float8, code int)
                 JOIN octo_webhooks.deliveries d ON d.id = r.id AND d.id = ANY (v_ids)),
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
    END IF;

    -- 410 Gone: the endpoint asks us to stop. (Both checks only when the
    -- batch has such an answer: the common batch is all successes.)
    IF p_results @> '[{"gone": true}]'::jsonb THEN
        SELECT array_agg(DISTINCT d.webhook_id) INTO v_hooks
          FROM jsonb_to_recordset(p_results) AS r(id uuid, gone boolean)
          JOIN octo_webhooks.deliveries d ON d.id = r.id AND d.id = ANY (v_ids)
          JOIN octo_webhooks.webhooks w ON w.id = d.webhook_id
         WHERE r.gone AND w.active;
        IF v_hooks IS NOT NULL THEN
            PERFORM octo_webhooks.deactivate(v_hooks, 'the endpoint answered 410 Gone');
        END IF;
    END IF;

    -- Auto-disable: every attempt failed for p_disable_after (a batch with
    -- a failure in it: a success ended its webhook's streak above).
    IF EXISTS (SELECT 1 FROM jsonb_to_recordset(p_results) AS r(code int)
                WHERE NOT coalesce(r.code BETWEEN 200 AND 299, false)) THEN
        SELECT array_agg(w.id) INTO v_hooks FROM octo_webhooks.webhooks w
         WHERE w.active AND w.failing_since <= clock_timestamp() - p_disable_after
           AND w.id IN (SELECT d.webhook_id FROM octo_webhooks.deliveries d WHERE d.id = ANY (v_ids));
        IF v_hooks IS NOT NULL THEN
            PERFORM octo_webhooks.deactivate(v_hooks,
                'every delivery attempt failed for ' || p_disable_after::text);
        END IF;
    END IF;

    -- The leases that ended leave their webhooks' in-flight counts. Those
    -- rows are written under the claims' lock only (taken first, as claim()
    -- does): a dispatcher completing while another claims must not hold a
    -- count the claim needs while it waits for the lock the claim holds.
    IF v_done <> '[]'::jsonb THEN
        PERFORM pg_advisory_xact_lock(7261003, 1);
        UPDATE octo_webhooks.webhook_flight f SET in_flight = greatest(f.in_flight - n.n, 0)
          FROM (SELECT x.webhook_id, count(*)::int AS n
                  FROM jsonb_to_recordset(v_done) AS x(webhook_id uuid) GROUP BY x.webhook_id) n
         WHERE f.webhook_id = n.webhook_id;
    END IF;

    -- The next delivery of each object whose delivery ended: only when
    -- anything is parked at all (one probe at the end of deliveries_due;
    -- with distinct objects in flight, the common case, nothing is). Written
    -- as the last due time: `EXISTS (... = 'infinity')`, planned while the
    -- table was empty, walked all of deliveries_object instead.
    IF NOT coalesce((SELECT p.next_attempt_at = 'infinity' FROM octo_webhooks.deliveries p
                      WHERE p.status = 'pending' ORDER BY p.next_attempt_at DESC LIMIT 1), false) THEN
        RETURN;
    END IF;
    v_hooks := ARRAY(
        SELECT h.id
          FROM (SELECT DISTINCT x.webhook_id, x.object_key
                  FROM jsonb_to_recordset(v_done) AS x(webhook_id uuid, object_key text, status text)
                 WHERE x.status <> 'pending') t
         CROSS JOIN LATERAL (SELECT p.id, p.next_attempt_at FROM octo_webhooks.deliveries p
                              WHERE p.webhook_id = t.webhook_id AND p.object_key = t.object_key
                                AND p.status = 'pending' ORDER BY p.event_id LIMIT 1) h
         WHERE h.next_attempt_at = 'infinity');
    UPDATE octo_webhooks.deliveries n SET next_attempt_at = clock_timestamp()
     WHERE n.id = ANY (v_hooks) AND n.next_attempt_at = 'infinity';
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n > 0 THEN
        PERFORM pg_notify('octo_webhooks', '');
    END IF;
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.complete(jsonb, text, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.complete(jsonb, text, interval) TO octo_webhooks_runtime;  -- the dispatcher
