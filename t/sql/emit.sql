-- emit() and fanout() on their own (pgTAP), run by t/sql_functions.t in a
-- database the module migrated, inside one transaction that is rolled back:
-- emit() records one event and reads no webhook (issue 10: its cost is the
-- same whatever the tenants); fanout() routes it, reading only its
-- connection's webhooks however many other tenants have, also with the
-- generic plan a long-lived session ends up with; each delivery is parked
-- behind a pending one of the same object to the same webhook (or an earlier
-- one of the same batch) and due at once otherwise; an object's previous
-- state follows its events in order; the unscoped path reaches every
-- subscriber of the type; who matches is read when the event is routed.
\ir lib/begin.psql
SELECT plan(32);

DELETE FROM octo_webhooks.deliveries; DELETE FROM octo_webhooks.events;
DELETE FROM octo_webhooks.object_states; DELETE FROM octo_webhooks.webhooks;
INSERT INTO octo_webhooks.connections (id) SELECT 'o-' || c FROM generate_series(1, 200) c;
INSERT INTO octo_webhooks.connections (id) VALUES ('mine'), ('sub') ON CONFLICT DO NOTHING;
-- 20,000 booking webhooks of 200 other connections: all in the GIN index's booking_update entry
INSERT INTO octo_webhooks.webhooks (connection_id, event, event_type, url, url_display)
     SELECT 'o-' || c, 'booking_update', 'booking_update', 'http://127.0.0.1:9/', 'http://127.0.0.1:9/'
       FROM generate_series(1, 200) c, generate_series(1, 100) i;
-- the connection's own: 3 active booking webhooks, an inactive one, an order webhook
INSERT INTO octo_webhooks.webhooks (connection_id, event, event_type, url, url_display, active)
     SELECT 'mine', e, e, 'http://127.0.0.1:9/', 'http://127.0.0.1:9/', a
       FROM (VALUES ('booking_update', true), ('booking_update', true), ('booking_update', true),
                    ('booking_update', false), ('order_update', true)) v(e, a);
INSERT INTO octo_webhooks.webhooks (connection_id, event, event_type, url, url_display)
     SELECT 'sub', e, e, 'http://127.0.0.1:9/', 'http://127.0.0.1:9/'
       FROM unnest(ARRAY['availability_update', 'availability_update', 'product_update']) e;
ANALYZE octo_webhooks.webhooks;
-- as after a vacuum: the GIN index's pending list merged (cheap to the planner)
SELECT gin_clean_pending_list('octo_webhooks.webhooks_types_active') >= 0 AS merged \gset

-- what an index handed out so far in this transaction
CREATE FUNCTION pg_temp.idx_read(p_index text) RETURNS bigint LANGUAGE sql AS $$
    SELECT pg_stat_get_xact_tuples_returned(('octo_webhooks.' || p_index)::regclass)
$$;
CREATE TEMP TABLE mark AS SELECT pg_temp.idx_read('webhooks_types_active') AS gin,
                                 pg_temp.idx_read('webhooks_connection_seq') AS conn,
                                 pg_stat_get_xact_numscans('octo_webhooks.webhooks'::regclass) AS wscans,
                                 pg_stat_get_xact_numscans('octo_webhooks.deliveries_object'::regclass) AS probes,
                                 pg_stat_get_xact_numscans('octo_webhooks.deliveries_webhook_due'::regclass)
                                 + pg_stat_get_xact_numscans('octo_webhooks.deliveries_webhook'::regclass) AS walks;

-- the plan a session keeps after five calls: parameters unknown to the planner
SET LOCAL plan_cache_mode = force_generic_plan;
SELECT octo_webhooks.emit('booking_update', '{"uuid": "b-1", "status": "CONFIRMED"}', 'mine') AS e1 \gset
SELECT is((SELECT count(*) FROM octo_webhooks.deliveries), 0::bigint, 'emit: no delivery in the caller''s transaction');
SELECT is((SELECT count(*) FROM octo_webhooks.events WHERE id = :e1 AND NOT routed AND previous IS NULL), 1::bigint,
          'emit: one event, waiting to be routed');
SELECT is(pg_stat_get_xact_numscans('octo_webhooks.webhooks'::regclass) - (SELECT wscans FROM mark), 0::bigint,
          'emit: no webhook is read, by any index or scan');
SELECT is((SELECT count(*) FROM octo_webhooks.object_states), 0::bigint, 'emit: object states are left to routing');
SELECT is((SELECT row(events, deliveries)::text FROM octo_webhooks.fanout(100)), '(1,3)', 'fanout: the event, 3 deliveries');
SELECT is((SELECT row(events, deliveries)::text FROM octo_webhooks.fanout(100)), '(0,0)', 'fanout: nothing twice');
SELECT is((SELECT count(*) FROM octo_webhooks.deliveries WHERE event_id = :e1), 3::bigint,
          'a booking reaches its connection''s 3 active booking webhooks');
SELECT is(pg_temp.idx_read('webhooks_types_active') - (SELECT gin FROM mark), 0::bigint,
          'scoped routing: the event-type index (every tenant''s bookings) is not read');
-- (its own entries, live or dead, and what planning probes: far below the 20,000)
SELECT cmp_ok(pg_temp.idx_read('webhooks_connection_seq') - (SELECT conn FROM mark), '<', 200::bigint,
              'scoped routing: only the connection''s own webhooks are read');
SELECT is((SELECT count(*) FROM octo_webhooks.deliveries WHERE event_id = :e1 AND next_attempt_at = 'infinity'),
          0::bigint, 'an object''s first event: due at once');

-- the same booking again: parked behind the pending one, webhook by webhook
INSERT INTO octo_webhooks.webhooks (connection_id, event, event_type, url, url_display)
     VALUES ('mine', 'booking_update', 'booking_update', 'http://127.0.0.1:9/late', 'http://127.0.0.1:9/late');
SELECT octo_webhooks.emit('booking_update', '{"uuid": "b-1", "status": "CANCELLED"}', 'mine') AS e2 \gset
SELECT events FROM octo_webhooks.fanout(100);
SELECT is((SELECT previous->>'status' FROM octo_webhooks.events WHERE id = :e2), 'CONFIRMED',
          'previous: the state routed before (object_states)');
SELECT is((SELECT count(*) FROM octo_webhooks.deliveries WHERE event_id = :e2), 4::bigint,
          'the second event reaches the webhook added meanwhile too');
SELECT is((SELECT count(*) FROM octo_webhooks.deliveries WHERE event_id = :e2 AND next_attempt_at = 'infinity'),
          3::bigint, 'parked behind the pending delivery of the same object, to each webhook that has one');
SELECT is((SELECT count(*) FROM octo_webhooks.deliveries d
            WHERE d.event_id = :e2 AND d.next_attempt_at <> 'infinity'
              AND d.webhook_id = (SELECT id FROM octo_webhooks.webhooks WHERE url LIKE '%/late')),
          1::bigint, 'due at once to the webhook that has none pending');
SELECT octo_webhooks.emit('booking_update', '{"uuid": "b-2"}', 'mine') AS e3 \gset
SELECT events FROM octo_webhooks.fanout(100);
SELECT is((SELECT count(*) FROM octo_webhooks.deliveries WHERE event_id = :e3 AND next_attempt_at = 'infinity'),
          0::bigint, 'another object of the same webhooks: not parked');
-- a backlog of other objects (analyzed, as autovacuum does): the parking probe
-- goes by object, not through a webhook's whole backlog
INSERT INTO octo_webhooks.deliveries (event_id, webhook_id, connection_id, webhook, object_key)
     SELECT :e1, w.id, 'mine', '{}', 'backlog-' || i
       FROM octo_webhooks.webhooks w, generate_series(1, 3000) i
      WHERE w.connection_id = 'mine' AND w.active AND w.event_type = 'booking_update';
ANALYZE octo_webhooks.deliveries;
UPDATE mark SET probes = pg_stat_get_xact_numscans('octo_webhooks.deliveries_object'::regclass),
                walks = pg_stat_get_xact_numscans('octo_webhooks.deliveries_webhook_due'::regclass)
                        + pg_stat_get_xact_numscans('octo_webhooks.deliveries_webhook'::regclass);
SELECT octo_webhooks.emit('booking_update', '{"uuid": "b-3"}', 'mine') AS e35 \gset
SELECT events FROM octo_webhooks.fanout(100);
SELECT ok(pg_stat_get_xact_numscans('octo_webhooks.deliveries_object'::regclass) > (SELECT probes FROM mark)
          AND pg_stat_get_xact_numscans('octo_webhooks.deliveries_webhook_due'::regclass)
              + pg_stat_get_xact_numscans('octo_webhooks.deliveries_webhook'::regclass) = (SELECT walks FROM mark),
          'parking with a backlog: probed by object, never through a webhook''s whole backlog');
DELETE FROM octo_webhooks.deliveries WHERE object_key LIKE 'backlog-%';
-- ended deliveries do not park
UPDATE octo_webhooks.deliveries SET status = 'succeeded', completed_at = now() WHERE event_id IN (:e1, :e2);
SELECT octo_webhooks.emit('booking_update', '{"uuid": "b-1", "status": "CONFIRMED"}', 'mine') AS e4 \gset
SELECT events FROM octo_webhooks.fanout(100);
SELECT is((SELECT count(*) FROM octo_webhooks.deliveries WHERE event_id = :e4 AND next_attempt_at = 'infinity'),
          0::bigint, 'nothing pending for the object any more: due at once');
SELECT is((SELECT webhook->>'url' FROM octo_webhooks.deliveries WHERE event_id = :e4 ORDER BY webhook->>'url' DESC LIMIT 1),
          'http://127.0.0.1:9/late', 'each delivery carries its webhook''s snapshot');

-- an order of the connection: its order webhook only; another connection's booking: none of mine
SELECT octo_webhooks.emit('order_update', '{"id": "o-1"}', 'mine') AS e5 \gset
SELECT events FROM octo_webhooks.fanout(100);
SELECT is((SELECT count(*) FROM octo_webhooks.deliveries WHERE event_id = :e5), 1::bigint,
          'an order reaches the connection''s order webhook only');
SELECT octo_webhooks.emit('booking_update', '{"uuid": "b-9"}', 'o-7') AS e6 \gset
SELECT events FROM octo_webhooks.fanout(100);
SELECT is((SELECT count(*) FROM octo_webhooks.deliveries WHERE event_id = :e6), 100::bigint,
          'another connection''s booking: its own 100 webhooks');

-- unscoped: every subscriber of the type, whatever the connection
UPDATE mark SET wscans = pg_stat_get_xact_numscans('octo_webhooks.webhooks'::regclass),
                gin = pg_temp.idx_read('webhooks_types_active'), conn = pg_temp.idx_read('webhooks_connection_seq');
SELECT octo_webhooks.emit('availability_update', '{"id": "a-1", "productId": "p", "optionId": "o"}') AS e7 \gset
SELECT events FROM octo_webhooks.fanout(100);
SELECT is((SELECT count(*) FROM octo_webhooks.deliveries WHERE event_id = :e7), 2::bigint,
          'an availability reaches both availability subscribers');
SELECT ok(pg_stat_get_xact_numscans('octo_webhooks.webhooks'::regclass) = (SELECT wscans FROM mark)
          AND pg_temp.idx_read('webhooks_types_active') > (SELECT gin FROM mark)
          AND pg_temp.idx_read('webhooks_connection_seq') = (SELECT conn FROM mark),
          'unscoped routing: by the event-type index, never a walk of all webhooks');
SELECT octo_webhooks.emit('product_update', '{"id": "p-1"}', 'mine') AS e8 \gset
SELECT events FROM octo_webhooks.fanout(100);
SELECT is((SELECT count(*) FROM octo_webhooks.deliveries WHERE event_id = :e8), 1::bigint,
          'a product reaches the product subscriber');

-- one batch: an object's events in order, each parked behind the one before,
-- each one's previous the one before; the last becomes the object's state
SELECT octo_webhooks.emit('booking_update', jsonb_build_object('uuid', 'b-batch', 'n', g), 'mine') FROM generate_series(1, 3) g;
SELECT is((SELECT row(events, deliveries)::text FROM octo_webhooks.fanout(2)), '(2,8)', 'fanout: at most p_events, oldest first');
SELECT events FROM octo_webhooks.fanout(100);
SELECT is((SELECT array_agg((e.object->>'n') || ':' || (d.next_attempt_at = 'infinity') ORDER BY e.id)
             FROM octo_webhooks.deliveries d JOIN octo_webhooks.events e ON e.id = d.event_id
            WHERE e.object_key = 'b-batch' AND d.webhook->>'url' LIKE '%/late'),
          ARRAY['1:false', '2:true', '3:true'], 'order: parked behind the one before, within a batch and across');
SELECT is((SELECT array_agg(coalesce(previous->>'n', '-') ORDER BY id) FROM octo_webhooks.events WHERE object_key = 'b-batch'),
          ARRAY['-', '1', '2'], 'previous: the one before, within a batch and across');
SELECT is((SELECT object->>'n' FROM octo_webhooks.object_states WHERE object_key = 'b-batch'), '3',
          'previous: the last routed is the object''s state');
SELECT is((SELECT count(*) FROM octo_webhooks.events WHERE NOT routed), 0::bigint, 'every event routed');

-- who matches is read when the event is routed
SELECT octo_webhooks.emit('order_update', '{"id": "o-2"}', 'mine') AS e9 \gset
UPDATE octo_webhooks.webhooks SET active = false WHERE connection_id = 'mine' AND event_type = 'order_update';
INSERT INTO octo_webhooks.webhooks (connection_id, event, event_type, url, url_display)
     VALUES ('mine', 'order_update', 'order_update', 'http://127.0.0.1:9/new', 'http://127.0.0.1:9/new');
SELECT events FROM octo_webhooks.fanout(100);
SELECT is((SELECT count(*) FROM octo_webhooks.deliveries WHERE event_id = :e9), 0::bigint,
          'routing: a webhook deactivated before, or created after the event, is not reached');

-- a batch of many events of few objects: each object's state is read once,
-- not once per pair of the batch's events (a kept plan once joined them in a
-- nested loop: 500,000 reads, 1.2 s, for these 1,000 events)
SELECT count(octo_webhooks.emit('order_update', jsonb_build_object('id', 'o-many-' || (g % 500), 'n', g), 'nobody'))
  FROM generate_series(1, 1000) g;
CREATE TEMP TABLE st0 AS SELECT pg_stat_get_xact_tuples_returned('octo_webhooks.object_states_pkey'::regclass) AS n;
SELECT is((SELECT row(events, deliveries)::text FROM octo_webhooks.fanout(1000)), '(1000,0)', 'a batch of 1,000 events routed');
SELECT cmp_ok(pg_stat_get_xact_tuples_returned('octo_webhooks.object_states_pkey'::regclass) - (SELECT n FROM st0), '<=', 500::bigint,
              'each object''s state read once per batch (500 objects)');
SELECT is((SELECT count(*) FROM octo_webhooks.events WHERE object_key LIKE 'o-many-%' AND (previous->>'n')::int = (object->>'n')::int - 500),
          500::bigint, 'previous: within the batch, the same object''s event before');

SELECT * FROM finish();
ROLLBACK;
