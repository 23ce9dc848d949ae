-- 003: signing secrets, ordering per object, per-webhook caps, endpoint
-- signals (410), auto-disable. claim() and complete() become functions: each
-- is still one round trip, but runs several statements with fresh snapshots.

ALTER TABLE octo_webhooks.webhooks
    ADD COLUMN secret                 text,          -- whsec_<base64>: signs deliveries
    ADD COLUMN secret_previous        text,          -- still signs during a rotation
    ADD COLUMN secret_previous_until  timestamptz,
    ADD COLUMN failing_since          timestamptz,   -- first failed attempt since the last success
    ADD COLUMN disabled_reason        text,          -- why the module deactivated it
    ADD COLUMN disabled_at            timestamptz;

-- Ordering per object: a delivery whose (webhook, object) already has a
-- pending delivery waits parked (next_attempt_at = 'infinity') and is
-- unparked when the one before it ends. The due index then holds only heads.
CREATE INDEX deliveries_object ON octo_webhooks.deliveries (webhook_id, object_key, event_id)
    WHERE status = 'pending';
-- claim() walks the webhooks with pending work (a loose index scan) and takes
-- each one's due heads up to its caps.
CREATE INDEX deliveries_webhook_due ON octo_webhooks.deliveries (webhook_id, next_attempt_at)
    WHERE status = 'pending';

-- Per-webhook rate cap: claims in the current one-second window.
CREATE TABLE octo_webhooks.webhook_rate (
    webhook_id    uuid PRIMARY KEY,
    window_start  timestamptz NOT NULL,
    used          integer NOT NULL
);
