-- JWT client assertions (private_key_jwt, single-use trusted-issuer tokens)
-- that authenticated a request, by the hash of their issuer and jti, until
-- they expire: each is accepted once across replicas.
CREATE TABLE used_assertions (
    id         text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX used_assertions_expires_at ON used_assertions (expires_at);
