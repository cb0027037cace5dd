DROP TABLE audit_events;
DROP FUNCTION audit_events_append_only();
DROP TABLE tenants;
DROP FUNCTION set_updated_at();
