-- Upstream identity providers: what each said of a person at their last
-- login, by subject, so tokens can carry groups and email without calling
-- the upstream outside login.
CREATE TABLE identities (
    subject    text PRIMARY KEY,
    data       bytea NOT NULL,
    updated_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX identities_expires_at ON identities (expires_at);
