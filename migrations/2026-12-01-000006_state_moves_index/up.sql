-- The tenants-per-state chart looks up, for each tenant moved inside its window, the last state-changing
-- event before the window: one probe of this index per tenant.
CREATE INDEX audit_events_state_moves_idx ON audit_events (context_id, created_at DESC, id DESC)
    WHERE action IN ('token_captured', 'state_changed', 'operator_retry', 'tenant_purged',
                     'superoffice_suspend', 'superoffice_resume', 'superoffice_delete',
                     'superoffice_backup_restored', 'superoffice_move', 'superoffice_upgrade',
                     'token_replaced');
