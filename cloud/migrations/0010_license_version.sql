-- Every change a sidecar must see at once (a token revoked, an agent quarantined, a
-- key revoked, the signing secret rotated, the plan changed) bumps the organisation's
-- license version; `GET /api/v1/license/watch` answers as soon as it moves
-- (src/license_changes.rs). `license_changed_at` lets each server process find the
-- changes other processes made (another replica, the command line).
ALTER TABLE orgs ADD COLUMN license_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orgs ADD COLUMN license_changed_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX orgs_license_changed ON orgs (license_changed_at);
