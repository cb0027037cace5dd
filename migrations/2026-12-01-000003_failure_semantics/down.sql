DROP INDEX tenants_needs_attention_idx;
ALTER TABLE tenants
    DROP COLUMN so_not_running_since,
    DROP COLUMN so_state_checked_at,
    DROP COLUMN so_state,
    DROP COLUMN attention_at,
    DROP COLUMN attention_reason,
    DROP COLUMN needs_attention;
