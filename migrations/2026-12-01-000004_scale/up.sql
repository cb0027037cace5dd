-- The claim (db::queue::claim_due) takes the first due tenants in next_attempt_at order. With only
-- tenants_due_idx and tenants_state_idx, Postgres bitmap-ANDed both and sorted every due tenant for
-- each batch of a few: a steady pass over N due tenants cost N/8 claims of O(N) each. This index holds
-- exactly the claimable rows in claim order, so a claim reads the first few entries and stops.
CREATE INDEX tenants_claimable_idx ON tenants (next_attempt_at)
    WHERE state IN ('pending', 'active') AND system_token_ciphertext IS NOT NULL;
