-- Tenants that installed the application, with their system user token encrypted at rest.
CREATE TABLE tenants (
    id BIGSERIAL PRIMARY KEY,
    context_id TEXT NOT NULL UNIQUE CHECK (context_id ~ '^Cust[0-9]{1,12}$'),
    environment TEXT NOT NULL CHECK (environment IN ('sod', 'qaonline', 'online', 'custom')),
    company_name TEXT,
    serial TEXT,
    webapi_url TEXT,
    netserver_url TEXT,
    -- pending: token captured, no ticket yet; active: a ticket was obtained; the rest stop work until an
    -- administrator signs in again (revoked, expired, denied, needs_reapproval), SuperOffice resumes the tenant
    -- (suspended, deleted) or an operator acts (disabled).
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN (
        'pending', 'active', 'suspended', 'revoked', 'expired', 'denied', 'needs_reapproval', 'deleted', 'disabled'
    )),
    state_reason TEXT,
    -- AES-256-GCM: nonce || ciphertext || tag, the context id as associated data.
    system_token_ciphertext BYTEA,
    system_token_key_version SMALLINT,
    token_captured_by TEXT,
    token_captured_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((system_token_ciphertext IS NULL) = (system_token_key_version IS NULL))
);

CREATE INDEX tenants_state_idx ON tenants (state);

-- What happened to which tenant, by whom, when. Rows are never changed or removed.
CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    -- Not a foreign key: the trail outlives a purged tenant.
    context_id TEXT,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX audit_events_context_idx ON audit_events (context_id, created_at DESC);

CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

CREATE FUNCTION set_updated_at() RETURNS trigger AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tenants_updated_at BEFORE UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
