//! Plugin configuration: the JSON in Envoy's `plugin_config.configuration`.
//!
//! Parsed and validated once at `on_configure`; the request path only consults
//! the prepared [`Config`]. An empty configuration is valid and gives the
//! documented defaults. Every error names the field at fault, so a bad config
//! makes the plugin fail to start with a log line an operator can act on.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;

use crate::answer::tool_calls::ToolCallMode;
use crate::firewall::FirewallConfig;
use crate::policy::{Mode, Policy};
pub use crate::quota::Limits;
use crate::route::{RouteAction, RouteRule, RouteSettings};
use crate::spotlight::Spotlight;
use crate::taint::TaintConfig;

/// Default request body limit on inspected routes: 4 MiB. Envoy's own buffer
/// limit (`per_connection_buffer_limit_bytes`) must be above it.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The prepared plugin configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Request header that carries the agent token; removed before forwarding.
    pub token_header: String,
    /// Largest request body accepted on an inspected route (413 above it).
    pub max_body_bytes: usize,
    /// Paths where MCP JSON-RPC over HTTP is served (exact or `*` patterns).
    pub mcp_paths: Vec<String>,
    /// Operator routes, checked before the built-in ones; first match wins.
    pub routes: Vec<RouteRule>,
    /// What happens to a path no rule and no built-in route knows.
    pub unknown_route_action: RouteAction,
    /// Whether the filter answers the compatibility check API itself.
    pub check_api: bool,
    /// Hold an inspected request's headers until its body is judged, so nothing
    /// of a refused request reaches upstream. Needs Envoy's
    /// `allow_on_headers_stop_iteration: true` on the Wasm plugin (Envoy >= 1.35);
    /// without it, a held request would wait forever, so it is off by default
    /// (headers then go ahead, the body is held: upstream never receives a
    /// complete refused request).
    pub hold_request_headers: bool,
    /// The prompt firewall: tier, thresholds, scored sources, redaction.
    pub firewall: FirewallConfig,
    /// Envoy cluster of the control plane (state channel, event sink); empty
    /// turns the channel off (the plugin configuration alone is enforced).
    pub control_plane_cluster: String,
    /// Plan limits the operator sets for local mode (no Cloud license): daily
    /// checks and distinct agents per UTC day. Absent means unlimited.
    pub limits: Limits,
    /// Policy rules for control-plane-less use; a snapshot's policy replaces them.
    pub policy: Option<Arc<Policy>>,
    /// What happens to an LLM answer asking for a tool the agent may not call.
    pub response_tool_calls: ToolCallMode,
    /// Reduce MCP `tools/list` answers to the tools the agent may call.
    pub mcp_filter_tools_list: bool,
    /// Pin each MCP server's tools on first use and hold back changed or
    /// suspicious ones until an operator approves (`docs/mcp-pinning.md`).
    pub mcp_pinning: bool,
    /// Tool results marked as data before the model reads them (off by default).
    pub spotlight: Spotlight,
    /// How long a request a `require_approval` rule holds waits for a
    /// person, in seconds (`docs/approval.md`).
    pub approval_timeout: u64,
    /// Whether refusals are carried out (`enforce`, the default) or only
    /// recorded (`observe`); the policy may say otherwise per agent or route
    /// (`docs/observe.md`).
    pub mode: Mode,
    /// Outbound tool calls held for approval in a tainted conversation
    /// (`docs/taint.md`).
    pub taint: TaintConfig,
}

/// Default `approval_timeout`: two minutes, about as long as a slow model's answer.
pub const DEFAULT_APPROVAL_TIMEOUT_SECONDS: u64 = 120;

impl Default for Config {
    fn default() -> Config {
        Config {
            token_header: "x-kalguard-token".into(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            mcp_paths: vec!["/mcp".into()],
            routes: Vec::new(),
            unknown_route_action: RouteAction::Deny,
            check_api: true,
            hold_request_headers: false,
            firewall: FirewallConfig::default(),
            control_plane_cluster: "kalguard_control_plane".into(),
            limits: Limits::default(),
            policy: None,
            response_tool_calls: ToolCallMode::Refuse,
            mcp_filter_tools_list: true,
            mcp_pinning: false,
            spotlight: Spotlight::default(),
            approval_timeout: DEFAULT_APPROVAL_TIMEOUT_SECONDS,
            mode: Mode::Enforce,
            taint: TaintConfig::default(),
        }
    }
}

/// A configuration error, naming the field at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid plugin configuration: field `{}`: {}",
            self.field, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

fn error(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        reason: reason.into(),
    }
}

const FIELDS: [&str; 18] = [
    "token_header",
    "max_body_bytes",
    "mcp_paths",
    "routes",
    "unknown_route_action",
    "check_api",
    "hold_request_headers",
    "firewall",
    "control_plane_cluster",
    "limits",
    "policy",
    "response_tool_calls",
    "mcp_filter_tools_list",
    "mcp_pinning",
    "spotlight",
    "approval_timeout",
    "mode",
    "taint",
];

/// Largest `max_body_bytes` accepted: the filter buffers the whole body.
const MAX_BODY_LIMIT: usize = 64 * 1024 * 1024;

impl Config {
    /// Parses the plugin configuration; empty input (or `{}`) gives the defaults.
    pub fn parse(raw: &[u8]) -> Result<Config, ConfigError> {
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(Config::default());
        }
        let value: Value = serde_json::from_slice(raw)
            .map_err(|e| error("(root)", format!("not valid JSON: {e}")))?;
        let Value::Object(mut map) = value else {
            return Err(error("(root)", "must be a JSON object"));
        };
        if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(error(
                unknown,
                format!("unknown field; known fields are {}", FIELDS.join(", ")),
            ));
        }
        let defaults = Config::default();
        let config = Config {
            token_header: take(&mut map, "token_header", defaults.token_header)?,
            max_body_bytes: take(&mut map, "max_body_bytes", defaults.max_body_bytes)?,
            mcp_paths: take(&mut map, "mcp_paths", defaults.mcp_paths)?,
            routes: take(&mut map, "routes", defaults.routes)?,
            unknown_route_action: take(
                &mut map,
                "unknown_route_action",
                defaults.unknown_route_action,
            )?,
            check_api: take(&mut map, "check_api", defaults.check_api)?,
            hold_request_headers: take(
                &mut map,
                "hold_request_headers",
                defaults.hold_request_headers,
            )?,
            firewall: take(&mut map, "firewall", defaults.firewall)?,
            control_plane_cluster: take(
                &mut map,
                "control_plane_cluster",
                defaults.control_plane_cluster,
            )?,
            limits: take(&mut map, "limits", defaults.limits)?,
            response_tool_calls: take(
                &mut map,
                "response_tool_calls",
                defaults.response_tool_calls,
            )?,
            mcp_filter_tools_list: take(
                &mut map,
                "mcp_filter_tools_list",
                defaults.mcp_filter_tools_list,
            )?,
            mcp_pinning: take(&mut map, "mcp_pinning", defaults.mcp_pinning)?,
            approval_timeout: take(&mut map, "approval_timeout", defaults.approval_timeout)?,
            mode: match map.remove("mode") {
                None | Some(Value::Null) => defaults.mode,
                Some(value) => value
                    .as_str()
                    .and_then(Mode::parse)
                    .ok_or_else(|| error("mode", "must be \"enforce\" or \"observe\""))?,
            },
            spotlight: match map.remove("spotlight") {
                None | Some(Value::Null) => defaults.spotlight,
                Some(value) => {
                    Spotlight::from_value(&value).map_err(|reason| error("spotlight", reason))?
                }
            },
            taint: match map.remove("taint") {
                None | Some(Value::Null) => defaults.taint,
                Some(value) => TaintConfig::from_value(&value)
                    .map_err(|(field, reason)| error(&field, reason))?,
            },
            policy: match map.remove("policy") {
                None | Some(Value::Null) => None,
                Some(value) => Some(Arc::new(
                    Policy::from_value(&value)
                        .map_err(|e| error(&policy_field(&e.field), e.reason))?,
                )),
            },
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let header = &self.token_header;
        if header.is_empty()
            || !header
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(error(
                "token_header",
                "must be a non-empty lowercase HTTP header name",
            ));
        }
        if header == "authorization" {
            return Err(error(
                "token_header",
                "must not be `authorization`: it carries the provider's API key upstream",
            ));
        }
        if self.mcp_pinning && self.control_plane_cluster.is_empty() {
            return Err(error(
                "mcp_pinning",
                "needs the control plane (`control_plane_cluster`): it keeps the pins",
            ));
        }
        let longest_wait = crate::approval::MAX_WAIT_MS / 1000;
        if self.approval_timeout == 0 || self.approval_timeout > longest_wait {
            return Err(error(
                "approval_timeout",
                format!("must be between 1 and {longest_wait} seconds"),
            ));
        }
        if self.max_body_bytes == 0 || self.max_body_bytes > MAX_BODY_LIMIT {
            return Err(error(
                "max_body_bytes",
                format!("must be between 1 and {MAX_BODY_LIMIT}"),
            ));
        }
        for (i, path) in self.mcp_paths.iter().enumerate() {
            if !path.starts_with('/') {
                return Err(error(&format!("mcp_paths[{i}]"), "must start with `/`"));
            }
        }
        for (i, rule) in self.routes.iter().enumerate() {
            if !rule.path.starts_with('/') {
                return Err(error(&format!("routes[{i}].path"), "must start with `/`"));
            }
            if rule.format.is_some() && rule.action != RouteAction::Inspect {
                return Err(error(
                    &format!("routes[{i}].format"),
                    "only applies to action `inspect`",
                ));
            }
            if let Some(methods) = &rule.methods {
                let token =
                    |m: &String| !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphabetic());
                if methods.is_empty() || !methods.iter().all(token) {
                    return Err(error(
                        &format!("routes[{i}].methods"),
                        "must be a non-empty list of HTTP methods (`GET`, `POST`, ...); omit it for every method",
                    ));
                }
            }
        }
        self.firewall
            .validate()
            .map_err(|e| error(&format!("firewall.{}", e.field), e.to_string()))
    }
}

/// A policy error's field, under the configuration's `policy`.
fn policy_field(field: &str) -> String {
    if field == "(root)" {
        "policy".to_owned()
    } else {
        format!("policy.{field}")
    }
}

fn take<T: DeserializeOwned>(
    map: &mut Map<String, Value>,
    field: &str,
    default: T,
) -> Result<T, ConfigError> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => T::deserialize(value).map_err(|e| error(field, e.to_string())),
    }
}

impl<'de> Deserialize<'de> for RouteAction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "inspect" => Ok(RouteAction::Inspect),
            "pass" => Ok(RouteAction::Pass),
            "deny" => Ok(RouteAction::Deny),
            other => Err(serde::de::Error::custom(format!(
                "unknown route action `{other}`, expected inspect, pass or deny"
            ))),
        }
    }
}

impl RouteSettings for Config {
    fn check_api(&self) -> bool {
        self.check_api
    }

    fn rules(&self) -> &[RouteRule] {
        &self.routes
    }

    fn mcp_paths(&self) -> &[String] {
        &self.mcp_paths
    }

    fn unknown_route_action(&self) -> RouteAction {
        self.unknown_route_action
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::Format;

    #[test]
    fn local_limits_are_read_and_checked() {
        let config = Config::parse(br#"{"limits":{"checks_per_day":50,"max_agents":2}}"#).unwrap();
        assert_eq!(config.limits.checks_per_day, Some(50));
        assert_eq!(config.limits.max_agents, Some(2));
        let error = Config::parse(br#"{"limits":{"checks":50}}"#).unwrap_err();
        assert_eq!(error.field, "limits");
        assert!(Config::parse(br#"{"limits":{"checks_per_day":-1}}"#).is_err());
    }

    #[test]
    fn spotlight_is_read_and_checked() {
        use crate::spotlight::Mode;
        assert_eq!(Config::default().spotlight.mode, Mode::Off);
        let config =
            Config::parse(br#"{"spotlight":{"mode":"encode","tools":["web_*"]}}"#).unwrap();
        assert_eq!(config.spotlight.mode, Mode::Encode);
        assert_eq!(config.spotlight.tools, ["web_*"]);
        for bad in [
            r#"{"spotlight":{"mode":"on"}}"#,
            r#"{"spotlight":{"mode":"datamark","roles":[]}}"#,
            r#"{"spotlight":{"mode":"datamark","role":["tool"]}}"#,
            r#"{"spotlight":"datamark"}"#,
        ] {
            let error = Config::parse(bad.as_bytes()).unwrap_err();
            assert_eq!(error.field, "spotlight", "{bad}");
        }
    }

    #[test]
    fn empty_config_gives_defaults() {
        assert_eq!(Config::parse(b"").unwrap(), Config::default());
        assert_eq!(Config::parse(b"  {} ").unwrap(), Config::default());
        assert_eq!(Config::default().max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    }

    #[test]
    fn full_config_parses() {
        let config = Config::parse(
            br#"{"token_header":"x-agent-token","max_body_bytes":1024,"mcp_paths":["/tools/mcp"],
                "routes":[{"path":"/v1/models*","action":"pass"},
                          {"path":"/openai/deployments/*/chat/completions","action":"inspect","format":"openai_chat"}],
                "unknown_route_action":"pass","check_api":false,"hold_request_headers":true}"#,
        )
        .unwrap();
        assert_eq!(config.token_header, "x-agent-token");
        assert_eq!(config.max_body_bytes, 1024);
        assert_eq!(config.routes.len(), 2);
        assert_eq!(config.routes[1].format, Some(Format::OpenAiChat));
        assert_eq!(config.unknown_route_action, RouteAction::Pass);
        assert!(!config.check_api);
        assert!(config.hold_request_headers);
        assert!(config.policy.is_none());
        let with_policy = Config::parse(
            br#"{"policy":{"rules":[{"id":"r","match":{"models":["gpt-*"]},"decision":"allow"}],"defaultDecision":"deny"}}"#,
        )
        .unwrap();
        assert_eq!(with_policy.policy.map(|p| p.rule_count()), Some(1));
    }

    fn field_of(raw: &str) -> String {
        Config::parse(raw.as_bytes()).unwrap_err().field
    }

    #[test]
    fn approval_timeout_is_two_minutes_unless_set_and_bounded() {
        assert_eq!(Config::default().approval_timeout, 120);
        let set = Config::parse(br#"{"approval_timeout":5}"#).unwrap();
        assert_eq!(set.approval_timeout, 5);
        for bad in ["0", "3601", "-1", "\"2m\""] {
            let raw = format!(r#"{{"approval_timeout":{bad}}}"#);
            assert_eq!(field_of(&raw), "approval_timeout", "{bad}");
        }
    }

    #[test]
    fn mode_is_enforce_unless_set() {
        assert_eq!(Config::default().mode, Mode::Enforce);
        let observe = Config::parse(br#"{"mode":"observe"}"#).unwrap();
        assert_eq!(observe.mode, Mode::Observe);
        for bad in [r#""block""#, r#""Observe""#, "true"] {
            assert_eq!(field_of(&format!(r#"{{"mode":{bad}}}"#)), "mode", "{bad}");
        }
    }

    #[test]
    fn taint_is_on_by_default_and_its_errors_name_the_field() {
        assert!(Config::default().taint.enabled);
        let set = Config::parse(br#"{"taint":{"window_seconds":60,"outbound_tools":["@http"]}}"#)
            .unwrap();
        assert_eq!(set.taint.window_ms, 60_000);
        assert!(set.taint.is_outbound("http_post") && !set.taint.is_outbound("send_email"));
        assert_eq!(
            field_of(r#"{"taint":{"window_seconds":0}}"#),
            "taint.window_seconds"
        );
    }

    #[test]
    fn mcp_pinning_is_off_unless_set_and_needs_the_control_plane() {
        assert!(!Config::default().mcp_pinning);
        assert!(
            Config::parse(br#"{"mcp_pinning":true}"#)
                .unwrap()
                .mcp_pinning
        );
        assert_eq!(
            field_of(r#"{"mcp_pinning":true,"control_plane_cluster":""}"#),
            "mcp_pinning"
        );
        assert_eq!(field_of(r#"{"mcp_pinning":"yes"}"#), "mcp_pinning");
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of(r#"{"max_body_bytes":"big"}"#), "max_body_bytes");
        assert_eq!(field_of(r#"{"max_body_bytes":0}"#), "max_body_bytes");
        assert_eq!(field_of(r#"{"token_header":"Bad Header"}"#), "token_header");
        assert_eq!(
            field_of(r#"{"token_header":"authorization"}"#),
            "token_header"
        );
        assert_eq!(field_of(r#"{"tokn_header":"x"}"#), "tokn_header");
        assert_eq!(
            field_of(r#"{"unknown_route_action":"allow"}"#),
            "unknown_route_action"
        );
        assert_eq!(
            field_of(r#"{"routes":[{"path":"v1","action":"pass"}]}"#),
            "routes[0].path"
        );
        assert_eq!(
            field_of(r#"{"routes":[{"path":"/x","action":"pass","format":"json"}]}"#),
            "routes[0].format"
        );
        assert_eq!(
            field_of(r#"{"routes":[{"path":"/x","action":"inspect","format":"xml"}]}"#),
            "routes"
        );
        assert_eq!(field_of(r#"{"mcp_paths":["mcp"]}"#), "mcp_paths[0]");
        assert_eq!(
            field_of(r#"{"routes":[{"path":"/x","action":"pass","methods":[]}]}"#),
            "routes[0].methods"
        );
        assert_eq!(
            field_of(r#"{"routes":[{"path":"/x","action":"pass","methods":["G T"]}]}"#),
            "routes[0].methods"
        );
        assert_eq!(
            field_of(r#"{"firewall":{"block_threshold":1.5}}"#),
            "firewall.block_threshold"
        );
        assert_eq!(field_of(r#"{"firewall":{"tier":"ultra"}}"#), "firewall");
        assert_eq!(
            field_of(r#"{"firewall":{"response_mode":"hide"}}"#),
            "firewall"
        );
        assert_eq!(
            field_of(
                r#"{"policy":{"rules":[{"id":"r","match":{"tools":[]},"decision":"deny"}],"defaultDecision":"allow"}}"#
            ),
            "policy.rules[0] (id \"r\").match.tools"
        );
        assert_eq!(field_of(r#"{"policy":[]}"#), "policy");
        assert_eq!(
            field_of(r#"{"response_tool_calls":"drop"}"#),
            "response_tool_calls"
        );
        assert_eq!(field_of("[1]"), "(root)");
        assert_eq!(field_of("{"), "(root)");
    }

    #[test]
    fn error_message_is_actionable() {
        let message = Config::parse(br#"{"max_body_bytes":-1}"#)
            .unwrap_err()
            .to_string();
        assert!(message.contains("`max_body_bytes`"), "{message}");
    }
}
