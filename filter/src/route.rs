//! Route classification: what kind of traffic a request is, decided from its
//! method and path before any body is read.
//!
//! Only documented methods are inspected (`POST` on the LLM and MCP routes);
//! a body on a body-less method is refused; a path is judged as written, in
//! its normal form and case-folded, and a request those readings route
//! differently is refused (see `docs/inspection.md`).

use serde::Deserialize;

use crate::glob;

/// The route settings of the plugin configuration, as [`classify`] reads
/// them (`crate::config::Config` has them; routes know nothing else of it).
pub trait RouteSettings {
    /// Whether the check API's endpoints are served.
    fn check_api(&self) -> bool;
    /// The operator's route rules, the first that matches applies.
    fn rules(&self) -> &[RouteRule];
    /// Path patterns of the MCP servers.
    fn mcp_paths(&self) -> &[String];
    /// What a path no rule knows gets.
    fn unknown_route_action(&self) -> RouteAction;
}

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

impl Format {
    /// The format's name, as the plugin configuration spells it.
    pub fn name(self) -> &'static str {
        match self {
            Format::OpenAiChat => "openai_chat",
            Format::OpenAiResponses => "openai_responses",
            Format::OpenAiCompletions => "openai_completions",
            Format::OpenAiEmbeddings => "openai_embeddings",
            Format::AnthropicMessages => "anthropic_messages",
            Format::Mcp => "mcp",
            Format::Json => "json",
        }
    }
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
    /// Methods the rule applies to (any case); every method when absent. A
    /// `pass` for `GET` (listing stored completions, say) then leaves `POST`
    /// on the same path inspected.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
}

impl RouteRule {
    fn applies_to(&self, method: &str) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|methods| methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
    }
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
    /// MCP's body-less session requests on an MCP path: `GET` opens the
    /// server's event stream, `DELETE` ends the session. Identified, and the
    /// agent needs a tool capability (without one it has no business with an
    /// MCP server); not a check, so not metered.
    McpSession,
    /// Identified, forwarded without body inspection (`pass` rules).
    Pass,
    Deny,
    /// Refused with 400 `BAD_REQUEST` before anything else is read.
    Malformed(Malformed),
}

/// Why a request is refused from its head alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// A body on a method that has none (`GET`, `HEAD`, `DELETE`, `OPTIONS`,
    /// `TRACE`, `CONNECT`): an upstream may read it, the filter would not.
    BodyOnBodilessMethod,
    /// A path no API uses: a fragment, a control character, a `?` or `#`
    /// spelled as an escape, or escapes nested deeper than [`DECODE_ROUNDS`].
    InvalidPath,
    /// A path whose normal form is routed differently from the path as
    /// written (`/v1/models/../chat/completions` under a `/v1/models*` pass
    /// rule): an upstream could act on either reading.
    AmbiguousPath,
}

impl Route {
    /// The route class a decision event names: the inspected format (`mcp`
    /// for MCP session requests); `None` for the check API (the event's type
    /// says which) and for routes that emit no event.
    pub fn event_name(self) -> Option<&'static str> {
        match self {
            Route::Inspect(format) => Some(format.name()),
            Route::McpSession => Some(Format::Mcp.name()),
            Route::CheckApi(_) | Route::Pass | Route::Deny | Route::Malformed(_) => None,
        }
    }
}

impl Malformed {
    /// The refusal's message, safe to show the agent.
    pub fn message(self) -> &'static str {
        match self {
            Malformed::BodyOnBodilessMethod => {
                "a request body is not allowed with this method; send it with POST"
            }
            Malformed::InvalidPath => {
                "request path is not valid (fragment, control character, encoded `?` or `#`, or nested percent-encoding)"
            }
            Malformed::AmbiguousPath => {
                "request path is not in normal form and its normal form is routed differently; send the path as the API documents it"
            }
        }
    }
}

/// Methods whose requests carry no body (RFC 9110 gives their bodies no
/// meaning): a body on one is refused, as an upstream might still read it.
const BODILESS_METHODS: [&str; 6] = ["GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"];

/// Rounds of percent-decoding the normal form applies (`%252e` is `%2e` after
/// one, `.` after two): a path still holding an escape after them is refused.
pub const DECODE_ROUNDS: usize = 3;

/// Classifies a request by method and path (the query string is ignored);
/// `has_body` says whether a body follows the headers.
///
/// Rules are matched against three readings of the path: as written, its
/// normal form ([`normal_form`]), and the normal form with ASCII case ignored
/// (some upstreams route case-insensitively). They must agree, or the
/// request is [`Malformed::AmbiguousPath`]: whatever reading the upstream
/// makes, the filter has judged it.
pub fn classify(config: &impl RouteSettings, method: &str, target: &str, has_body: bool) -> Route {
    if has_body && is_bodiless(method) {
        return Route::Malformed(Malformed::BodyOnBodilessMethod);
    }
    // Methods are case-sensitive, but an upstream may not be: `post` is read
    // as the `POST` it could become.
    let method = method.to_ascii_uppercase();
    let method = method.as_str();
    let written = path_of(target);
    let Some(normal) = normal_form(written) else {
        return Route::Malformed(Malformed::InvalidPath);
    };
    let route = route_of(config, method, written, Case::Exact);
    if route_of(config, method, &normal, Case::Exact) != route
        || route_of(config, method, &normal, Case::Folded) != route
    {
        return Route::Malformed(Malformed::AmbiguousPath);
    }
    route
}

/// The path policy rules judge: the normal form of the target's path, or the
/// path as written when it has none (such a request is refused anyway).
pub fn policy_path(target: &str) -> String {
    let written = path_of(target);
    normal_form(written).unwrap_or_else(|| written.to_owned())
}

/// The path of a request target: everything before the query string. A `#`
/// stays in it (no request target has a fragment; [`normal_form`] refuses it).
fn path_of(target: &str) -> &str {
    target.split('?').next().unwrap_or_default()
}

fn is_bodiless(method: &str) -> bool {
    BODILESS_METHODS
        .iter()
        .any(|m| method.eq_ignore_ascii_case(m))
}

/// How a reading of the path compares with rule patterns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    Exact,
    /// ASCII case ignored on both sides.
    Folded,
}

impl Case {
    fn matches(self, pattern: &str, path: &str) -> bool {
        match self {
            Case::Exact => glob::matches(pattern, path),
            Case::Folded => glob::matches_ignore_ascii_case(pattern, path),
        }
    }

    fn equals(self, known: &str, path: &str) -> bool {
        match self {
            Case::Exact => known == path,
            Case::Folded => known.eq_ignore_ascii_case(path),
        }
    }
}

/// The route of one reading of the path.
fn route_of(config: &impl RouteSettings, method: &str, path: &str, case: Case) -> Route {
    if config.check_api() {
        if let Some(endpoint) = check_endpoint(method, path, case) {
            return Route::CheckApi(endpoint);
        }
    }
    if let Some(rule) = config
        .rules()
        .iter()
        .find(|rule| rule.applies_to(method) && case.matches(&rule.path, path))
    {
        return match rule.action {
            // An operator's inspected route reads every standard method that
            // carries a body, in the rule's format.
            RouteAction::Inspect if ["POST", "PUT", "PATCH"].contains(&method) => {
                Route::Inspect(rule.format.unwrap_or(Format::Json))
            }
            RouteAction::Inspect => unknown(config, method),
            RouteAction::Pass => Route::Pass,
            RouteAction::Deny => Route::Deny,
        };
    }
    if let Some(format) = builtin_format(path, case) {
        return if method == "POST" {
            Route::Inspect(format)
        } else {
            unknown(config, method)
        };
    }
    if config
        .mcp_paths()
        .iter()
        .any(|pattern| case.matches(pattern, path))
    {
        return match method {
            "POST" => Route::Inspect(Format::Mcp),
            "GET" | "DELETE" => Route::McpSession,
            _ => unknown(config, method),
        };
    }
    unknown(config, method)
}

/// A path no rule knows, or a method its route does not document:
/// `unknown_route_action` decides. `inspect` reads a body as generic JSON;
/// a body-less method has nothing to read and is identified and passed.
fn unknown(config: &impl RouteSettings, method: &str) -> Route {
    match config.unknown_route_action() {
        RouteAction::Inspect if is_bodiless(method) => Route::Pass,
        RouteAction::Inspect => Route::Inspect(Format::Json),
        RouteAction::Pass => Route::Pass,
        RouteAction::Deny => Route::Deny,
    }
}

fn builtin_format(path: &str, case: Case) -> Option<Format> {
    [
        ("/v1/chat/completions", Format::OpenAiChat),
        ("/v1/responses", Format::OpenAiResponses),
        ("/v1/completions", Format::OpenAiCompletions),
        ("/v1/embeddings", Format::OpenAiEmbeddings),
        ("/v1/messages", Format::AnthropicMessages),
    ]
    .into_iter()
    .find(|(known, _)| case.equals(known, path))
    .map(|(_, format)| format)
}

fn check_endpoint(method: &str, path: &str, case: Case) -> Option<CheckEndpoint> {
    let post = method == "POST";
    let get = method == "GET" || method == "HEAD";
    let is = |known: &str| case.equals(known, path);
    if is("/health") {
        return Some(if get {
            CheckEndpoint::Health
        } else {
            CheckEndpoint::Unknown
        });
    }
    if post && (is("/v1/prompt/check") || is("/v1/llm/check")) {
        return Some(CheckEndpoint::PromptCheck);
    }
    if post && is("/v1/tool/check") {
        return Some(CheckEndpoint::ToolCheck);
    }
    ["/v1/prompt/", "/v1/llm/", "/v1/tool/"]
        .iter()
        .any(|prefix| {
            path.get(..prefix.len())
                .is_some_and(|start| case.equals(prefix, start))
        })
        .then_some(CheckEndpoint::Unknown)
}

/// The normal form of a request path, as the most lenient upstream could read
/// it: percent-escapes decoded (up to [`DECODE_ROUNDS`] times), `\` read as
/// `/`, `;parameters` dropped from each segment, trailing dots and spaces
/// dropped from a segment (as Windows servers do), `.` and `..` segments
/// resolved, empty segments (`//`) and a trailing `/` dropped. `None` for a
/// path no API uses (see [`Malformed::InvalidPath`]).
///
/// Linear in the path's length: each decoding round is one pass, and there is
/// a fixed number of them.
pub fn normal_form(path: &str) -> Option<String> {
    let mut bytes = path.as_bytes().to_vec();
    let mut rounds = 0;
    while has_escape(&bytes) {
        if rounds == DECODE_ROUNDS {
            return None;
        }
        bytes = percent_decode(&bytes);
        rounds += 1;
    }
    if bytes
        .iter()
        .any(|&b| b.is_ascii_control() || b == b'#' || b == b'?')
    {
        return None;
    }
    let mut segments: Vec<&[u8]> = Vec::new();
    for segment in bytes.split(|&b| b == b'/' || b == b'\\') {
        let segment = segment
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii_end();
        if !segment.is_empty() && segment.iter().all(|&b| b == b'.') {
            // `.` stays; `..` (and a longer run, which some servers also
            // read as a step up) goes up one.
            if segment.len() > 1 {
                segments.pop();
            }
            continue;
        }
        let kept = segment.len()
            - segment
                .iter()
                .rev()
                .take_while(|&&b| b == b'.' || b == b' ')
                .count();
        if kept > 0 {
            segments.push(&segment[..kept]);
        }
    }
    let mut normal = Vec::with_capacity(bytes.len() + 1);
    for segment in &segments {
        normal.push(b'/');
        normal.extend_from_slice(segment);
    }
    if normal.is_empty() {
        normal.push(b'/');
    }
    Some(String::from_utf8_lossy(&normal).into_owned())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte a `%XX` escape at the start of `bytes` stands for.
fn escape_at(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [b'%', high, low, ..] => Some(hex(*high)? << 4 | hex(*low)?),
        _ => None,
    }
}

fn has_escape(bytes: &[u8]) -> bool {
    (0..bytes.len()).any(|i| escape_at(&bytes[i..]).is_some())
}

/// One round of percent-decoding; a `%` that starts no escape stays as it is.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if let Some(b) = escape_at(&bytes[i..]) {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Whether a `content-encoding` list (every line of the header, joined with
/// commas) names a coding other than `identity`: a peer applies each coding
/// listed, so a body with one is unreadable until decoded.
pub fn coded(list: &str) -> bool {
    list.split(',')
        .any(|coding| !coding.trim().eq_ignore_ascii_case("identity"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn route(config: &Config, method: &str, path: &str) -> Route {
        let has_body = ["POST", "PUT", "PATCH"].contains(&method);
        classify(config, method, path, has_body)
    }

    fn with_models_pass() -> Config {
        Config {
            routes: vec![RouteRule {
                path: "/v1/models*".into(),
                action: RouteAction::Pass,
                format: None,
                methods: None,
            }],
            ..Config::default()
        }
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
        assert_eq!(
            route(&c, "post", "/v1/messages"),
            Route::Inspect(Format::AnthropicMessages)
        );
    }

    #[test]
    fn only_post_is_inspected_on_llm_routes_other_methods_are_unknown() {
        let c = Config::default();
        for method in [
            "GET", "HEAD", "DELETE", "OPTIONS", "PUT", "PATCH", "PROPFIND",
        ] {
            assert_eq!(
                route(&c, method, "/v1/chat/completions"),
                Route::Deny,
                "{method}"
            );
            assert_eq!(route(&c, method, "/v1/messages"), Route::Deny, "{method}");
        }
        let inspect = Config {
            unknown_route_action: RouteAction::Inspect,
            ..Config::default()
        };
        assert_eq!(
            route(&inspect, "PUT", "/v1/chat/completions"),
            Route::Inspect(Format::Json)
        );
        assert_eq!(route(&inspect, "GET", "/v1/chat/completions"), Route::Pass);
    }

    #[test]
    fn a_body_on_a_bodiless_method_is_refused_on_every_route() {
        let c = with_models_pass();
        for method in ["GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "get"] {
            for path in [
                "/v1/chat/completions",
                "/mcp",
                "/v1/models",
                "/health",
                "/x",
            ] {
                assert_eq!(
                    classify(&c, method, path, true),
                    Route::Malformed(Malformed::BodyOnBodilessMethod),
                    "{method} {path}"
                );
            }
        }
        assert_eq!(classify(&c, "GET", "/v1/models", false), Route::Pass);
    }

    #[test]
    fn mcp_path_is_configurable() {
        let c = Config::default();
        assert_eq!(route(&c, "POST", "/mcp"), Route::Inspect(Format::Mcp));
        assert_eq!(route(&c, "GET", "/mcp"), Route::McpSession);
        assert_eq!(route(&c, "DELETE", "/mcp"), Route::McpSession);
        assert_eq!(route(&c, "PUT", "/mcp"), Route::Deny);
        assert_eq!(route(&c, "OPTIONS", "/mcp"), Route::Deny);
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
                    methods: None,
                },
                RouteRule {
                    path: "/v1/models*".into(),
                    action: RouteAction::Pass,
                    format: None,
                    methods: None,
                },
                RouteRule {
                    path: "/openai/deployments/*/chat/completions".into(),
                    action: RouteAction::Inspect,
                    format: Some(Format::OpenAiChat),
                    methods: None,
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
        assert_eq!(
            route(&c, "PATCH", "/openai/deployments/prod/chat/completions"),
            Route::Inspect(Format::OpenAiChat)
        );
        assert_eq!(
            route(&c, "GET", "/openai/deployments/prod/chat/completions"),
            Route::Deny
        );
    }

    #[test]
    fn a_rule_can_name_its_methods() {
        let c = Config {
            routes: vec![RouteRule {
                path: "/v1/chat/completions".into(),
                action: RouteAction::Pass,
                format: None,
                methods: Some(vec!["get".into()]),
            }],
            ..Config::default()
        };
        assert_eq!(route(&c, "GET", "/v1/chat/completions"), Route::Pass);
        assert_eq!(
            route(&c, "POST", "/v1/chat/completions"),
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

    #[test]
    fn normal_form_undoes_every_disguise() {
        let cases = [
            ("/v1/chat/completions", "/v1/chat/completions"),
            ("/v1/models/../chat/completions", "/v1/chat/completions"),
            ("/v1/models/%2e%2e/chat/completions", "/v1/chat/completions"),
            ("/v1/models/%2E%2e/chat/completions", "/v1/chat/completions"),
            ("/v1/models/.%2E/chat/completions", "/v1/chat/completions"),
            (
                "/v1/models%2F..%2Fchat%2fcompletions",
                "/v1/chat/completions",
            ),
            ("/v1/models%5c..%5Cchat/completions", "/v1/chat/completions"),
            ("/v1/models\\..\\chat\\completions", "/v1/chat/completions"),
            (
                "/v1/models/%252e%252e/chat/completions",
                "/v1/chat/completions",
            ),
            ("/v1/models/..;/chat/completions", "/v1/chat/completions"),
            ("/v1/models;x=1/../chat/completions", "/v1/chat/completions"),
            ("/v1//chat///completions/", "/v1/chat/completions"),
            ("/v1/./chat/./completions", "/v1/chat/completions"),
            ("/v1/chat/completions.", "/v1/chat/completions"),
            ("/v1/chat/completions.. ", "/v1/chat/completions"),
            ("/v1/chat/completions%20", "/v1/chat/completions"),
            ("/v1/models/.../chat/completions", "/v1/chat/completions"),
            ("/../../v1/chat/completions", "/v1/chat/completions"),
            ("/v1/models/ft%3Agpt-4o%3Aacme", "/v1/models/ft:gpt-4o:acme"),
            ("", "/"),
            ("/", "/"),
            ("/100%", "/100%"),
        ];
        for (written, normal) in cases {
            assert_eq!(normal_form(written).as_deref(), Some(normal), "{written}");
        }
        for invalid in [
            "/v1/models#/../chat/completions",
            "/v1/chat/completions%23x",
            "/v1/chat/completions%3Fx",
            "/v1/models%00/x",
            "/v1/models\t/x",
            "/v1/%2525252e",
        ] {
            assert_eq!(normal_form(invalid), None, "{invalid}");
        }
    }

    #[test]
    fn normal_form_is_linear() {
        // Each round is one pass; a long path of escapes costs a few passes.
        let path = "/%2e%2e".repeat(50_000);
        assert_eq!(normal_form(&path).as_deref(), Some("/"));
        let escaped_percents = "%25".repeat(100_000);
        assert_eq!(
            normal_form(&escaped_percents).map(|n| n.len()),
            Some(100_001)
        );
    }

    #[test]
    fn a_path_that_normalises_across_a_rule_is_refused() {
        let c = with_models_pass();
        let ambiguous = Route::Malformed(Malformed::AmbiguousPath);
        for path in [
            "/v1/models/../chat/completions",
            "/v1/models/%2e%2e/chat/completions",
            "/v1/models/%2E%2E/chat/completions",
            "/v1/models%2F..%2Fchat%2Fcompletions",
            "/v1/models%2f..%2fchat/completions",
            "/v1/models/..%5Cchat/completions",
            "/v1/models\\..\\chat\\completions",
            "/v1/models//../chat/completions",
            "/v1/models/..;/chat/completions",
            "/v1/models/%252e%252e/chat/completions",
            "/v1/models/.../chat/completions",
            "/v1/models/chat/../../chat/completions.",
            "/v1/chat/completions/",
            "/v1//chat/completions",
            "/V1/CHAT/COMPLETIONS",
            "/v1/Chat/completions",
            "/MCP",
            "/mcp/",
            "/v1/models/..%2F..%2Fmcp",
        ] {
            assert_eq!(route(&c, "POST", path), ambiguous, "{path}");
        }
        for path in ["/v1/models#/../chat/completions", "/v1/models%3F/../x"] {
            assert_eq!(
                route(&c, "POST", path),
                Route::Malformed(Malformed::InvalidPath),
                "{path}"
            );
        }
        // The query string is not the path: nothing in it changes the route.
        assert_eq!(
            route(&c, "GET", "/v1/models?/../chat/completions"),
            Route::Pass
        );
        assert_eq!(
            route(&c, "POST", "/v1/chat/completions?x=/../../v1/models"),
            Route::Inspect(Format::OpenAiChat)
        );
        // A change that keeps the route is not refused.
        assert_eq!(route(&c, "GET", "/v1/models/ft%3Agpt-4o"), Route::Pass);
        assert_eq!(route(&c, "GET", "/v1/models/x/../y"), Route::Pass);
        let servers = Config {
            mcp_paths: vec!["/servers/*/mcp".into()],
            ..Config::default()
        };
        assert_eq!(
            route(&servers, "POST", "/servers/GitHub/mcp"),
            Route::Inspect(Format::Mcp)
        );
        assert_eq!(policy_path("/v1/models/x/../y?q"), "/v1/models/y");
    }
}
