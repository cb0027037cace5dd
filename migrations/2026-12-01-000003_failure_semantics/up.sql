-- What an operator must look at without the tenant being stopped: an answer the service does not
-- recognise, an unknown tenant, a missing serial, a tenant that has not run for a long time.
ALTER TABLE tenants
    ADD COLUMN needs_attention BOOLEAN NOT NULL DEFAULT false,
    -- Why (the raw answer with secrets removed), and since when.
    ADD COLUMN attention_reason TEXT,
    ADD COLUMN attention_at TIMESTAMPTZ,
    -- The state API's last answer (`State`), so a suspension shows without a notification.
    ADD COLUMN so_state TEXT,
    ADD COLUMN so_state_checked_at TIMESTAMPTZ,
    -- Since when the state API has reported the tenant as not running (NULL while it runs).
    ADD COLUMN so_not_running_since TIMESTAMPTZ;

CREATE INDEX tenants_needs_attention_idx ON tenants (context_id) WHERE needs_attention;
