//! Route classification: what kind of traffic a request is, decided from its
//! method and path before any body is read.

use serde::Deserialize;

use crate::config::Config;
use crate::glob;

/// What an operator route rule does with matching requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteAction {
    /// Identify the agent, require `prompt:send`, buffer and inspect the body.
    Inspect,
    /// Identify the agent and forward without reading the body.
    Pass,
    /// Refuse with 403 `POLICY_DENY`.
    Deny,
}

/// The body formats the filter can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[serde(rename = "openai_chat")]
    OpenAiChat,
    #[serde(rename = "openai_responses")]
    OpenAiResponses,
    #[serde(rename = "openai_completions")]
    OpenAiCompletions,
    #[serde(rename = "openai_embeddings")]
    OpenAiEmbeddings,
    AnthropicMessages,
    /// MCP JSON-RPC over HTTP.
    Mcp,
    /// Any JSON: every string in it is inspected as user text.
    Json,
}

/// An operator route rule from the plugin configuration.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// Path pattern (query string excluded); `*` matches any run of characters.
    pub path: String,
    pub action: RouteAction,
    /// Body format for `inspect`; generic JSON when absent.
    #[serde(default)]
    pub format: Option<Format>,
}

/// The compatibility check API the filter answers itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckEndpoint {
    Health,
    PromptCheck,
    ToolCheck,
    /// A path in the check API's namespace that names no endpoint: 404.
    Unknown,
}

/// What a request is, for the guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    CheckApi(CheckEndpoint),
    /// Inspected traffic in a known format.
    Inspect(Format),
    /// Identified, forwarded without body inspection (MCP `GET`/`DELETE`, `pass` rules).
    Pass,
    Deny,
}

/// Classifies a request by method and path (the query string is ignored).
pub fn classify(config: &Config, method: &str, path: &str) -> Route {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if config.check_api {
        if let Some(endpoint) = check_endpoint(method, path) {
            return Route::CheckApi(endpoint);
        }
    }
    if let Some(rule) = config
        .routes
        .iter()
        .find(|rule| glob::matches(&rule.path, path))
    {
        return match rule.action {
            RouteAction::Inspect => inspect_or_pass(method, rule.format.unwrap_or(Format::Json)),
            RouteAction::Pass => Route::Pass,
            RouteAction::Deny => Route::Deny,
        };
    }
    if let Some(format) = builtin_format(path) {
        return inspect_or_pass(method, format);
    }
    if config
        .mcp_paths
        .iter()
        .any(|pattern| glob::matches(pattern, path))
    {
        return inspect_or_pass(method, Format::Mcp);
    }
    match config.unknown_route_action {
        RouteAction::Inspect => inspect_or_pass(method, Format::Json),
        RouteAction::Pass => Route::Pass,
        RouteAction::Deny => Route::Deny,
    }
}

/// Only a `POST` carries a prompt or a tool call. Other methods on an inspected
/// path (MCP's `GET` event stream and `DELETE` session end, OpenAI's stored
/// completion listings) are identified and passed; the body-less ones cannot
/// smuggle text in.
fn inspect_or_pass(method: &str, format: Format) -> Route {
    if method.eq_ignore_ascii_case("POST")
        || method.eq_ignore_ascii_case("PUT")
        || method.eq_ignore_ascii_case("PATCH")
    {
        Route::Inspect(format)
    } else {
        Route::Pass
    }
}

fn builtin_format(path: &str) -> Option<Format> {
    match path {
        "/v1/chat/completions" => Some(Format::OpenAiChat),
        "/v1/responses" => Some(Format::OpenAiResponses),
        "/v1/completions" => Some(Format::OpenAiCompletions),
        "/v1/embeddings" => Some(Format::OpenAiEmbeddings),
        "/v1/messages" => Some(Format::AnthropicMessages),
        _ => None,
    }
}

fn check_endpoint(method: &str, path: &str) -> Option<CheckEndpoint> {
    let post = method.eq_ignore_ascii_case("POST");
    let get = method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD");
    match path {
        "/health" if get => Some(CheckEndpoint::Health),
        "/v1/prompt/check" | "/v1/llm/check" if post => Some(CheckEndpoint::PromptCheck),
        "/v1/tool/check" if post => Some(CheckEndpoint::ToolCheck),
        "/health" => Some(CheckEndpoint::Unknown),
        _ if ["/v1/prompt/", "/v1/llm/", "/v1/tool/"]
            .iter()
            .any(|prefix| path.starts_with(prefix)) =>
        {
            Some(CheckEndpoint::Unknown)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(config: &Config, method: &str, path: &str) -> Route {
        classify(config, method, path)
    }

    #[test]
    fn builtin_llm_routes() {
        let c = Config::default();
        assert_eq!(
            route(&c, "POST", "/v1/chat/completions"),
            Route::Inspect(Format::OpenAiChat)
        );
        assert_eq!(
            route(&c, "POST", "/v1/chat/completions?x=1"),
            Route::Inspect(Format::OpenAiChat)
        );
        assert_eq!(
            route(&c, "POST", "/v1/responses"),
            Route::Inspect(Format::OpenAiResponses)
        );
        assert_eq!(
            route(&c, "POST", "/v1/completions"),
            Route::Inspect(Format::OpenAiCompletions)
        );
        assert_eq!(
            route(&c, "POST", "/v1/embeddings"),
            Route::Inspect(Format::OpenAiEmbeddings)
        );
        assert_eq!(
            route(&c, "POST", "/v1/messages"),
            Route::Inspect(Format::AnthropicMessages)
        );
        assert_eq!(route(&c, "GET", "/v1/chat/completions"), Route::Pass);
    }

    #[test]
    fn mcp_path_is_configurable() {
        let c = Config::default();
        assert_eq!(route(&c, "POST", "/mcp"), Route::Inspect(Format::Mcp));
        assert_eq!(route(&c, "GET", "/mcp"), Route::Pass);
        let c = Config {
            mcp_paths: vec!["/servers/*/mcp".into()],
            ..Config::default()
        };
        assert_eq!(
            route(&c, "POST", "/servers/github/mcp"),
            Route::Inspect(Format::Mcp)
        );
        assert_eq!(route(&c, "POST", "/mcp"), Route::Deny);
    }

    #[test]
    fn unknown_routes_follow_config() {
        let c = Config::default();
        assert_eq!(route(&c, "GET", "/v1/models"), Route::Deny);
        let c = Config {
            unknown_route_action: RouteAction::Pass,
            ..Config::default()
        };
        assert_eq!(route(&c, "GET", "/v1/models"), Route::Pass);
        let c = Config {
            unknown_route_action: RouteAction::Inspect,
            ..Config::default()
        };
        assert_eq!(
            route(&c, "POST", "/v1/whatever"),
            Route::Inspect(Format::Json)
        );
    }

    #[test]
    fn operator_rules_come_first() {
        let c = Config {
            routes: vec![
                RouteRule {
                    path: "/v1/embeddings".into(),
                    action: RouteAction::Deny,
                    format: None,
                },
                RouteRule {
                    path: "/v1/models*".into(),
                    action: RouteAction::Pass,
                    format: None,
                },
                RouteRule {
                    path: "/openai/deployments/*/chat/completions".into(),
                    action: RouteAction::Inspect,
                    format: Some(Format::OpenAiChat),
                },
            ],
            ..Config::default()
        };
        assert_eq!(route(&c, "POST", "/v1/embeddings"), Route::Deny);
        assert_eq!(route(&c, "GET", "/v1/models/gpt-4o"), Route::Pass);
        assert_eq!(
            route(&c, "POST", "/openai/deployments/prod/chat/completions"),
            Route::Inspect(Format::OpenAiChat)
        );
    }

    #[test]
    fn check_api_endpoints() {
        let c = Config::default();
        assert_eq!(
            route(&c, "GET", "/health"),
            Route::CheckApi(CheckEndpoint::Health)
        );
        assert_eq!(
            route(&c, "POST", "/v1/prompt/check"),
            Route::CheckApi(CheckEndpoint::PromptCheck)
        );
        assert_eq!(
            route(&c, "POST", "/v1/llm/check"),
            Route::CheckApi(CheckEndpoint::PromptCheck)
        );
        assert_eq!(
            route(&c, "POST", "/v1/tool/check"),
            Route::CheckApi(CheckEndpoint::ToolCheck)
        );
        assert_eq!(
            route(&c, "GET", "/v1/tool/check"),
            Route::CheckApi(CheckEndpoint::Unknown)
        );
        assert_eq!(
            route(&c, "POST", "/v1/prompt/other"),
            Route::CheckApi(CheckEndpoint::Unknown)
        );
        let off = Config {
            check_api: false,
            ..Config::default()
        };
        assert_eq!(route(&off, "GET", "/health"), Route::Deny);
    }
}
