-- Audit actions are a fixed set, like the tenant and work states (db::models::AuditAction lists the
-- same words): an event the application does not know cannot be written.
ALTER TABLE audit_events ADD CONSTRAINT audit_events_action_check CHECK (action IN (
    'token_captured', 'token_replaced', 'token_confirmed', 'token_superseded', 'ticket_obtained',
    'state_changed', 'operator_retry', 'tenant_purged', 'work_queued', 'work_failed', 'exchange_failed',
    'company_created',
    'encryption_key_rotated', 'sessions_ended',
    'superoffice_upgrade', 'superoffice_backup_restored', 'superoffice_suspend', 'superoffice_resume',
    'superoffice_delete', 'superoffice_move', 'superoffice_state_change_unsupported',
    'superoffice_state_change_unknown_tenant'
));

-- Which tenant states allow work, named once in SQL: the claim (db::queue::claim_due) asks this
-- function rather than spelling the states, and the claimable index has the same predicate, so even a
-- generic plan of the prepared claim proves the index applies. db::models::TenantState::WORKING lists
-- the same states (a test compares them).
CREATE FUNCTION tenant_state_allows_work(state TEXT) RETURNS BOOLEAN
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT state IN ('pending', 'active') $$;
DROP INDEX tenants_claimable_idx;
CREATE INDEX tenants_claimable_idx ON tenants (next_attempt_at)
    WHERE tenant_state_allows_work(state) AND system_token_ciphertext IS NOT NULL;
