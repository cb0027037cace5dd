ALTER TABLE audit_events DROP CONSTRAINT audit_events_action_check;
