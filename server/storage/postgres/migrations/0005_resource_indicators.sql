-- Resource indicators (RFC 8707): the audiences an authorization request
-- named, carried to its code and to the refresh tokens of the family it
-- starts, so that a refresh can narrow the audience but never widen it.
-- Existing rows get none: they were granted without a restriction.
ALTER TABLE auth_requests
    ADD COLUMN resources text[] NOT NULL DEFAULT '{}';
ALTER TABLE auth_codes
    ADD COLUMN resources text[] NOT NULL DEFAULT '{}';
ALTER TABLE refresh_tokens
    ADD COLUMN resources text[] NOT NULL DEFAULT '{}';
