-- octo_webhooks.revoke_token(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- Revokes a token by its plaintext (used by the operator CLI).
CREATE OR REPLACE FUNCTION octo_webhooks.revoke_token(p_token text)
RETURNS boolean LANGUAGE sql AS $$
    UPDATE octo_webhooks.tokens SET revoked_at = now()
     WHERE token_hash = sha256(convert_to(p_token, 'UTF8')) AND revoked_at IS NULL
    RETURNING true;
$$;
REVOKE ALL ON FUNCTION octo_webhooks.revoke_token(text) FROM PUBLIC;
