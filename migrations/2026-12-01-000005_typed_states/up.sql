-- Audit actions are a fixed set, like the tenant and work states (db::models::AuditAction lists the
-- same words): an event the application does not know cannot be written.
ALTER TABLE audit_events ADD CONSTRAINT audit_events_action_check CHECK (action IN (
    'token_captured', 'token_replaced', 'token_confirmed', 'token_superseded', 'ticket_obtained',
    'state_changed', 'operator_retry', 'tenant_purged', 'work_queued', 'work_failed', 'company_created',
    'encryption_key_rotated', 'sessions_ended',
    'superoffice_upgrade', 'superoffice_backup_restored', 'superoffice_suspend', 'superoffice_resume',
    'superoffice_delete', 'superoffice_move', 'superoffice_state_change_unsupported',
    'superoffice_state_change_unknown_tenant'
));
