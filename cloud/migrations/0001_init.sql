-- KalGuard Cloud schema. One file serves SQLite and Postgres: only TEXT and BIGINT
-- columns, application-generated IDs, timestamps as unix seconds (events: milliseconds).

CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    plan TEXT NOT NULL,
    signing_secret TEXT NOT NULL,
    previous_signing_secret TEXT,
    previous_secret_valid_until BIGINT,
    stripe_customer_id TEXT,
    stripe_subscription_id TEXT,
    -- `created` of the Stripe event that last set the plan: older events lose.
    plan_event_created BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX orgs_stripe_customer ON orgs (stripe_customer_id);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX users_org ON users (org_id);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    org_id TEXT NOT NULL REFERENCES orgs (id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    name TEXT NOT NULL,
    display_prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    last_used_at BIGINT
);
CREATE INDEX api_keys_org ON api_keys (org_id);

CREATE TABLE agent_tokens (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    name TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX agent_tokens_org_agent ON agent_tokens (org_id, agent_id);

CREATE TABLE usage_batches (
    org_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    accepted BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, batch_id)
);

-- Security events as sidecars report them. Never prompt text.
CREATE TABLE events (
    org_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    decision TEXT NOT NULL,
    error_code TEXT NOT NULL,
    ts_ms BIGINT NOT NULL,
    PRIMARY KEY (org_id, request_id, event_type)
);
-- Each audit filter has an index in the page order (newest first), so a page is an
-- index range scan even when few rows match: time alone, by agent, by error code,
-- by decision.
CREATE INDEX events_org_time ON events (org_id, ts_ms, request_id, event_type);
-- The agent, code and decision indexes carry every column a page shows, so combined filters
-- (agent + decision + code) are answered from the index alone.
CREATE INDEX events_org_agent_time ON events (org_id, agent_id, ts_ms, request_id, event_type, decision, error_code);
CREATE INDEX events_org_code_time ON events (org_id, error_code, ts_ms, request_id, event_type, agent_id, decision);
CREATE INDEX events_org_decision_time ON events (org_id, decision, ts_ms, request_id, event_type, agent_id, error_code);

-- Rollup kept at ingestion so the dashboard never scans events for its charts.
-- error_code is '' for allowed checks.
CREATE TABLE usage_daily (
    org_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    agent_id TEXT NOT NULL,
    error_code TEXT NOT NULL,
    checks BIGINT NOT NULL,
    denied BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    PRIMARY KEY (org_id, day, agent_id, error_code)
);

CREATE TABLE sidecars (
    org_id TEXT NOT NULL,
    sidecar_id TEXT NOT NULL,
    version TEXT NOT NULL,
    mode TEXT NOT NULL,
    last_sync_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, sidecar_id)
);

CREATE TABLE stripe_events (
    id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    created BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);
