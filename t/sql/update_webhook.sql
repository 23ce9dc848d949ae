-- update_webhook() on its own (pgTAP), run by t/sql_functions.t in a database the
-- module migrated, inside one transaction that is rolled back: PATCH's one
-- statement. Only the connection's row of that dialect; NULL fields keep theirs;
-- the masked URL keeps the stored credentials; a stored URL whose host may be an
-- IP literal comes back unchanged (updated false) until the module vouches for it;
-- order_update gains octo/cart; reactivating clears the deactivation.
\ir lib/begin.psql
SELECT plan(16);

INSERT INTO octo_webhooks.connections (id) VALUES ('c'), ('d');
CREATE TEMP TABLE ids AS
SELECT octo_webhooks.create_webhook('c', 'booking_update', 'booking_update', 'https://u:pw@hooks.example.com/a',
           'https://u:****@hooks.example.com/a', true, true, true, '{"X-A": "1"}', '{octo/pricing}', 'whsec_x',
           'octo', NULL, 0) AS named,
       octo_webhooks.create_webhook('c', 'product_update', 'product_update', 'http://93.184.216.34/b',
           'http://93.184.216.34/b', true, true, true, '{}', '{}', NULL, 'octo', NULL, 0) AS literal,
       octo_webhooks.create_webhook('c', 'notifications', 'booking_update', 'https://s.example.com/',
           'https://s.example.com/', true, true, true, '{}', '{}', NULL, 'notifications',
           '{booking_update}', 0) AS sub;

CREATE FUNCTION pg_temp.patch(p_id uuid, p_connection text, p_dialect text, p_event text, p_url text,
                              p_active boolean, p_caps text[], p_checked text DEFAULT NULL,
                              p_types text[] DEFAULT NULL)
RETURNS SETOF record LANGUAGE sql AS $$
    SELECT updated, url, active, capabilities, event, event_types, has_secret, headers
      FROM octo_webhooks.update_webhook(p_id, p_connection, p_dialect, p_event,
               coalesce(p_types[1], regexp_replace(p_event, '\.updated$', '_update')), p_url, p_url,
               p_active, NULL, NULL, NULL, p_caps, p_types, p_checked)
$$;

SELECT is((SELECT count(*)::int FROM pg_temp.patch((SELECT named FROM ids), 'd', 'octo', NULL, NULL, false, '{}')
              AS (u boolean, url text, a boolean, c text[], e text, t text[], s boolean, h text)), 0,
          'another connection''s webhook: no row');
SELECT is((SELECT active FROM octo_webhooks.webhooks WHERE id = (SELECT named FROM ids)), true, '... and unchanged');
SELECT is((SELECT count(*)::int FROM pg_temp.patch((SELECT named FROM ids), 'c', 'notifications', NULL, NULL, false, '{}')
              AS (u boolean, url text, a boolean, c text[], e text, t text[], s boolean, h text)), 0,
          'a webhook asked for as a subscription: no row');

SELECT is((SELECT row(u, url, a, c, e, s, h)::text FROM pg_temp.patch((SELECT named FROM ids), 'c', 'octo', NULL, NULL,
              false, '{}') AS (u boolean, url text, a boolean, c text[], e text, t text[], s boolean, h text)),
          row(true, 'https://u:pw@hooks.example.com/a', false, '{}'::text[], 'booking_update', true, '{"X-A": "1"}')::text,
          'a named host: applied in one call; the rest kept, capabilities replaced');
SELECT is((SELECT row(u, url)::text FROM pg_temp.patch((SELECT named FROM ids), 'c', 'octo', NULL,
              'https://u:****@hooks.example.com/a', NULL, '{}')
              AS (u boolean, url text, a boolean, c text[], e text, t text[], s boolean, h text)),
          row(true, 'https://u:pw@hooks.example.com/a')::text, 'the masked URL sent back keeps the credentials');
SELECT is((SELECT url_display FROM octo_webhooks.webhooks WHERE id = (SELECT named FROM ids)),
          'https://u:****@hooks.example.com/a', '... and the display');
SELECT is((SELECT row(u, url, c, e, t)::text FROM pg_temp.patch((SELECT named FROM ids), 'c', 'octo', 'order.updated',
              'https://hooks.example.com/new', NULL, '{octo/pricing}')
              AS (u boolean, url text, a boolean, c text[], e text, t text[], s boolean, h text)),
          row(true, 'https://hooks.example.com/new', '{octo/pricing,octo/cart}'::text[], 'order.updated',
              '{order_update}'::text[])::text,
          'a new URL and event; an order webhook gains octo/cart');

UPDATE octo_webhooks.webhooks SET active = false, disabled_reason = 'gone', disabled_at = now(),
       failing_since = now() WHERE id = (SELECT named FROM ids);
SELECT is((SELECT row(u, a)::text FROM pg_temp.patch((SELECT named FROM ids), 'c', 'octo', NULL, NULL, true, '{}')
              AS (u boolean, url text, a boolean, c text[], e text, t text[], s boolean, h text)),
          row(true, true)::text, 'reactivated');
SELECT is((SELECT row(disabled_reason, disabled_at, failing_since)::text FROM octo_webhooks.webhooks
            WHERE id = (SELECT named FROM ids)), row(NULL, NULL, NULL)::text, '... the deactivation cleared');

SELECT is((SELECT row(u, url, a)::text FROM pg_temp.patch((SELECT literal FROM ids), 'c', 'octo', NULL, NULL, false, '{}')
              AS (u boolean, url text, a boolean, c text[], e text, t text[], s boolean, h text)),
          row(false, 'http://93.184.216.34/b', true)::text,
          'a stored IP literal the body leaves alone: handed back, not updated');
SELECT is((SELECT active FROM octo_webhooks.webhooks WHERE id = (SELECT literal FROM ids)), true, '... the row unchanged');
SELECT is((SELECT row(u, a)::text FROM pg_temp.patch((SELECT literal FROM ids), 'c', 'octo', NULL, NULL, false, '{}',
              'http://93.184.216.34/b') AS (u boolean, url text, a boolean, c text[], e text, t text[], s boolean, h text)),
          row(true, false)::text, 'vouched for (checked_url): applied');
UPDATE octo_webhooks.webhooks SET url = 'http://x@[::1]:80/', url_display = 'http://x@[::1]:80/'
 WHERE id = (SELECT literal FROM ids);
SELECT is((SELECT u FROM pg_temp.patch((SELECT literal FROM ids), 'c', 'octo', NULL, NULL, true, '{}', 'http://93.184.216.34/b')
              AS (u boolean, url text, a boolean, c text[], e text, t text[], s boolean, h text)),
          false, 'an IPv6 literal behind a user, vouched for as another URL: handed back');
UPDATE octo_webhooks.webhooks SET url = 'http://0x7f.1/', url_display = 'http://0x7f.1/' WHERE id = (SELECT literal FROM ids);
SELECT is((SELECT u FROM pg_temp.patch((SELECT literal FROM ids), 'c', 'octo', NULL, NULL, true, '{}')
              AS (u boolean, url text, a boolean, c text[], e text, t text[], s boolean, h text)),
          false, 'inet_aton''s hex form: handed back');

SELECT is((SELECT row(u, e, t, c)::text FROM pg_temp.patch((SELECT sub FROM ids), 'c', 'notifications', NULL, NULL, NULL,
              NULL, NULL, '{product_update,booking_update}')
              AS (u boolean, url text, a boolean, c text[], e text, t text[], s boolean, h text)),
          row(true, 'notifications', '{product_update,booking_update}'::text[], '{}'::text[])::text,
          'a subscription''s types replaced, its event and capabilities kept');
SELECT is((SELECT event_type FROM octo_webhooks.webhooks WHERE id = (SELECT sub FROM ids)), 'product_update',
          '... its event_type the first type');

SELECT * FROM finish();
ROLLBACK;
