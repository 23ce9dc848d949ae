-- claim() and complete() on their own (pgTAP), run by t/sql_functions.t in a
-- database the module migrated, inside one transaction that is rolled back.
-- Leases, the per-webhook and rate caps, order per object (parking and
-- unparking), stale results ignored, 410 deactivation, auto-disable, and the
-- claim's outlook (held, next_in, asleep), host room, whom emit() and
-- fanout() reach, and the listing of dispatchers that wait for a NOTIFY.
\ir lib/begin.psql
SELECT plan(89);

CREATE FUNCTION pg_temp.reset() RETURNS void LANGUAGE sql AS $$
    DELETE FROM octo_webhooks.attempts; DELETE FROM octo_webhooks.deliveries;
    DELETE FROM octo_webhooks.events; DELETE FROM octo_webhooks.webhooks;
    DELETE FROM octo_webhooks.webhook_rate; DELETE FROM octo_webhooks.object_states;
    DELETE FROM octo_webhooks.webhook_flight;
$$;
CREATE FUNCTION pg_temp.webhook(p_event text) RETURNS uuid LANGUAGE sql AS $$
    INSERT INTO octo_webhooks.connections (id) VALUES ('c') ON CONFLICT DO NOTHING;
    INSERT INTO octo_webhooks.webhooks (connection_id, event, event_type, url, url_display)
         VALUES ('c', p_event, p_event, 'http://127.0.0.1:9/', 'http://127.0.0.1:9/') RETURNING id;
$$;
-- claim()'s rows, and after them a row with o_id NULL holding what
-- claim_outlook() says in the same transaction
CREATE TEMP TABLE got (o_id uuid, o_claim uuid, o_attempts int, o_webhook text, o_event_type text,
    o_object_key text, o_object text, o_connection text, o_language text, o_supplier text, o_secret text,
    o_secret_previous text, o_held int, o_next_in float8, o_previous text, o_event_id bigint,
    o_event_at text, o_sample boolean, o_repeat boolean, o_asleep boolean);
CREATE FUNCTION pg_temp.claim(p_limit int, p_owner text, p_per_webhook int, p_rate int,
                               p_hosts jsonb DEFAULT NULL) RETURNS int
LANGUAGE sql AS $$
    DELETE FROM got;
    INSERT INTO got (o_id, o_claim, o_attempts, o_webhook, o_event_type, o_object_key, o_object, o_connection,
                     o_language, o_supplier, o_secret, o_secret_previous, o_previous, o_event_id, o_event_at,
                     o_sample, o_repeat)
         SELECT * FROM octo_webhooks.claim(p_limit, interval '1 minute', p_owner, p_per_webhook, p_rate, p_hosts);
    INSERT INTO got (o_held, o_next_in, o_asleep) SELECT held, next_in, asleep FROM octo_webhooks.claim_outlook();
    SELECT count(*)::int FROM got WHERE o_id IS NOT NULL;
$$;
CREATE FUNCTION pg_temp.result(p_id uuid, p_claim uuid, p_status text, p_code int,
                               p_retry_in float8 DEFAULT 0, p_gone boolean DEFAULT false) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT jsonb_build_array(jsonb_build_object('id', p_id, 'claim', p_claim,
        'webhook', (SELECT webhook_id FROM octo_webhooks.deliveries WHERE id = p_id),
        'attempt', (SELECT attempts + 1 FROM octo_webhooks.deliveries WHERE id = p_id),
        'started', extract(epoch FROM clock_timestamp()), 'code', p_code, 'latency', 5,
        'status', p_status, 'retry_in', p_retry_in, 'excerpt', 'x', 'error',
        CASE WHEN p_code BETWEEN 200 AND 299 THEN NULL ELSE 'HTTP ' || p_code END, 'gone', p_gone))
$$;
CREATE FUNCTION pg_temp.complete(p_results jsonb, p_disable_after interval DEFAULT '5 days') RETURNS void
LANGUAGE sql AS $$ SELECT octo_webhooks.complete(p_results, 'test', p_disable_after) $$;

-- ---- leases ---------------------------------------------------------------------
SELECT pg_temp.webhook('booking_update') AS w1 \gset
SELECT octo_webhooks.emit('booking_update', '{"uuid": "b-1"}', 'c') AS e1 \gset
SELECT is(pg_temp.claim(10, 'A', 10, 0), 1, 'lease: a due delivery is claimed');
SELECT o_id AS d1, o_claim AS c1 FROM got WHERE o_id IS NOT NULL \gset
SELECT is((SELECT count(*)::int FROM got WHERE o_id IS NULL), 1, 'lease: claim_outlook() answers in the same transaction');
SELECT is((SELECT (o_object::jsonb)->>'uuid' FROM got WHERE o_id IS NOT NULL), 'b-1', 'lease: with its event''s object');
SELECT is((SELECT o_event_id FROM got WHERE o_id IS NOT NULL), :e1::bigint, 'lease: and event id');
SELECT ok((SELECT next_attempt_at BETWEEN clock_timestamp() + interval '50 seconds' AND clock_timestamp() + interval '61 seconds'
             FROM octo_webhooks.deliveries WHERE id = :'d1'), 'lease: the delivery is due again when the lease ends');
SELECT is((SELECT claimed_by FROM octo_webhooks.deliveries WHERE id = :'d1'), 'A', 'lease: claimed_by');
SELECT is(pg_temp.claim(10, 'B', 10, 0), 0, 'lease: a leased delivery is not claimed again');
UPDATE octo_webhooks.deliveries SET next_attempt_at = clock_timestamp() - interval '1 second' WHERE id = :'d1';
SELECT is(pg_temp.claim(10, 'B', 10, 0), 1, 'lease: once it ran out, another dispatcher takes it');
SELECT o_claim AS c2 FROM got WHERE o_id IS NOT NULL \gset
SELECT isnt(:'c2'::uuid, :'c1'::uuid, 'lease: under a new claim id');

-- ---- stale claim results ignored --------------------------------------------------------
SELECT pg_temp.complete(pg_temp.result(:'d1', :'c1', 'succeeded', 200));
SELECT is((SELECT status || '/' || claim_id FROM octo_webhooks.deliveries WHERE id = :'d1'), 'pending/' || :'c2',
          'stale: the outcome of an expired lease is not applied');
SELECT is((SELECT count(*)::int FROM octo_webhooks.attempts WHERE delivery_id = :'d1'), 1, 'stale: its attempt is still logged');
SELECT pg_temp.complete(pg_temp.result(:'d1', :'c2', 'succeeded', 200));
SELECT is((SELECT status FROM octo_webhooks.deliveries WHERE id = :'d1'), 'succeeded', 'stale: the current lease''s outcome applies');
SELECT ok((SELECT claim_id IS NULL AND completed_at IS NOT NULL AND last_status = 200 AND attempts = 1
             FROM octo_webhooks.deliveries WHERE id = :'d1'), 'stale: claim cleared, completed, status and attempt count set');
SELECT pg_temp.complete(pg_temp.result(:'d1', :'c2', 'failed', 500));
SELECT is((SELECT status FROM octo_webhooks.deliveries WHERE id = :'d1'), 'succeeded', 'stale: an ended delivery stays ended');

-- ---- the per-webhook cap --------------------------------------------------------------
SELECT pg_temp.reset();
SELECT pg_temp.webhook('product_update') AS w2 \gset
SELECT count(octo_webhooks.emit('product_update', jsonb_build_object('id', 'p-' || g))) FROM generate_series(1, 5) g;
SELECT is(pg_temp.claim(10, 'A', 2, 0), 2, 'cap: at most 2 in flight per webhook');
SELECT is((SELECT o_held FROM got WHERE o_id IS NULL), 1, 'cap: the last row says a cap held due work back');
SELECT is(pg_temp.claim(10, 'B', 2, 0), 0, 'cap: none more while 2 are in flight, whoever claims');
SELECT is((SELECT o_held FROM got WHERE o_id IS NULL), 1, 'cap: still held');
SELECT pg_temp.complete(pg_temp.result(d.id, d.claim_id, 'succeeded', 200))
  FROM octo_webhooks.deliveries d WHERE d.claim_id IS NOT NULL ORDER BY d.event_id LIMIT 1;
SELECT is(pg_temp.claim(10, 'A', 2, 0), 1, 'cap: one ended, one more is claimed');
SELECT is(pg_temp.claim(1, 'A', 5, 0), 1, 'cap: p_limit bounds the batch');
SELECT is((SELECT o_held FROM got WHERE o_id IS NULL), 0,
          'cap: a full batch is not "held" (the dispatcher claims again when its batch came back full)');

-- ---- in-flight counts (webhook_flight) ----------------------------------------------------
CREATE FUNCTION pg_temp.flight(p_webhook uuid) RETURNS int LANGUAGE sql AS $$
    SELECT coalesce((SELECT in_flight FROM octo_webhooks.webhook_flight WHERE webhook_id = p_webhook), -1)
$$;
SELECT is(pg_temp.flight(:'w2'), 3, 'flight: the count follows claims and completes (2 + 1 + 1 claimed, 1 ended)');
SELECT count(pg_temp.complete(pg_temp.result(d.id, d.claim_id, 'succeeded', 200)))
  FROM octo_webhooks.deliveries d WHERE d.claim_id IS NOT NULL;
SELECT is(pg_temp.flight(:'w2'), 0, 'flight: every lease ended, none in flight');
UPDATE octo_webhooks.webhook_flight SET in_flight = 2, counted_at = clock_timestamp() WHERE webhook_id = :'w2';
SELECT is(pg_temp.claim(10, 'A', 2, 0), 0, 'flight: a count recounted this second that says the cap binds is trusted');
UPDATE octo_webhooks.webhook_flight SET counted_at = clock_timestamp() - interval '2 seconds' WHERE webhook_id = :'w2';
SELECT is(pg_temp.claim(10, 'A', 2, 0), 1, 'flight: an older one is recounted from the leases (one left high costs a second)');
SELECT is(pg_temp.flight(:'w2'), 1, 'flight: recounted, plus the one claimed');
UPDATE octo_webhooks.deliveries SET next_attempt_at = clock_timestamp() - interval '1 second'
 WHERE webhook_id = :'w2' AND claim_id IS NOT NULL AND status = 'pending';
SELECT is(pg_temp.claim(10, 'B', 2, 0) * 10 + pg_temp.flight(:'w2'), 11,
          'flight: a lease claimed again after it ran out counts once');
SELECT octo_webhooks.deactivate(ARRAY[:'w2'::uuid], 'test');
SELECT is(pg_temp.flight(:'w2'), -1, 'flight: a deactivated webhook''s leases are void, its count goes');

-- ---- the rate cap (claims per webhook per second) -------------------------------------
SELECT pg_temp.reset();
SELECT pg_temp.webhook('product_update') AS w3 \gset
SELECT count(octo_webhooks.emit('product_update', jsonb_build_object('id', 'p-' || g))) FROM generate_series(1, 5) g;
-- start early in a second so both claims fall in one window (asserted after)
DO $$ BEGIN
    WHILE extract(microseconds FROM clock_timestamp())::bigint % 1000000 > 200000 LOOP
        PERFORM pg_sleep(0.01);
    END LOOP;
END $$;
SELECT pg_temp.claim(10, 'A', 10, 3) AS r1 \gset
SELECT o_held AS held1 FROM got WHERE o_id IS NULL \gset
SELECT pg_temp.claim(10, 'A', 10, 3) AS r2 \gset
SELECT is(:r1, 3, 'rate: 3 per second');
SELECT is(:held1, 1, 'rate: held');
SELECT is(:r2, 0, 'rate: none more in the same second');
SELECT is((SELECT used FROM octo_webhooks.webhook_rate WHERE webhook_id = :'w3'), 3, 'rate: the window counts 3');
UPDATE octo_webhooks.webhook_rate SET window_start = window_start - interval '1 second';
SELECT is(pg_temp.claim(10, 'A', 10, 3), 2, 'rate: the next second, the rest');

-- ---- order per object: parking and unparking ---------------------------------------
SELECT pg_temp.reset();
SELECT pg_temp.webhook('booking_update') AS w4 \gset
SELECT octo_webhooks.emit('booking_update', jsonb_build_object('uuid', 'b-9', 'n', g), 'c') FROM generate_series(1, 3) g;
SELECT octo_webhooks.emit('booking_update', '{"uuid": "b-other"}', 'c');
SELECT events, deliveries FROM octo_webhooks.fanout(1000);   -- (claim() routes by itself; read before any claim here)
SELECT is((SELECT array_agg(next_attempt_at = 'infinity' ORDER BY event_id) FROM octo_webhooks.deliveries WHERE object_key = 'b-9'),
          ARRAY[false, true, true], 'order: later deliveries of an object wait parked');
SELECT is(pg_temp.claim(10, 'A', 10, 0), 2, 'order: the head of each object is claimed, not the parked');
SELECT is((SELECT array_agg(o_object_key ORDER BY o_object_key) FROM got WHERE o_id IS NOT NULL), ARRAY['b-9', 'b-other'],
          'order: one per object');
SELECT o_id AS h1, o_claim AS hc1 FROM got WHERE o_object_key = 'b-9' \gset
SELECT pg_temp.complete(pg_temp.result(:'h1', :'hc1', 'pending', 500, 30));
SELECT is((SELECT count(*)::int FROM octo_webhooks.deliveries WHERE object_key = 'b-9' AND next_attempt_at = 'infinity'), 2,
          'order: a retry keeps the others parked');
SELECT ok((SELECT next_attempt_at BETWEEN clock_timestamp() + interval '25 seconds' AND clock_timestamp() + interval '31 seconds'
             FROM octo_webhooks.deliveries WHERE id = :'h1'), 'order: the retry is due after retry_in');
UPDATE octo_webhooks.deliveries SET next_attempt_at = clock_timestamp() WHERE id = :'h1';
SELECT is(pg_temp.claim(10, 'A', 10, 0), 1, 'order: the retry is claimed again');
SELECT o_claim AS hc2 FROM got WHERE o_id IS NOT NULL \gset
SELECT pg_temp.complete(pg_temp.result(:'h1', :'hc2', 'succeeded', 200));
SELECT is((SELECT array_agg(next_attempt_at = 'infinity' ORDER BY event_id) FROM octo_webhooks.deliveries
            WHERE object_key = 'b-9' AND status = 'pending'), ARRAY[false, true], 'order: the next in event order is unparked');
SELECT is(pg_temp.claim(10, 'A', 10, 0), 1, 'order: and claimed');
SELECT is((SELECT ((o_object::jsonb)->>'n')::int FROM got WHERE o_id IS NOT NULL), 2, 'order: it is event 2');
SELECT o_id AS h2, o_claim AS hc3 FROM got WHERE o_id IS NOT NULL \gset
SELECT pg_temp.complete(pg_temp.result(:'h2', :'hc3', 'failed', 500));
SELECT is((SELECT count(*)::int FROM octo_webhooks.deliveries WHERE object_key = 'b-9' AND status = 'pending'
             AND next_attempt_at <> 'infinity'), 1, 'order: a failed delivery unparks the next too');

-- ---- held / next_in ---------------------------------------------------------------
SELECT pg_temp.reset();
SELECT is(pg_temp.claim(10, 'A', 10, 0), 0, 'next_in: nothing pending');
SELECT ok((SELECT o_held = 0 AND o_next_in IS NULL FROM got), 'next_in: NULL when nothing waits, nothing held');
SELECT pg_temp.webhook('product_update') AS w5 \gset
SELECT octo_webhooks.emit('product_update', '{"id": "p-1"}');
SELECT octo_webhooks.emit('product_update', '{"id": "p-1", "v": 2}');
SELECT events, deliveries FROM octo_webhooks.fanout(1000);   -- (claim() routes by itself; read before any claim here)
UPDATE octo_webhooks.deliveries SET next_attempt_at = clock_timestamp() + interval '30 seconds' WHERE next_attempt_at <> 'infinity';
SELECT is(pg_temp.claim(10, 'A', 10, 0), 0, 'next_in: nothing due yet');
SELECT ok((SELECT o_held = 0 AND o_next_in BETWEEN 25 AND 30 FROM got), 'next_in: the seconds until the next falls due');
UPDATE octo_webhooks.deliveries SET next_attempt_at = 'infinity';
SELECT is(pg_temp.claim(10, 'A', 10, 0), 0, 'next_in: parked only');
SELECT ok((SELECT o_next_in IS NULL FROM got), 'next_in: parked lines are woken by complete(), not by time');

-- ---- 410 Gone ------------------------------------------------------------------------
SELECT pg_temp.reset();
SELECT pg_temp.webhook('product_update') AS w6 \gset
SELECT octo_webhooks.emit('product_update', jsonb_build_object('id', 'p-' || g)) FROM generate_series(1, 3) g;
SELECT is(pg_temp.claim(1, 'A', 10, 0), 1, 'gone: one claimed');
SELECT o_id AS g1, o_claim AS gc1 FROM got WHERE o_id IS NOT NULL \gset
SELECT pg_temp.complete(pg_temp.result(:'g1', :'gc1', 'failed', 410, 0, true));
SELECT ok((SELECT NOT active AND disabled_reason = 'the endpoint answered 410 Gone' AND disabled_at IS NOT NULL
             FROM octo_webhooks.webhooks WHERE id = :'w6'), 'gone: 410 deactivates the webhook, saying why');
SELECT is((SELECT array_agg(DISTINCT status || ': ' || last_error) FROM octo_webhooks.deliveries WHERE id <> :'g1'),
          ARRAY['failed: webhook deactivated: the endpoint answered 410 Gone'], 'gone: what it had pending fails');
SELECT is(pg_temp.claim(10, 'A', 10, 0), 0, 'gone: nothing left to claim');

-- ---- auto-disable ----------------------------------------------------------------------
SELECT pg_temp.reset();
SELECT pg_temp.webhook('product_update') AS w7 \gset
SELECT octo_webhooks.emit('product_update', jsonb_build_object('id', 'p-' || g)) FROM generate_series(1, 2) g;
SELECT is(pg_temp.claim(1, 'A', 10, 0), 1, 'disable: claimed');
SELECT o_id AS a1, o_claim AS ac1 FROM got WHERE o_id IS NOT NULL \gset
SELECT pg_temp.complete(pg_temp.result(:'a1', :'ac1', 'pending', 500, 60), '1 day');
SELECT ok((SELECT active AND failing_since BETWEEN clock_timestamp() - interval '1 minute' AND clock_timestamp()
             FROM octo_webhooks.webhooks WHERE id = :'w7'), 'disable: a failure starts the failing streak, still active');
UPDATE octo_webhooks.webhooks SET failing_since = clock_timestamp() - interval '2 days' WHERE id = :'w7';
UPDATE octo_webhooks.deliveries SET next_attempt_at = clock_timestamp() WHERE id = :'a1';
SELECT is(pg_temp.claim(1, 'A', 10, 0), 1, 'disable: retried');
SELECT o_claim AS ac2 FROM got WHERE o_id IS NOT NULL \gset
SELECT pg_temp.complete(pg_temp.result(:'a1', :'ac2', 'pending', 500, 60), '1 day');
SELECT ok((SELECT NOT active AND disabled_reason = 'every delivery attempt failed for 1 day'
             FROM octo_webhooks.webhooks WHERE id = :'w7'), 'disable: failing longer than p_disable_after deactivates');
SELECT is((SELECT count(*)::int FROM octo_webhooks.deliveries WHERE status = 'pending'), 0, 'disable: its deliveries failed');
SELECT pg_temp.reset();
SELECT pg_temp.webhook('product_update') AS w8 \gset
SELECT octo_webhooks.emit('product_update', '{"id": "p-1"}');
UPDATE octo_webhooks.webhooks SET failing_since = clock_timestamp() - interval '2 days' WHERE id = :'w8';
SELECT is(pg_temp.claim(1, 'A', 10, 0), 1, 'disable: claimed');
SELECT o_id AS s1, o_claim AS sc1 FROM got WHERE o_id IS NOT NULL \gset
SELECT pg_temp.complete(pg_temp.result(:'s1', :'sc1', 'succeeded', 200), '1 day');
SELECT ok((SELECT active AND failing_since IS NULL FROM octo_webhooks.webhooks WHERE id = :'w8'),
          'disable: a success ends the streak');
-- (a dispatcher of an earlier release names no webhook: the statement that reads the deliveries)
SELECT octo_webhooks.emit('product_update', '{"id": "p-2"}');
UPDATE octo_webhooks.webhooks SET failing_since = clock_timestamp() - interval '2 days' WHERE id = :'w8';
SELECT is(pg_temp.claim(1, 'A', 10, 0), 1, 'disable: claimed again');
SELECT o_id AS s2, o_claim AS sc2 FROM got WHERE o_id IS NOT NULL \gset
SELECT pg_temp.complete(pg_temp.result(:'s2', :'sc2', 'succeeded', 200) #- '{0,webhook}', '1 day');
SELECT ok((SELECT active AND failing_since IS NULL FROM octo_webhooks.webhooks WHERE id = :'w8'),
          'disable: a success that names no webhook (an earlier dispatcher) ends the streak too');

-- ---- host room (p_hosts) --------------------------------------------------------------
SELECT pg_temp.reset();
SELECT pg_temp.webhook('product_update') AS x1 \gset
SELECT pg_temp.webhook('product_update') AS x2 \gset
SELECT pg_temp.webhook('product_update') AS x3 \gset
SELECT octo_webhooks.emit('product_update', jsonb_build_object('id', 'p-' || i)) FROM generate_series(1, 4) i;
-- x1 and x2 send to one host with room for 3; x3 to a host the dispatcher has not seen
SELECT is(pg_temp.claim(100, 'A', 10, 0, jsonb_build_object('room', jsonb_build_array(3),
                        'hooks', jsonb_build_object(:'x1', 0, :'x2', 0))), 4 + 3,
          'hosts: a full host''s webhooks take its room together, an unknown host''s are not bound');
SELECT is((SELECT count(*)::int FROM got WHERE o_id IS NOT NULL AND (o_webhook::jsonb)->>'id' IN (:'x1', :'x2')), 3,
          'hosts: exactly the room');
SELECT is((SELECT o_held FROM got WHERE o_id IS NULL), 2, 'hosts: both webhooks the room held back count as held');
SELECT is(pg_temp.claim(100, 'A', 10, 0, jsonb_build_object('room', jsonb_build_array(0),
                        'hooks', jsonb_build_object(:'x1', 0, :'x2', 0))), 0, 'hosts: no room, nothing claimed');
SELECT is(pg_temp.claim(100, 'A', 10, 0), 5 - 0, 'hosts: without p_hosts the rest is claimed');

-- ---- an event's object travels once per claim ---------------------------------------------
SELECT pg_temp.reset();
SELECT pg_temp.webhook('product_update') FROM generate_series(1, 3);
SELECT octo_webhooks.emit('product_update', '{"id": "p-once"}', NULL, NULL, '{"id": "s"}');
SELECT octo_webhooks.emit('product_update', '{"id": "p-once", "v": 2}');
SELECT is(pg_temp.claim(100, 'A', 10, 0), 3, 'once: the heads of three webhooks');
SELECT is((SELECT array_agg(o_object IS NOT NULL AND o_supplier IS NOT NULL ORDER BY o_repeat) FROM got
            WHERE o_id IS NOT NULL), ARRAY[true, false, false],
          'once: the object and supplier on the event''s first row, not on its repeats');
SELECT is((SELECT count(DISTINCT o_event_id)::int FROM got WHERE o_id IS NOT NULL AND NOT o_repeat), 1,
          'once: one first row per event');

-- ---- emit() and fanout(): who a booking reaches ---------------------------------------------------
SELECT pg_temp.reset();
INSERT INTO octo_webhooks.connections (id) VALUES ('other') ON CONFLICT DO NOTHING;
INSERT INTO octo_webhooks.webhooks (connection_id, event, event_type, url, url_display)
     VALUES ('other', 'booking_update', 'booking_update', 'http://127.0.0.1:9/', 'http://127.0.0.1:9/');
SELECT pg_temp.webhook('booking_update') AS y1 \gset
SELECT octo_webhooks.emit('booking_update', '{"uuid": "b-own"}', 'c') AS ye1 \gset
SELECT events, deliveries FROM octo_webhooks.fanout(1000);   -- (claim() routes by itself; read before any claim here)
SELECT is((SELECT array_agg(webhook_id) FROM octo_webhooks.deliveries WHERE event_id = :ye1), ARRAY[:'y1'::uuid],
          'emit: a booking reaches its own connection''s webhooks only');
SELECT octo_webhooks.emit('booking_update', '{"uuid": "b-nobody"}') AS ye2 \gset
SELECT events, deliveries FROM octo_webhooks.fanout(1000);   -- (claim() routes by itself; read before any claim here)
SELECT is((SELECT count(*)::int FROM octo_webhooks.deliveries WHERE event_id = :ye2), 0,
          'emit: a booking without a connection is nobody''s: no delivery');
SELECT pg_temp.webhook('product_update') AS y2 \gset
SELECT octo_webhooks.emit('product_update', '{"id": "p-all"}', 'c') AS ye3 \gset
SELECT events, deliveries FROM octo_webhooks.fanout(1000);   -- (claim() routes by itself; read before any claim here)
SELECT is((SELECT count(*)::int FROM octo_webhooks.deliveries WHERE event_id = :ye3), 1,
          'emit: a product reaches every product webhook');

-- ---- unpark_orphans(): a parked delivery whose predecessor ended unseen ----------------
SELECT pg_temp.reset();
SELECT pg_temp.webhook('product_update') AS z1 \gset
SELECT octo_webhooks.emit('product_update', '{"id": "p-z", "n": 1}');
SELECT octo_webhooks.emit('product_update', '{"id": "p-z", "n": 2}');
SELECT octo_webhooks.emit('product_update', '{"id": "p-z", "n": 3}');
SELECT events, deliveries FROM octo_webhooks.fanout(1000);   -- (claim() routes by itself; read before any claim here)
SELECT is(octo_webhooks.unpark_orphans(), 0, 'unpark: nothing while the first is pending');
-- the first ended without complete() seeing its successors (their emit had not committed)
UPDATE octo_webhooks.deliveries d SET status = 'succeeded', completed_at = clock_timestamp()
  FROM octo_webhooks.events e WHERE e.id = d.event_id AND (e.object->>'n') = '1';
SELECT is(octo_webhooks.unpark_orphans(), 1, 'unpark: the orphaned head is released');
SELECT is((SELECT (e.object->>'n') FROM octo_webhooks.deliveries d JOIN octo_webhooks.events e ON e.id = d.event_id
            WHERE d.status = 'pending' AND d.next_attempt_at <> 'infinity'), '2', 'unpark: it is the next in line');
SELECT is(octo_webhooks.unpark_orphans(), 0, 'unpark: the one after it stays parked');

-- ---- waiting for a NOTIFY: the listing emit() reads -----------------------------------
SELECT pg_temp.reset();
DELETE FROM octo_webhooks.dispatcher_sleep;
INSERT INTO octo_webhooks.dispatcher_sleep (owner, since) VALUES ('gone', clock_timestamp() - interval '20 minutes');
SELECT pg_temp.webhook('product_update') AS s1 \gset
SELECT is(pg_temp.claim(10, 'A', 10, 0), 0, 'listing: nothing to claim');
SELECT is((SELECT o_asleep FROM got WHERE o_id IS NULL), false,
          'listing: not listed before this claim: it must claim once more before it waits');
SELECT is((SELECT array_agg(owner) FROM octo_webhooks.dispatcher_sleep), ARRAY['A'],
          'listing: listed now; a row not refreshed for 15 minutes (a dead dispatcher''s) goes');
SELECT is(pg_temp.claim(10, 'A', 10, 0), 0, 'listing: still nothing');
SELECT is((SELECT o_asleep FROM got WHERE o_id IS NULL), true, 'listing: listed, no emit() open: it may wait for a NOTIFY');
SELECT octo_webhooks.emit('product_update', jsonb_build_object('id', 'p-' || g)) FROM generate_series(1, 2) g;
SELECT is(pg_temp.claim(1, 'A', 10, 0), 1, 'listing: a full batch claimed (the claim routed the events itself)');
SELECT is((SELECT o_asleep FROM got WHERE o_id IS NULL), false, 'listing: after a full batch it must claim again');
SELECT is((SELECT count(*)::int FROM octo_webhooks.dispatcher_sleep), 0, 'listing: and is no longer listed');
SELECT is(pg_temp.claim(10, 'A', 10, 0), 1, 'listing: the rest claimed');
SELECT is((SELECT count(*)::int FROM octo_webhooks.dispatcher_sleep), 1, 'listing: a batch not filled: listed again');

-- ---- plans made while deliveries was empty ------------------------------------------------
-- A session keeps its plans; complete()'s were once made on an empty table
-- (a fresh install) and then scanned every pending delivery per call.
SELECT pg_temp.reset();
TRUNCATE octo_webhooks.attempts, octo_webhooks.deliveries;
DISCARD PLANS;
SET LOCAL plan_cache_mode = force_generic_plan;
SELECT pg_temp.webhook('product_update') AS pw \gset
SELECT pg_temp.complete(pg_temp.result(gen_random_uuid(), gen_random_uuid(), 'succeeded', 200));   -- planned now, on an empty table
INSERT INTO octo_webhooks.events (id, event_type, object_key, object, routed) VALUES (-1, 'product_update', 'p-many', '{}', true);
INSERT INTO octo_webhooks.deliveries (event_id, webhook_id, connection_id, webhook, object_key, claim_id)
     SELECT -1, :'pw', 'c', '{}', 'p-many-' || g, gen_random_uuid() FROM generate_series(1, 3000) g;
SELECT id AS pd, pg_temp.result(id, claim_id, 'succeeded', 200) AS pr FROM octo_webhooks.deliveries WHERE object_key = 'p-many-7' \gset
CREATE TEMP TABLE idx0 AS SELECT i.indexrelid, pg_stat_get_xact_tuples_returned(i.indexrelid) AS n
  FROM pg_index i WHERE i.indrelid = 'octo_webhooks.deliveries'::regclass;
SELECT pg_temp.complete(:'pr');
SELECT is((SELECT status FROM octo_webhooks.deliveries WHERE id = :'pd'), 'succeeded', 'plans: the outcome applied');
SELECT cmp_ok((SELECT sum(pg_stat_get_xact_tuples_returned(i.indexrelid) - i.n)::bigint FROM idx0 i), '<', 50::bigint,
              'plans: with plans made on an empty table, one outcome among 3,000 pending reads its own rows, not all');

SELECT * FROM finish();
ROLLBACK;
