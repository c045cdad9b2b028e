//! The official Python SDKs against KalGuard in real Envoy: an answer refused in
//! `block` mode, whole or cut mid-stream, must make the SDK raise, not end quietly
//! with half an answer. The SDKs come from `make tools` (`.tools/venv`, beside
//! Envoy); without them the test says so and is skipped, except under CI.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use kalguard_e2e::stack::{envoy_binary, Options};
use kalguard_e2e::stub::LEAK_MARKER;
use serde_json::{json, Value};
use std::process::Command;

/// Runs each case with the SDKs and prints one JSON line per case: what it raised
/// (or `null`), its text, and whether any text the client got held the value.
const SCRIPT: &str = r#"
import json, os, sys
import anthropic, openai

base, token, ask = os.environ["BASE"], os.environ["TOKEN"], os.environ["ASK"]
LEAK = os.environ["LEAK"]
headers = {"x-kalguard-token": token}
oa = openai.OpenAI(base_url=base + "/v1", api_key="sk-unused", default_headers=headers, max_retries=0, timeout=20)
an = anthropic.Anthropic(base_url=base, api_key="sk-unused", default_headers=headers, max_retries=0, timeout=20)
messages = [{"role": "user", "content": ask}]

# Each case appends the text it receives to `got` as it arrives, so what came
# before an error is checked too.
def chat(got):
    got.append(oa.chat.completions.create(model="gpt-4o", messages=messages).choices[0].message.content)

def chat_stream(got):
    for c in oa.chat.completions.create(model="gpt-4o", messages=messages, stream=True):
        got.extend(choice.delta.content or "" for choice in c.choices)

def responses_stream(got):
    for e in oa.responses.create(model="gpt-4o", input=ask, stream=True):
        got.append(getattr(e, "delta", "") or "")

def anthropic_whole(got):
    got.extend(b.text for b in an.messages.create(model="claude", max_tokens=64, messages=messages).content)

def anthropic_stream(got):
    for e in an.messages.create(model="claude", max_tokens=64, messages=messages, stream=True):
        got.append(getattr(getattr(e, "delta", None), "text", "") or "")

for case in [chat, chat_stream, responses_stream, anthropic_whole, anthropic_stream]:
    got, raised, text = [], None, ""
    try:
        case(got)
    except (openai.APIError, anthropic.APIError) as e:
        raised, text = type(e).__name__, str(e) + " " + json.dumps(getattr(e, "body", None))
    print(json.dumps({"case": case.__name__, "raised": raised, "text": text[:800],
                      "got": "".join(got), "leaked": LEAK in "".join(got)}))
"#;

#[test]
fn the_sdks_raise_on_an_answer_refused_whole_or_mid_stream() {
    let python = envoy_binary().with_file_name("python");
    let sdks = Command::new(&python)
        .args(["-c", "import anthropic, openai"])
        .status()
        .is_ok_and(|s| s.success());
    if !sdks {
        assert!(
            std::env::var_os("CI").is_none(),
            "the OpenAI and Anthropic SDKs are missing from {} (make tools)",
            python.display()
        );
        eprintln!(
            "SKIP: no OpenAI/Anthropic SDK beside {} (make tools)",
            python.display()
        );
        return;
    }
    let config = json!({"hold_request_headers": true,
        "firewall": {"tier": "advanced", "response_mode": "block"}});
    let stack = start(Options {
        plugin_config: Some(config.to_string()),
        ..options()
    });
    let run = |port: u16| {
        let out = Command::new(&python)
            .args(["-c", SCRIPT])
            .env("BASE", format!("http://127.0.0.1:{port}"))
            .env("TOKEN", token(&["prompt:send"]))
            .env("ASK", format!("tell me everything {LEAK_MARKER}"))
            .env("LEAK", "jane.roe")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let results: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(results.len(), 5, "{stdout}");
        results
    };
    // The stand-in alone: every SDK gets the whole answer, value included (what the
    // leak check below must see to mean anything).
    for r in run(stack.upstream_port) {
        assert!(r["raised"].is_null() && r["leaked"] == true, "{r}");
    }
    let results = run(stack.listener_port);
    for r in &results {
        assert!(
            r["raised"].is_string() && r["text"].as_str().unwrap().contains("PROMPT_BLOCKED"),
            "the SDK must raise with KalGuard's code: {r}"
        );
        assert_eq!(r["leaked"], false, "{r}");
    }
    // A whole answer is refused with its status; the SDKs name it.
    let raised = |case: &str| {
        results
            .iter()
            .find(|r| r["case"] == case)
            .map(|r| r["raised"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(raised("chat").as_deref(), Some("PermissionDeniedError"));
    assert_eq!(
        raised("anthropic_whole").as_deref(),
        Some("PermissionDeniedError")
    );
}
