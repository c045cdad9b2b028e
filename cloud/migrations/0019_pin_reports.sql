-- What each sidecar's latest pin report left out (src/store/pins.rs,
-- docs/mcp-pinning.md): held tools past the report's bounds (too many, a
-- name too long or with NUL), which stay with `kalguard tools`; the Tools
-- page names the sidecar and the count. A row only while its count is not 0.
CREATE TABLE pin_reports (
    org_id TEXT NOT NULL REFERENCES orgs (id),
    sidecar_id TEXT NOT NULL,
    host TEXT NOT NULL DEFAULT '',
    left_out BIGINT NOT NULL,
    reported_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, sidecar_id)
);
