-- octo_webhooks.iso(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- Times as the API shows them.
CREATE OR REPLACE FUNCTION octo_webhooks.iso(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
REVOKE ALL ON FUNCTION octo_webhooks.iso(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.iso(timestamptz) TO octo_webhooks_runtime;  -- the deliveries routes and claim()
