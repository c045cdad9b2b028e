-- The admin audit log (src/store/admin_log.rs): who did what to the organisation
-- in the dashboard or the CLI. Append-only: the Cloud has no statement that
-- updates or deletes a row, and each row's hash covers the row and the previous
-- row's hash, so a row changed or removed in the database breaks the chain.
CREATE TABLE admin_log (
    org_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor_id TEXT NOT NULL,
    actor_email TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (org_id, seq)
);
