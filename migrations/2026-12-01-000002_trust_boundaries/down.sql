ALTER TABLE tenants DROP COLUMN token_issued_at;
