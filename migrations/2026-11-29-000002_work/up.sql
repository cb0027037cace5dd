-- Scheduling of each tenant's work: one lease per tenant, so no two instances work on a tenant at once.
ALTER TABLE tenants
    ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at TIMESTAMPTZ,
    ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN lease_owner TEXT,
    ADD COLUMN lease_expires_at TIMESTAMPTZ,
    ADD COLUMN last_success_at TIMESTAMPTZ,
    ADD COLUMN last_error TEXT,
    ADD COLUMN last_error_at TIMESTAMPTZ;

CREATE INDEX tenants_due_idx ON tenants (next_attempt_at) WHERE next_attempt_at IS NOT NULL;

-- The cached system user ticket of a tenant, encrypted like the token.
CREATE TABLE tickets (
    context_id TEXT PRIMARY KEY REFERENCES tenants (context_id) ON DELETE CASCADE,
    ciphertext BYTEA NOT NULL,
    key_version SMALLINT NOT NULL,
    -- The tenants.token_generation the ticket was obtained with; a newer token makes it stale.
    token_generation INTEGER NOT NULL,
    issued_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL,
    -- Set when the tenant API refused the ticket; the next use exchanges anew.
    rejected_at TIMESTAMPTZ
);

-- Work the web asks the service to do with a tenant's system user ("create company with system user").
CREATE TABLE work_requests (
    id BIGSERIAL PRIMARY KEY,
    context_id TEXT NOT NULL REFERENCES tenants (context_id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('create_company')),
    payload JSONB NOT NULL,
    requested_by TEXT NOT NULL,
    -- Written into the created entity, so a retry after a timeout finds it instead of creating it twice.
    idempotency_key UUID NOT NULL UNIQUE,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    result JSONB,
    error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ
);

CREATE INDEX work_requests_open_idx ON work_requests (context_id, id) WHERE state IN ('queued', 'running');
CREATE INDEX work_requests_recent_idx ON work_requests (context_id, created_at DESC);

CREATE TRIGGER work_requests_updated_at BEFORE UPDATE ON work_requests
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
