-- When SuperID issued the stored system user token (the capturing id_token's iat). Two administrators signing
-- in at once are serialised by the row lock; this keeps the token issued last, whichever commits last.
ALTER TABLE tenants ADD COLUMN token_issued_at TIMESTAMPTZ;
