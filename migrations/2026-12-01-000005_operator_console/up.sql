-- The operator console (/operator): its tenant table pages through context ids under each filter, and its
-- charts aggregate audit events of a few actions over a time window.

-- State filter, in page order.
CREATE INDEX tenants_state_context_idx ON tenants (state, context_id);
-- Search by the start of a context id or company name, without regard to case.
CREATE INDEX tenants_context_search_idx ON tenants (lower(context_id) text_pattern_ops);
CREATE INDEX tenants_company_search_idx ON tenants (lower(company_name) text_pattern_ops);
-- The tenants each service instance holds leases on.
CREATE INDEX tenants_lease_owner_idx ON tenants (lease_owner) WHERE lease_owner IS NOT NULL;
-- Chart queries: events of one action in a time window.
CREATE INDEX audit_events_action_time_idx ON audit_events (action, created_at);

-- Each running partner-service instance writes its row every few seconds; the console shows the rows, and
-- an instance not seen for a while as stale. Rows of stopped instances are removed on a clean shutdown and
-- age out otherwise.
CREATE TABLE service_instances (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    circuit_state TEXT
);
CREATE INDEX service_instances_last_seen_idx ON service_instances (last_seen_at);
