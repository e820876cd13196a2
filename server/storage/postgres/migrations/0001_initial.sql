-- Gatehouse token-server state. Bearer secrets (codes, refresh tokens,
-- session cookies) are stored only as storage.HashToken values. Every table
-- has an index on expires_at for the garbage collector.

CREATE TABLE auth_requests (
    id                    text PRIMARY KEY,
    client_id             text NOT NULL,
    redirect_uri          text NOT NULL,
    scopes                text[] NOT NULL,
    state                 text NOT NULL,
    code_challenge        text NOT NULL,
    code_challenge_method text NOT NULL,
    subject               text NOT NULL,
    auth_time             timestamptz NOT NULL,
    expires_at            timestamptz NOT NULL
);
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);

CREATE TABLE auth_codes (
    hash                           text PRIMARY KEY,
    client_id                      text NOT NULL,
    redirect_uri                   text NOT NULL,
    scopes                         text[] NOT NULL,
    subject                        text NOT NULL,
    auth_time                      timestamptz NOT NULL,
    code_challenge                 text NOT NULL,
    code_challenge_method          text NOT NULL,
    expires_at                     timestamptz NOT NULL,
    redeemed_at                    timestamptz,
    issued_access_token_id         text NOT NULL DEFAULT '',
    issued_access_token_expires_at timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    issued_refresh_family_id       text NOT NULL DEFAULT ''
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

-- A family is revoked as a whole (RFC 9700 §4.14.2); a row with no tokens
-- is the tombstone of a family revoked before its first token was stored.
-- expires_at is the latest expiry of its tokens (or of the tombstone).
CREATE TABLE refresh_families (
    id         text PRIMARY KEY,
    revoked_at timestamptz,
    expires_at timestamptz NOT NULL
);
CREATE INDEX refresh_families_expires_at ON refresh_families (expires_at);

CREATE TABLE refresh_tokens (
    hash       text PRIMARY KEY,
    family_id  text NOT NULL REFERENCES refresh_families (id),
    client_id  text NOT NULL,
    subject    text NOT NULL,
    scopes     text[] NOT NULL,
    auth_time  timestamptz NOT NULL,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    rotated_at timestamptz
);
CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE revoked_access_tokens (
    jti        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_access_tokens_expires_at ON revoked_access_tokens (expires_at);

CREATE TABLE consents (
    subject    text NOT NULL,
    client_id  text NOT NULL,
    scopes     text[] NOT NULL,
    granted_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (subject, client_id)
);
CREATE INDEX consents_expires_at ON consents (expires_at);

CREATE TABLE sessions (
    hash       text PRIMARY KEY,
    subject    text NOT NULL,
    auth_time  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
