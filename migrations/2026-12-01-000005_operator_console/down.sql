DROP TABLE service_instances;
DROP INDEX audit_events_action_time_idx;
DROP INDEX tenants_lease_owner_idx;
DROP INDEX tenants_company_search_idx;
DROP INDEX tenants_context_search_idx;
DROP INDEX tenants_state_context_idx;
