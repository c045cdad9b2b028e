-- Events are keyed by time: (org_id, ts_ms, request_id, event_type, phase), the
-- audit log's page order. The key was (org_id, request_id, event_type, phase):
-- request IDs are random (the filter's are `req_` and 32 hex digits), so every
-- insert went to a random leaf of the key's index and every commit wrote each leaf
-- it changed, which halved ingestion on SQLite. Keyed by the sidecar's timestamp
-- first, new events land at the end of the index.
--
-- An event is now identified by its request, type, phase and the time the sidecar
-- recorded it: a re-sent event carries the time it was recorded with (the control
-- plane's spool keeps each event as first written), so it is still stored and
-- counted once (src/store/usage.rs says what else changes).
--
-- The time index is the key itself, so `events_org_time` is gone: one index fewer
-- to keep up at every insert. The table is rebuilt (neither backend can change a
-- primary key in place), in the migration's transaction; ingestion waits for it.
CREATE TABLE events_by_time (
    org_id TEXT NOT NULL,
    ts_ms BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    phase TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    decision TEXT NOT NULL,
    error_code TEXT NOT NULL,
    risk_milli BIGINT,
    categories TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (org_id, ts_ms, request_id, event_type, phase)
);
INSERT INTO events_by_time (org_id, ts_ms, request_id, event_type, phase, agent_id, decision,
                            error_code, risk_milli, categories)
    SELECT org_id, ts_ms, request_id, event_type, phase, agent_id, decision, error_code,
           risk_milli, categories FROM events;
DROP TABLE events;
ALTER TABLE events_by_time RENAME TO events;
-- The filter indexes as before, in the page order after their column.
CREATE INDEX events_org_agent_time ON events (org_id, agent_id, ts_ms, request_id, event_type, phase, decision, error_code);
CREATE INDEX events_org_code_time ON events (org_id, error_code, ts_ms, request_id, event_type, phase, agent_id, decision);
CREATE INDEX events_org_decision_time ON events (org_id, decision, ts_ms, request_id, event_type, phase, agent_id, error_code);
