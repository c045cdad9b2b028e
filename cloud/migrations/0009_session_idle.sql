-- Sessions end after `--session-idle-secs` without a request (src/store/sessions.rs);
-- a session's last request is kept to the minute. Sessions open before count from
-- their creation.
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET last_seen_at = created_at;
CREATE INDEX sessions_user ON sessions (user_id);
