-- The daily rollup counts audited events by decision beside the plan's checks, so
-- the usage page adds up to the audit log and its CSV:
--   checks    requests checked and counted against the plan (unchanged);
--   allowed   events allowed;
--   denied    events refused at any phase: refused checks, refusals before the check
--             (expired or revoked token, rate or agent limit) and refused answers;
--   approval  events held for approval (require_approval), no longer in denied.
ALTER TABLE usage_daily ADD COLUMN allowed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN approval BIGINT NOT NULL DEFAULT 0;
-- Rows written before: an allowed check carries no code, and require_approval (the
-- filter's code REQUIRE_APPROVAL) was counted in denied.
UPDATE usage_daily SET allowed = checks WHERE error_code = '';
UPDATE usage_daily SET approval = denied, denied = 0 WHERE error_code = 'REQUIRE_APPROVAL';
-- Refusals that were not checks were left out of denied: add those the audit log
-- still holds (older ones were purged with their events).
UPDATE usage_daily SET denied = denied + (
    SELECT COUNT(*) FROM events e
    WHERE e.org_id = usage_daily.org_id AND e.error_code = usage_daily.error_code
      AND e.ts_ms >= usage_daily.day * 86400000 AND e.ts_ms < (usage_daily.day + 1) * 86400000
      AND e.agent_id = usage_daily.agent_id AND e.decision = 'deny'
      AND (e.phase = 'answer' OR e.error_code IN
           ('TOKEN_EXPIRED', 'TOKEN_REVOKED', 'RATE_LIMIT_EXCEEDED', 'AGENT_LIMIT_EXCEEDED'))
) WHERE error_code <> '' AND error_code <> 'REQUIRE_APPROVAL';
