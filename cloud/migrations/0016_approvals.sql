-- Approvals relayed by control planes in Cloud mode (src/store/approvals.rs,
-- docs/approval.md): what a held request asks, and how it stands. `id` is the
-- control plane's approval ID. `status` is pending, approved, denied, expired
-- or abandoned; `decided_on` says where the deciding word was given ('cloud':
-- a member on the dashboard; 'control_plane': the CLI, the expiry, the agent
-- hanging up). A pending row past `expires_at_ms` reads as expired. No prompt
-- text and no arguments: only their SHA-256.
CREATE TABLE approvals (
    org_id TEXT NOT NULL REFERENCES orgs (id),
    id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    action TEXT NOT NULL,
    route TEXT NOT NULL,
    model TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments_sha256 TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    reason TEXT NOT NULL,
    filed_at BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    status TEXT NOT NULL,
    decided_on TEXT NOT NULL DEFAULT '',
    decided_by TEXT NOT NULL DEFAULT '',
    decision_reason TEXT NOT NULL DEFAULT '',
    for_minutes BIGINT,
    decided_at BIGINT,
    PRIMARY KEY (org_id, id)
);
-- The page: the pending ones, and the latest decided, newest first.
CREATE INDEX approvals_org_status_filed ON approvals (org_id, status, filed_at);
CREATE INDEX approvals_org_filed ON approvals (org_id, filed_at);
