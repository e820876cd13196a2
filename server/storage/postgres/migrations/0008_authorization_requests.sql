-- Authorization requests as OpenID Connect and RFC 9126 shape them:
-- pushed authorization requests (and POSTs to /authorize held for the
-- browser's GET), single use, by the hash of their request_uri's value;
-- the response mode of a request (form_post); the claims parameter of a
-- request, which its code carries to the tokens.
CREATE TABLE pushed_requests (
    hash       text PRIMARY KEY,
    client_id  text NOT NULL,
    params     text NOT NULL,
    pushed     boolean NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX pushed_requests_expires_at ON pushed_requests (expires_at);
ALTER TABLE auth_requests
    ADD COLUMN response_mode text NOT NULL DEFAULT '',
    ADD COLUMN claims text NOT NULL DEFAULT '';
ALTER TABLE auth_codes
    ADD COLUMN claims text NOT NULL DEFAULT '';
