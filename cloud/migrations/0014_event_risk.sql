-- The firewall's risk score (per mille, NULL when the sidecar sent none) and
-- categories (sorted names joined by ',', '' when none) of each event, kept at
-- ingestion so the audit log shows them.
ALTER TABLE events ADD COLUMN risk_milli BIGINT;
ALTER TABLE events ADD COLUMN categories TEXT NOT NULL DEFAULT '';
-- One row per event and tag ('category:<name>', or 'risk:<per mille>' for each
-- risk band the score reaches: 500, 700, 900), in the audit page order, so
-- filtering by a category or a minimum risk is an index range scan however rare
-- the tag is. The key carries the event's other filterable columns too, so a tag
-- combined with an agent, code, decision or risk is checked in the index alone.
-- Only tagged events have rows; the retention purge deletes them with their events.
CREATE TABLE event_tags (
    org_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    ts_ms BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    phase TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    decision TEXT NOT NULL,
    error_code TEXT NOT NULL,
    risk_milli BIGINT NOT NULL,
    PRIMARY KEY (org_id, tag, ts_ms, request_id, event_type, phase, agent_id, decision, error_code, risk_milli)
);
