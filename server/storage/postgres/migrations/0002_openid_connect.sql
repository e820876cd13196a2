-- OpenID Connect: the nonce, login hint, prompt=consent and session id of
-- an authorization request, carried to its code and, for the session id,
-- to the refresh tokens of the family it starts. Existing rows get empty
-- values: requests and codes from before were not OpenID Connect requests.
ALTER TABLE auth_requests
    ADD COLUMN nonce         text NOT NULL DEFAULT '',
    ADD COLUMN login_hint    text NOT NULL DEFAULT '',
    ADD COLUMN force_consent boolean NOT NULL DEFAULT false,
    ADD COLUMN session_id    text NOT NULL DEFAULT '';
ALTER TABLE auth_codes
    ADD COLUMN nonce      text NOT NULL DEFAULT '',
    ADD COLUMN session_id text NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens
    ADD COLUMN session_id text NOT NULL DEFAULT '';
