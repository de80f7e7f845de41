-- Storefront security: users' password hashes, login sessions and per-user API tokens.
--
-- No secret is stored in the clear. `password_hash` is an argon2id hash in PHC string format
-- (NULL: the user cannot log in with a password). Session and API tokens are 32 random bytes
-- handed to the client once; only the lowercase hex SHA-256 of a token is kept, as the key it is
-- looked up by, so a copy of this file lets no one act as a user. The CSRF token of a session is
-- not a credential on its own (it only counts next to the session cookie), so it is kept as is.

ALTER TABLE users ADD COLUMN password_hash TEXT;

-- The demo users' passwords are `<id>-password` (alice-password, bob-password, carol-password,
-- admin-password): argon2id v19, m = 19456 KiB, t = 2, p = 1, a random 16-byte salt each.
UPDATE users SET password_hash = CASE id
    WHEN 'alice' THEN '$argon2id$v=19$m=19456,t=2,p=1$YXmZr00bOD6Mj5kGjNUtBg$2hZZMLl2Zjj78awjgeiGO7zu+mYh943BJzKT7mx4bD0'
    WHEN 'bob'   THEN '$argon2id$v=19$m=19456,t=2,p=1$UR31bqvj0/CK3C7NOgA1FA$h+5YLvdayifW/2Pa7cyr912kHzggmpNTw7TUOi0zf04'
    WHEN 'carol' THEN '$argon2id$v=19$m=19456,t=2,p=1$K5IdalFcx64ahKcIEKW6rg$r4KiggPCwaoxjCGeStKo6pnZN8wwinHtOTzEawFH/84'
    WHEN 'admin' THEN '$argon2id$v=19$m=19456,t=2,p=1$Vwxm85sOHhM6FJ1pYzO+9w$BqLszbERQuAE/xi3cxB/0QYLPvwsrKSlpbzvchM8ENw'
END
WHERE id IN ('alice', 'bob', 'carol', 'admin');

-- One row per logged-in browser. A session is valid while now < expires_at_ms; expired rows are
-- ignored on lookup and removed by a periodic purge.
CREATE TABLE sessions (
    token_hash    TEXT    PRIMARY KEY CHECK (length(token_hash) = 64),
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token    TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL CHECK (expires_at_ms > created_at_ms)
) STRICT;
CREATE INDEX sessions_by_expiry ON sessions (expires_at_ms);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Per-user API tokens for scripts, each with a name unique for its user (how the user tells
-- them apart and revokes one, since the token itself is shown only once).
CREATE TABLE api_tokens (
    token_hash    TEXT    PRIMARY KEY CHECK (length(token_hash) = 64),
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at_ms INTEGER NOT NULL,
    UNIQUE (user_id, name)
) STRICT;
