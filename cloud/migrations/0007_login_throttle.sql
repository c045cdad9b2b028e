-- The login throttle (src/web/throttle.rs) counts failures per account and source
-- (a client address, or a browser that logged in to that account before), per
-- account and per address; an owner clears an account's failures to unlock it.
-- The old per-scope counts are dropped: they expire within 15 minutes anyway.
DROP TABLE login_failures;
CREATE TABLE login_failures (
    email TEXT NOT NULL,
    -- 'a:<client address>' or 'd:<known device>'.
    source TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_email_source_at ON login_failures (email, source, at);
CREATE INDEX login_failures_source_at ON login_failures (source, at);
-- Browsers that logged in to an account (the `kg_device` cookie, as SHA-256): their
-- attempts are throttled on their own, so failures from elsewhere cannot keep the
-- account's owner out.
CREATE TABLE login_devices (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX login_devices_user ON login_devices (user_id);
-- Sign-ups per client address, for the sign-up rate limit.
CREATE TABLE signup_attempts (
    source TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX signup_attempts_source_at ON signup_attempts (source, at);
