-- SuperOffice's tenant state-change notifications that partner-web has processed, one row each, so a
-- notification delivered twice takes effect once. Not a foreign key: a notification may name a tenant we do
-- not know, and the record outlives a purged tenant, as the audit trail does.
CREATE TABLE state_change_notifications (
    id BIGSERIAL PRIMARY KEY,
    -- SHA-256 (hex) of the context id, the change type and the notification's token.
    idempotency_key TEXT NOT NULL UNIQUE,
    context_id TEXT NOT NULL,
    -- Upgrade, BackupRestored, Suspend, Resume, Delete, Move, or the raw value of a type this build does not know.
    change_type TEXT NOT NULL,
    -- The token's iat: when SuperOffice sent the notification.
    token_issued_at TIMESTAMPTZ,
    version_name TEXT,
    file_version TEXT,
    public_endpoint TEXT,
    -- What partner-web did: e.g. suspended, kept_revoked, resumed, urls_cleared, recorded, unknown_tenant.
    outcome TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX state_change_notifications_context_idx ON state_change_notifications (context_id, received_at DESC);
