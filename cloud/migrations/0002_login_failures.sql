-- Failed logins, shared by every replica: the login rate limit counts them per email
-- and per client address over a sliding window.
CREATE TABLE login_failures (
    scope TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_scope_at ON login_failures (scope, at);
