-- partner-web's sessions, shared by every instance. The cookie carries only a random id; the row holds the
-- session's state (the signed-in user, their SuperOffice tokens, the CSRF token, a sign-in in progress)
-- encrypted like every other secret.
CREATE TABLE web_sessions (
    -- SHA-256 of the id in the cookie: a copy of this table gives nobody a cookie that works.
    id_hash BYTEA PRIMARY KEY CHECK (octet_length(id_hash) = 32),
    -- The signed-in user's tenant and SuperID user name, so an operator can end a tenant's sessions.
    context_id TEXT,
    subject TEXT,
    -- AES-256-GCM of the state (JSON), with the id hash as associated data.
    state_ciphertext BYTEA NOT NULL,
    key_version SMALLINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX web_sessions_context_idx ON web_sessions (context_id) WHERE context_id IS NOT NULL;
CREATE INDEX web_sessions_last_seen_idx ON web_sessions (last_seen_at);
CREATE INDEX web_sessions_created_idx ON web_sessions (created_at);
