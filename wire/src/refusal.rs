//! Refusals on the wire: error codes, status codes and the JSON body that both
//! the KalGuard SDK and OpenAI/Anthropic SDKs can read (DESIGN.md, "Decisions on
//! the wire").

use serde_json::{json, Value};

/// Every reason the filter refuses a request. Each has one status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    AuthFailed,
    TokenExpired,
    TokenRevoked,
    CapabilityDenied,
    PolicyDeny,
    RequireApproval,
    PromptBlocked,
    ToolDenied,
    ToolChanged,
    ToolSuspicious,
    AgentLimitExceeded,
    BodyTooLarge,
    BadRequest,
    NotFound,
    RateLimitExceeded,
    KalguardUnavailable,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::AuthFailed,
        ErrorCode::TokenExpired,
        ErrorCode::TokenRevoked,
        ErrorCode::CapabilityDenied,
        ErrorCode::PolicyDeny,
        ErrorCode::RequireApproval,
        ErrorCode::PromptBlocked,
        ErrorCode::ToolDenied,
        ErrorCode::ToolChanged,
        ErrorCode::ToolSuspicious,
        ErrorCode::AgentLimitExceeded,
        ErrorCode::BodyTooLarge,
        ErrorCode::BadRequest,
        ErrorCode::NotFound,
        ErrorCode::RateLimitExceeded,
        ErrorCode::KalguardUnavailable,
    ];

    /// Refusals before the plan gate admits a request (an expired or revoked
    /// token, the gate itself): audited under their agent, but not one of the
    /// day's checks. The filter meters after these; the control plane and the
    /// Cloud count with the same rule (see [`is_check`]).
    pub const NOT_CHECKS: [ErrorCode; 4] = [
        ErrorCode::TokenExpired,
        ErrorCode::TokenRevoked,
        ErrorCode::RateLimitExceeded,
        ErrorCode::AgentLimitExceeded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AuthFailed => "AUTH_FAILED",
            ErrorCode::TokenExpired => "TOKEN_EXPIRED",
            ErrorCode::TokenRevoked => "TOKEN_REVOKED",
            ErrorCode::CapabilityDenied => "CAPABILITY_DENIED",
            ErrorCode::PolicyDeny => "POLICY_DENY",
            ErrorCode::RequireApproval => "REQUIRE_APPROVAL",
            ErrorCode::PromptBlocked => "PROMPT_BLOCKED",
            ErrorCode::ToolDenied => "TOOL_DENIED",
            ErrorCode::ToolChanged => "TOOL_CHANGED",
            ErrorCode::ToolSuspicious => "TOOL_SUSPICIOUS",
            ErrorCode::AgentLimitExceeded => "AGENT_LIMIT_EXCEEDED",
            ErrorCode::BodyTooLarge => "BODY_TOO_LARGE",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            ErrorCode::KalguardUnavailable => "KALGUARD_UNAVAILABLE",
        }
    }

    pub fn status(self) -> u32 {
        match self {
            ErrorCode::AuthFailed | ErrorCode::TokenExpired | ErrorCode::TokenRevoked => 401,
            ErrorCode::CapabilityDenied
            | ErrorCode::PolicyDeny
            | ErrorCode::RequireApproval
            | ErrorCode::PromptBlocked
            | ErrorCode::ToolDenied
            | ErrorCode::ToolChanged
            | ErrorCode::ToolSuspicious
            | ErrorCode::AgentLimitExceeded => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::BodyTooLarge => 413,
            ErrorCode::BadRequest => 400,
            ErrorCode::RateLimitExceeded => 429,
            ErrorCode::KalguardUnavailable => 503,
        }
    }
}

/// Whether a decision event with this error code (`None`: allowed) is one of
/// the day's checks. An event on a request's answer (metadata
/// [`crate::event::ANSWER`]) never is: its request was counted already.
pub fn is_check(error_code: Option<&str>, answer: bool) -> bool {
    !answer
        && !error_code.is_some_and(|code| ErrorCode::NOT_CHECKS.iter().any(|c| c.as_str() == code))
}

/// A refusal the filter answers in place of the upstream.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    /// Extra machine-readable detail (`remaining`, `resetAt`, categories, …).
    pub data: Option<Value>,
    /// Seconds until a retry can succeed (429 only): sent as `retry-after`.
    pub retry_after: Option<u64>,
    /// Unix seconds of the quota's reset (429 only): sent as `x-ratelimit-reset`.
    pub rate_limit_reset: Option<i64>,
    /// The agent refused when the guard knows it before identifying one: an
    /// expired or revoked token is authentic and names its agent (for the
    /// audit trail, never sent to the agent).
    pub agent_id: Option<String>,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            data: None,
            retry_after: None,
            rate_limit_reset: None,
            agent_id: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Refusal {
        self.data = Some(data);
        self
    }

    pub fn status(&self) -> u32 {
        self.code.status()
    }

    /// The JSON body: the KalGuard envelope plus an OpenAI/Anthropic-style `error`.
    pub fn body(&self, request_id: &str) -> Vec<u8> {
        let decision = if self.code == ErrorCode::RequireApproval {
            "require_approval"
        } else {
            "deny"
        };
        let mut body = json!({
            "allowed": false,
            "decision": decision,
            "message": self.message,
            "errorCode": self.code.as_str(),
            "requestId": request_id,
            "error": {
                "type": "kalguard_error",
                "code": self.code.as_str(),
                "message": self.message,
            },
        });
        if let (Some(data), Some(object)) = (&self.data, body.as_object_mut()) {
            object.insert("data".into(), data.clone());
        }
        body.to_string().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_gate_and_token_refusals_are_not_checks() {
        assert!(is_check(None, false));
        assert!(is_check(Some("PROMPT_BLOCKED"), false));
        assert!(is_check(Some("CAPABILITY_DENIED"), false));
        // An answer refused after its request was allowed is not a second check.
        assert!(!is_check(Some("PROMPT_BLOCKED"), true));
        assert!(!is_check(Some("TOOL_DENIED"), true));
        for code in [
            "TOKEN_EXPIRED",
            "TOKEN_REVOKED",
            "RATE_LIMIT_EXCEEDED",
            "AGENT_LIMIT_EXCEEDED",
        ] {
            assert!(!is_check(Some(code), false), "{code}");
        }
    }

    #[test]
    fn body_matches_the_documented_envelope() {
        let refusal = Refusal::new(ErrorCode::RateLimitExceeded, "Rate limit exceeded")
            .with_data(json!({"remaining": 0, "resetAt": 1714694400}));
        let body: Value = serde_json::from_slice(&refusal.body("req_1")).unwrap();
        assert_eq!(
            body,
            json!({"allowed":false,"decision":"deny","message":"Rate limit exceeded",
                "errorCode":"RATE_LIMIT_EXCEEDED","requestId":"req_1",
                "data":{"remaining":0,"resetAt":1714694400},
                "error":{"type":"kalguard_error","code":"RATE_LIMIT_EXCEEDED","message":"Rate limit exceeded"}})
        );
        assert_eq!(refusal.status(), 429);
    }

    #[test]
    fn require_approval_says_so_in_decision() {
        let body: Value = serde_json::from_slice(
            &Refusal::new(ErrorCode::RequireApproval, "needs a human").body("r"),
        )
        .unwrap();
        assert_eq!(body["decision"], "require_approval");
        assert_eq!(body["error"]["code"], "REQUIRE_APPROVAL");
        assert!(body.get("data").is_none());
    }

    #[test]
    fn every_code_has_a_documented_status() {
        for code in ErrorCode::ALL {
            assert!(
                [400, 401, 403, 404, 413, 429, 503].contains(&code.status()),
                "{code:?}"
            );
        }
    }
}
