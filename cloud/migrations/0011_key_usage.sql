-- Usage per API key and UTC day of receipt (src/store/key_usage.rs): which key's
-- sidecars report how much. `events` counts events received in reports (a retried
-- batch again), `checks` the checks those reports added to the quota.
CREATE TABLE key_usage_daily (
    org_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    reports BIGINT NOT NULL,
    events BIGINT NOT NULL,
    checks BIGINT NOT NULL,
    PRIMARY KEY (org_id, key_id, day)
);
-- The agent page reads one agent's rollup rows (its days, codes, last event).
CREATE INDEX usage_daily_org_agent ON usage_daily (org_id, agent_id, day);
