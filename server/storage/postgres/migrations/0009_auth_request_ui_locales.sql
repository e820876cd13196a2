-- The ui_locales of an authorization request (OpenID Connect Core
-- §3.1.2.1): the languages its sign-in pages speak.
ALTER TABLE auth_requests
    ADD COLUMN ui_locales text NOT NULL DEFAULT '';
