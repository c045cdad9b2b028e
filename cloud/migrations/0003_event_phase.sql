-- An answer refused or cut after its request was allowed (metadata `answer: 1`)
-- is a second event of the same request and type. The key had no room for it, so
-- the Cloud kept the request's allow and dropped the refusal from the audit log.
-- The phase ('request' or 'answer') is now part of the key; existing events are
-- requests. The table is rebuilt: neither backend can change a primary key in place.
-- The copy runs in the migration's transaction: ingestion waits for it (on Postgres the
-- rename keeps the key's constraint name, events_phased_pkey; ON CONFLICT names columns).
CREATE TABLE events_phased (
    org_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    phase TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    decision TEXT NOT NULL,
    error_code TEXT NOT NULL,
    ts_ms BIGINT NOT NULL,
    PRIMARY KEY (org_id, request_id, event_type, phase)
);
INSERT INTO events_phased (org_id, request_id, event_type, phase, agent_id, decision, error_code, ts_ms)
    SELECT org_id, request_id, event_type, 'request', agent_id, decision, error_code, ts_ms FROM events;
DROP TABLE events;
ALTER TABLE events_phased RENAME TO events;
-- The same indexes as before, in the page order (which now ends with the phase).
CREATE INDEX events_org_time ON events (org_id, ts_ms, request_id, event_type, phase);
CREATE INDEX events_org_agent_time ON events (org_id, agent_id, ts_ms, request_id, event_type, phase, decision, error_code);
CREATE INDEX events_org_code_time ON events (org_id, error_code, ts_ms, request_id, event_type, phase, agent_id, decision);
CREATE INDEX events_org_decision_time ON events (org_id, decision, ts_ms, request_id, event_type, phase, agent_id, error_code);
