-- octo_webhooks.parked_behind(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- Which of p_hooks have a pending delivery of object p_key: emit() parks its
-- new delivery to those behind it (order per object).
--
-- Planned on every call (plan_cache_mode), once per emit() and not per
-- webhook: a plan kept from when deliveries was nearly empty (a session
-- opened on a fresh install or a pruned queue) may read the probe through
-- deliveries_webhook_due, webhook_id only, and then walk each webhook's whole
-- backlog on every emit once the queue has grown; planned against the table
-- as it is, the probe goes through deliveries_object (webhook, object).
CREATE OR REPLACE FUNCTION octo_webhooks.parked_behind(p_hooks uuid[], p_key text) RETURNS uuid[]
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    RETURN ARRAY(SELECT d.webhook_id FROM octo_webhooks.deliveries d
                  WHERE d.webhook_id = ANY (p_hooks) AND d.object_key = p_key AND d.status = 'pending');
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.parked_behind(uuid[], text) FROM PUBLIC;
