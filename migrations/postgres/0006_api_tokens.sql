-- API tokens (`postured token create`, `POST /api/v1/tokens`): a token's text is
-- `pst_<id>_<secret>`; only the SHA-256 digest of the secret is kept, never the secret. Keep in
-- step with migrations/sqlite/0006_api_tokens.sql. Instants are epoch milliseconds (UTC).
CREATE TABLE api_tokens (
    id            TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL
        CHECK (role IN ('reader', 'contributor', 'assessor', 'administrator')),
    -- JSON arrays of tenant and group ids the token is limited to; NULL: every one.
    tenant_scope  TEXT,
    group_scope   TEXT,
    -- Lower-case hex SHA-256 of the secret part of the token.
    secret_sha256 TEXT    NOT NULL,
    created_at    BIGINT NOT NULL,
    -- The principal that created it (`token:<id>`, `oidc:<sub>`, `api_token`, `cli:<user>`).
    created_by    TEXT    NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    -- Written at most once a minute per token.
    last_used_at  BIGINT
);
