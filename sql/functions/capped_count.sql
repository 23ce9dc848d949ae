-- octo_webhooks.capped_count(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- A count that is exact up to p_cap rows and the planner's estimate above.
CREATE OR REPLACE FUNCTION octo_webhooks.capped_count(p_query text, p_cap int, OUT n bigint, OUT estimated boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_plan json;
BEGIN
    EXECUTE format('SELECT count(*) FROM (%s LIMIT %s) x', p_query, p_cap) INTO n;
    estimated := n >= p_cap;
    IF estimated THEN
        EXECUTE 'EXPLAIN (FORMAT JSON) ' || p_query INTO v_plan;
        n := greatest(p_cap, (v_plan->0->'Plan'->>'Plan Rows')::bigint);
    END IF;
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.capped_count(text, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.capped_count(text, int) TO octo_webhooks_runtime;  -- stats()
