-- Sessions as first-class objects: findable by their sid (OpenID Connect
-- Back-Channel Logout 1.0) and by their subject, with the clients that got
-- tokens in each, and the logout tokens owed when one ends (an outbox that
-- survives a replica's restart). Existing sessions get the sid the server
-- derived for them: base64url(SHA-256("sid:" || hash)), unpadded.
ALTER TABLE sessions ADD COLUMN sid text;
UPDATE sessions SET sid = rtrim(translate(encode(sha256(convert_to('sid:' || hash, 'UTF8')), 'base64'), '+/', '-_'), '=');
ALTER TABLE sessions ALTER COLUMN sid SET NOT NULL;
CREATE UNIQUE INDEX sessions_sid ON sessions (sid);
CREATE INDEX sessions_subject ON sessions (subject);

-- No foreign key to sessions: a code redeemed while its session ends must
-- not fail for it. A row whose session is gone is never read, and goes
-- with its expiry (the session's).
CREATE TABLE session_clients (
    sid        text NOT NULL,
    client_id  text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (sid, client_id)
);
CREATE INDEX session_clients_expires_at ON session_clients (expires_at);

-- Ending a session revokes the families that began in it; an
-- administrator's logout revokes all of a person's.
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id) WHERE session_id <> '';
CREATE INDEX refresh_tokens_subject ON refresh_tokens (subject);

CREATE TABLE logout_deliveries (
    id              text PRIMARY KEY,
    client_id       text NOT NULL,
    subject         text NOT NULL,
    sid             text NOT NULL,
    created_at      timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    claimed_until   timestamptz,
    last_error      text NOT NULL DEFAULT '',
    expires_at      timestamptz NOT NULL
);
CREATE INDEX logout_deliveries_next_attempt_at ON logout_deliveries (next_attempt_at);
CREATE INDEX logout_deliveries_expires_at ON logout_deliveries (expires_at);

-- One re-check of an upstream person at a time, across replicas.
ALTER TABLE identities ADD COLUMN recheck_claimed_until timestamptz;
