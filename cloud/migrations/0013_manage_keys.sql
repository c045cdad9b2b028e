-- Management API keys (src/store/manage_keys.rs): `kg_mgmt_…`, stored as SHA-256,
-- each with the role whose permissions it carries (admin or viewer) and the owner
-- who made it. Separate from the sidecars' keys, which can only sync.
CREATE TABLE manage_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    name TEXT NOT NULL,
    display_prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    last_used_at BIGINT
);
CREATE INDEX manage_keys_org ON manage_keys (org_id);
