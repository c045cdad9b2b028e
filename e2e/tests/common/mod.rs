//! Helpers shared by the end-to-end test files: tokens, stacks, requests.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

pub mod cloud;
pub mod istio;

use kalguard_e2e::stack::{Options, Stack};
use kalguard_filter::token::{mint, Claims};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const SECRET: &str = "e2e-signing-secret-5b1f0c";

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

pub fn token_with(secret: &str, capabilities: &[&str], exp: i64) -> String {
    mint(
        &Claims {
            sub: "agent-e2e".into(),
            capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
            exp,
            iat: Some(now()),
            nbf: None,
            iss: Some("kalguard".into()),
            metadata: None,
        },
        secret,
    )
}

pub fn token(capabilities: &[&str]) -> String {
    token_with(SECRET, capabilities, now() + 3600)
}

pub fn options() -> Options {
    Options {
        env: vec![("KALGUARD_TOKEN_SECRET".into(), SECRET.into())],
        ..Options::default()
    }
}

/// Waits up to 15 s for `ok`, polling every 100 ms.
pub fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// Starts a stack; with `KALGUARD_E2E_SHAPE=istio`, in the Istio-shaped
/// sidecar configuration unless the test brings its own ([`istio::shaped`]).
pub fn start(options: Options) -> Stack {
    let options = if istio::active() && options.envoy_yaml.is_none() {
        istio::shaped(options)
    } else {
        options
    };
    Stack::start(options).unwrap_or_else(|e| panic!("stack did not start: {e}"))
}

/// Starts a stack that Envoy must refuse to run, in the shape [`start`]
/// would use; the start failure, with Envoy's log.
pub fn expect_exit(options: Options) -> Result<String, kalguard_e2e::stack::StartError> {
    let options = if istio::active() && options.envoy_yaml.is_none() {
        istio::shaped(options)
    } else {
        options
    };
    Stack::expect_exit(options)
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts a documented refusal: status, code, and the envelope both SDKs read.
    pub fn assert_refused(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        let body = self.json();
        assert_eq!(body["allowed"], false);
        assert_eq!(body["errorCode"], code, "{body}");
        assert_eq!(body["error"]["type"], "kalguard_error");
        assert_eq!(body["error"]["code"], code);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        let request_id = self
            .header("x-kalguard-request-id")
            .expect("x-kalguard-request-id on a refusal");
        assert_eq!(body["requestId"], request_id);
        assert_eq!(self.header("content-type"), Some("application/json"));
    }
}

/// Sends a request; in the Istio shape one without a `host` header goes to
/// [`host()`], the provider's name, as the agent's does in the mesh.
pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
    let mut request = ureq::request(method, url).timeout(Duration::from_secs(20));
    if istio::active() && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request = request.set("host", host());
    }
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let result = match body {
        Some(body) => request.send_bytes(body),
        None => request.call(),
    };
    let response = match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .filter_map(|n| response.header(&n).map(|v| (n.clone(), v.to_owned())))
        .collect();
    let body = response.into_string().unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

pub fn post(stack: &Stack, path: &str, token: Option<&str>, body: &Value) -> Reply {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("authorization", "Bearer sk-provider-key"),
    ];
    if let Some(token) = token {
        headers.push(("x-kalguard-token", token));
    }
    send(
        "POST",
        &stack.url(path),
        &headers,
        Some(body.to_string().as_bytes()),
    )
}

pub fn chat(content: &str) -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": content}]})
}

/// A call to the filter's check API with the token as `Authorization: Bearer`.
pub fn check(stack: &Stack, path: &str, token: &str, body: &Value) -> Reply {
    let bearer = format!("Bearer {token}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    send(
        "POST",
        &stack.url(path),
        &headers,
        Some(body.to_string().as_bytes()),
    )
}

/// The assistant's text in a non-streaming OpenAI chat answer.
pub fn chat_answer(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The `Host` a test's request names: any in the demo shape (one virtual host
/// for `*`), the provider's in the Istio shape (routes by host, and refuses
/// the undeclared ones with `block_all`).
pub fn host() -> &'static str {
    if istio::active() {
        istio::PROVIDER
    } else {
        "llm"
    }
}

/// True, with the reason printed, when the test cannot hold in the Istio
/// shape for a reason of Istio's (docs/testing.md lists them): the caller
/// returns.
pub fn skip_in_istio_shape(reason: &str) -> bool {
    let skip = istio::active();
    if skip {
        // Straight to stderr, past the test harness's capture, so `make
        // test` shows every skip.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "skipped in the Istio shape: {reason}");
    }
    skip
}

/// How many refusals with `code` Envoy's stats count: the `code` label of
/// the stats tags (envoy.yaml's, and the EnvoyFilter's in the Istio shape).
pub fn refusals(stack: &Stack, code: &str) -> u64 {
    stack.metric(&format!("kalguard_refusals{{code=\"{code}\"}}"))
}

/// The stand-in read directly over plain HTTP, for tests that compare with
/// what the upstream sent: the stack's own, or in the Istio shape (where it
/// speaks TLS) a second, identical one beside an Envoy without the filter.
/// The stand-in's answers depend on the request alone.
pub struct DirectStandIn {
    pub port: u16,
    _plain: Option<Stack>,
}

pub fn direct_stand_in(stack: &Stack) -> DirectStandIn {
    if istio::active() {
        let plain = Stack::start(Options {
            with_filter: false,
            ..Options::default()
        })
        .unwrap_or_else(|e| panic!("plain stack did not start: {e}"));
        DirectStandIn {
            port: plain.upstream_port,
            _plain: Some(plain),
        }
    } else {
        DirectStandIn {
            port: stack.upstream_port,
            _plain: None,
        }
    }
}

/// The real Cloud binary, for the Cloud-mode tests (approvals, pins).
pub mod real_cloud;

/// Runs the `kalguard` CLI (`args`: `approvals list --json`, `tools approve …`)
/// against the stack's control plane, on its socket or port, under `key`.
pub fn kalguard_with(stack: &Stack, key: &str, args: &[&str]) -> std::process::Output {
    let listen = match &stack.control_plane_socket {
        Some(socket) => format!("unix:{}", socket.display()),
        None => format!("127.0.0.1:{}", stack.control_plane_port),
    };
    std::process::Command::new(kalguard_e2e::stack::control_plane_binary())
        .args(args)
        .env("KALGUARD_CHANNEL_KEY", key)
        .env("KALGUARD_LISTEN", listen)
        .output()
        .unwrap()
}

/// [`kalguard_with`] under the stack's channel key: the command's output,
/// once it succeeded.
pub fn kalguard(stack: &Stack, args: &[&str]) -> String {
    let output = kalguard_with(stack, &stack.channel_key, args);
    assert!(
        output.status.success(),
        "kalguard {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// One MCP `message` POSTed to `path` with the agent `token`, the stand-in
/// server told by `told` headers what to answer.
pub fn mcp_post(
    stack: &Stack,
    path: &str,
    token: &str,
    message: &Value,
    told: &[(&str, &str)],
) -> Reply {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("x-kalguard-token", token),
    ];
    headers.extend_from_slice(told);
    send(
        "POST",
        &stack.url(path),
        &headers,
        Some(message.to_string().as_bytes()),
    )
}

/// Envoy with MCP pinning on for `mcp_paths`, headers held, beside the real
/// control plane (which keeps the pins).
pub fn mcp_pinning_stack(mcp_paths: &[&str]) -> Stack {
    start(Options {
        plugin_config: Some(
            json!({"hold_request_headers": true, "mcp_pinning": true, "mcp_paths": mcp_paths})
                .to_string(),
        ),
        control_plane: Some(vec![("KALGUARD_TOKEN_SECRET".into(), SECRET.into())]),
        ..options()
    })
}

/// A streamed chat request with `prompt`, the stand-in upstream answering with
/// one SSE event per piece of `pieces` (one envelope, no delay between them).
pub fn stream_pieces(stack: &Stack, prompt: &str, pieces: &[&str]) -> Reply {
    let t = token(&["prompt:send"]);
    let pieces_json = serde_json::to_string(pieces).unwrap();
    let body = json!({"model": "gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": prompt}]})
    .to_string();
    send(
        "POST",
        &stack.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("x-kalguard-token", t.as_str()),
            (kalguard_e2e::stub::CHUNK_DELAY_HEADER, "0"),
            (
                kalguard_e2e::stub::STREAM_PIECES_HEADER,
                pieces_json.as_str(),
            ),
        ],
        Some(body.as_bytes()),
    )
}
