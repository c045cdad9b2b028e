-- Alert webhooks (src/alerts.rs, src/store/alerts.rs): where an organisation wants
-- to hear about a denial spike, 80 % and 100 % of the daily quota, and a sidecar
-- that stopped reporting; what has fired (so each alert fires once); and every
-- delivery with its attempts, for the delivery log.
CREATE TABLE alert_hooks (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    url TEXT NOT NULL,
    -- HMAC-SHA256 key of the `x-kalguard-signature` header.
    secret TEXT NOT NULL,
    -- Denials within 5 minutes that make a spike; 0 = off.
    spike_denials BIGINT NOT NULL,
    -- 1 = alert at 80 % and 100 % of the daily quota.
    quota BIGINT NOT NULL,
    -- A sidecar silent this long (seconds) is reported; 0 = off.
    silent_secs BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX alert_hooks_org ON alert_hooks (org_id);

CREATE TABLE alert_fired (
    org_id TEXT NOT NULL,
    -- e.g. `quota:80:20430` (day), `spike:5890123` (window), `silent:<sidecar>:<last sync>`.
    alert_key TEXT NOT NULL,
    fired_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, alert_key)
);

CREATE TABLE alert_deliveries (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    hook_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    -- pending, delivered or failed (after the last attempt).
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_at BIGINT NOT NULL,
    last_result TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_at);
CREATE INDEX alert_deliveries_org ON alert_deliveries (org_id, created_at);
