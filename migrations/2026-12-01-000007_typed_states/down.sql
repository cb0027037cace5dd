DROP INDEX tenants_claimable_idx;
CREATE INDEX tenants_claimable_idx ON tenants (next_attempt_at)
    WHERE state IN ('pending', 'active') AND system_token_ciphertext IS NOT NULL;
DROP FUNCTION tenant_state_allows_work(TEXT);
ALTER TABLE audit_events DROP CONSTRAINT audit_events_action_check;
