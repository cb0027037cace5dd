DROP INDEX tenants_claimable_idx;
