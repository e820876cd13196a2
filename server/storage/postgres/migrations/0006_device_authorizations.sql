-- The device authorization grant (RFC 8628): one row per device_code,
-- under its storage.HashToken, findable by the HashToken of its user code.
-- A row is kept storage.DeviceExpiredRetention past expires_at, so a late
-- poll is told expired_token; the unique user_code of such a row is freed
-- by the next authorization that draws the same code.
CREATE TABLE device_authorizations (
    hash                           text PRIMARY KEY,
    user_code                      text NOT NULL UNIQUE,
    client_id                      text NOT NULL,
    scopes                         text[] NOT NULL,
    resources                      text[] NOT NULL,
    expires_at                     timestamptz NOT NULL,
    interval_us                    bigint NOT NULL,
    last_polled_at                 timestamptz,
    status                         text NOT NULL,
    subject                        text NOT NULL DEFAULT '',
    auth_time                      timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    session_id                     text NOT NULL DEFAULT '',
    redeemed_at                    timestamptz,
    issued_access_token_id         text NOT NULL DEFAULT '',
    issued_access_token_expires_at timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    issued_refresh_family_id       text NOT NULL DEFAULT ''
);
CREATE INDEX device_authorizations_expires_at ON device_authorizations (expires_at);

-- The person's approval of a device authorization runs through the login
-- and consent pages as an authorization request without a redirect URI.
ALTER TABLE auth_requests ADD COLUMN device text NOT NULL DEFAULT '';
