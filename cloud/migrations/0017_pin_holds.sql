-- MCP tools held back by control planes in Cloud mode (src/store/pins.rs,
-- docs/mcp-pinning.md): what each sidecar reports waiting for an operator,
-- and the decision a member took on it. One row per held definition: a tool
-- held again with another offered definition is a new row (`id`), so a
-- decision is bound to the definition the member saw, and taken once.
-- `current` is 1 while the sidecar's latest report lists it. `decision` is ''
-- (none yet), approve or forget; `outcome` is '' until the control plane says
-- what it did: applied, stale (another definition waits now) or gone (decided
-- there first). `fields_changed` is a JSON array of field names. Names and
-- hashes only: never a tool's description.
CREATE TABLE pin_holds (
    org_id TEXT NOT NULL REFERENCES orgs (id),
    id TEXT NOT NULL,
    sidecar_id TEXT NOT NULL,
    host TEXT NOT NULL DEFAULT '',
    server TEXT NOT NULL,
    tool TEXT NOT NULL,
    held TEXT NOT NULL,
    why TEXT NOT NULL DEFAULT '',
    pinned_sha256 TEXT NOT NULL DEFAULT '',
    offered_sha256 TEXT NOT NULL,
    fields_changed TEXT NOT NULL DEFAULT '[]',
    held_since_ms BIGINT NOT NULL,
    reported_at BIGINT NOT NULL,
    current BIGINT NOT NULL DEFAULT 1,
    decision TEXT NOT NULL DEFAULT '',
    decided_by TEXT NOT NULL DEFAULT '',
    decided_at BIGINT,
    outcome TEXT NOT NULL DEFAULT '',
    outcome_detail TEXT NOT NULL DEFAULT '',
    settled_at BIGINT,
    PRIMARY KEY (org_id, id)
);
-- A sidecar's report, and the decisions waiting for it.
CREATE INDEX pin_holds_org_sidecar ON pin_holds (org_id, sidecar_id, current);
-- The page: held tools, then the latest decisions.
CREATE INDEX pin_holds_org_decided ON pin_holds (org_id, decided_at);
-- One current row per held tool of a sidecar: two reports of the same
-- sidecar racing on Postgres (a retry while the first is still running)
-- cannot both add one.
CREATE UNIQUE INDEX pin_holds_current ON pin_holds (org_id, sidecar_id, server, tool)
    WHERE current = 1;
