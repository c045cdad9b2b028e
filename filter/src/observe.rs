//! Observe-only rollout (`docs/observe.md`): the mode a request is judged in,
//! and which refusals observe mode lets pass.
//!
//! In observe mode the guard judges exactly as in enforce mode; the exchange
//! then carries out an allow in place of each refusal [`lets_pass`], and
//! reports the refusal that would have happened (its code, rule and
//! categories) on an `allow` event marked `wouldRefuse`, in Envoy's stats and
//! in [`HEADER`] on the answer. What stays refused in every mode is what
//! observe mode cannot vouch for: a caller without a valid token (there is no
//! verified agent to record, and a per-agent mode must never be claimable by
//! a forged ID), a body the filter cannot read, a plan's limits, and the
//! filter's own failures.

use crate::policy::{Mode, Policy};
use crate::refusal::{ErrorCode, Refusal};
use crate::route;
use crate::wire::event::rule_id_fits;

/// The answer header naming the refusal observe mode let pass.
pub const HEADER: &str = "x-kalguard-would-refuse";

/// The mode of a request by `agent` (a verified token's `sub`; `None` before
/// one is known, which is always enforce) to `target` (the request's path and
/// query): the policy's most specific say, else the configuration's.
pub fn mode(configured: Mode, policy: Option<&Policy>, agent: Option<&str>, target: &str) -> Mode {
    let Some(agent) = agent else {
        return Mode::Enforce;
    };
    match policy {
        Some(policy) if policy.sets_mode() => policy
            .mode_for(agent, &route::policy_path(target))
            .unwrap_or(configured),
        _ => configured,
    }
}

/// Whether observe mode lets a refusal with `code` pass: the guard's
/// judgements of an identified agent's request (capabilities, policy,
/// approval, firewall, tools). Never identity (`AUTH_FAILED`,
/// `TOKEN_EXPIRED`, `TOKEN_REVOKED`), a request it could not read
/// (`BAD_REQUEST`, `BODY_TOO_LARGE`), the plan (`RATE_LIMIT_EXCEEDED`,
/// `AGENT_LIMIT_EXCEEDED`), `NOT_FOUND` or a failure (`KALGUARD_UNAVAILABLE`).
pub fn lets_pass(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::CapabilityDenied
            | ErrorCode::PolicyDeny
            | ErrorCode::RequireApproval
            | ErrorCode::PromptBlocked
            | ErrorCode::ToolDenied
    )
}

/// The policy rule a refusal names (its data's `ruleId`), when it may travel
/// on an event.
pub fn rule_id(refusal: &Refusal) -> Option<String> {
    let rule = refusal.data.as_ref()?.get("ruleId")?.as_str()?;
    rule_id_fits(rule).then(|| rule.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> Policy {
        Policy::from_value(&json!({"rules":[{"id":"r","match":{},"decision":"allow"}],
            "defaultDecision":"deny",
            "modes":[{"agentIds":["beta"],"mode":"observe"},
                     {"agentIds":["beta"],"routes":["/mcp"],"mode":"enforce"}]}))
        .unwrap()
    }

    #[test]
    fn no_verified_agent_is_always_enforced() {
        let p = policy();
        assert_eq!(
            mode(Mode::Observe, Some(&p), None, "/v1/chat/completions"),
            Mode::Enforce
        );
        assert_eq!(mode(Mode::Observe, None, None, "/"), Mode::Enforce);
    }

    #[test]
    fn the_policy_decides_before_the_configuration() {
        let p = policy();
        assert_eq!(
            mode(
                Mode::Enforce,
                Some(&p),
                Some("beta"),
                "/v1/chat/completions"
            ),
            Mode::Observe
        );
        // Matched on the path rules see: no query, normal form.
        assert_eq!(
            mode(Mode::Observe, Some(&p), Some("beta"), "/mcp?x=1"),
            Mode::Enforce
        );
        assert_eq!(
            mode(Mode::Observe, Some(&p), Some("beta"), "/a/../mcp"),
            Mode::Enforce
        );
        assert_eq!(
            mode(Mode::Observe, Some(&p), Some("prod"), "/mcp"),
            Mode::Observe
        );
        assert_eq!(
            mode(Mode::Enforce, Some(&p), Some("prod"), "/mcp"),
            Mode::Enforce
        );
        assert_eq!(
            mode(Mode::Observe, None, Some("prod"), "/mcp"),
            Mode::Observe
        );
    }

    #[test]
    fn only_the_guards_judgements_may_pass() {
        let passing: Vec<ErrorCode> = ErrorCode::ALL
            .into_iter()
            .filter(|c| lets_pass(*c))
            .collect();
        assert_eq!(
            passing,
            [
                ErrorCode::CapabilityDenied,
                ErrorCode::PolicyDeny,
                ErrorCode::RequireApproval,
                ErrorCode::PromptBlocked,
                ErrorCode::ToolDenied
            ]
        );
    }

    #[test]
    fn the_rule_comes_from_the_refusals_data_when_it_fits() {
        let named = |rule: serde_json::Value| {
            rule_id(&Refusal::new(ErrorCode::PolicyDeny, "no").with_data(json!({"ruleId": rule})))
        };
        assert_eq!(named(json!("no-gpt4")), Some("no-gpt4".into()));
        assert_eq!(named(json!(null)), None);
        assert_eq!(named(json!("a\nb")), None);
        assert_eq!(rule_id(&Refusal::new(ErrorCode::PolicyDeny, "no")), None);
    }
}
