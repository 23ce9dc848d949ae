-- octo_webhooks.notice_done(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- A notice's attempt: sent, failed for good, or due again after p_retry_in.
CREATE OR REPLACE FUNCTION octo_webhooks.notice_done(p_id bigint, p_claim uuid, p_status text, p_retry_in interval,
                                          p_error text)
RETURNS void LANGUAGE sql AS $$
    UPDATE octo_webhooks.notices
       SET status = p_status, attempts = attempts + 1, claim_id = NULL, last_error = p_error,
           next_attempt_at = CASE WHEN p_status = 'pending' THEN clock_timestamp() + p_retry_in
                                  ELSE next_attempt_at END,
           completed_at = CASE WHEN p_status = 'pending' THEN NULL ELSE clock_timestamp() END
     WHERE id = p_id AND claim_id = p_claim;
$$;
REVOKE ALL ON FUNCTION octo_webhooks.notice_done(bigint, uuid, text, interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.notice_done(bigint, uuid, text, interval, text) TO octo_webhooks_runtime;  -- the dispatcher
