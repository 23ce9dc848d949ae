-- octo_webhooks.claim_outlook(): defined here only; the module re-creates it
-- when this file changes (see README, "Schema").
-- What the last claim() of this transaction saw behind its rows: how many
-- webhooks a cap held back with due work (look again soon), and the seconds
-- until the next delivery falls due (NULL: none waiting but parked ones,
-- which complete() wakes), and whether the dispatcher may wait for a NOTIFY
-- (false: not yet, an emit() may not have seen it listed, claim again soon;
-- NULL: events wait to be routed, claim again at once).
CREATE OR REPLACE FUNCTION octo_webhooks.claim_outlook(OUT held int, OUT next_in float8, OUT asleep boolean)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('octo_webhooks.claim_held', true), '')::int, 0),
           nullif(current_setting('octo_webhooks.claim_next_in', true), '')::float8,
           CASE current_setting('octo_webhooks.claim_asleep', true) WHEN 'more' THEN NULL
                WHEN 'false' THEN false ELSE true END
$$;
REVOKE ALL ON FUNCTION octo_webhooks.claim_outlook() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.claim_outlook() TO octo_webhooks_runtime;  -- the dispatcher
