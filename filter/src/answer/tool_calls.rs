//! The tool gate of an LLM answer: a tool call (OpenAI chat `tool_calls` of
//! functions and custom tools and the legacy `function_call`; Responses
//! `function_call`, `custom_tool_call` and the calls of the client tools
//! computer, local shell, shell and apply patch; Anthropic `tool_use`; JSON or
//! SSE) naming a tool the agent may not call is refused or has that call
//! removed ([`ToolCallMode`]). (An MCP `tools/list` is reduced in
//! `crate::answer::mcp`.)
//!
//! A stream is judged event by event, as a [`Transform`] of the answer's
//! pipeline (an event comes only once it is complete; nothing else is
//! held). A refused stream ends with an error event both SDKs raise on (`data:
//! {"error":…}` for OpenAI, `event: error` for Anthropic), and the rest of the
//! upstream's stream is dropped; so does an event longer than the limit, which
//! cannot be read.

use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::Transform;
use crate::refusal::ErrorCode;
use crate::stream::{cut_event, error_event, parse_event, write_json, Event, Events, Parsed};
use crate::work;

/// What happens to an LLM answer that asks for a tool the agent may not call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolCallMode {
    /// The answer is refused (`TOOL_DENIED`).
    #[default]
    Refuse,
    /// The call is removed and the rest of the answer forwarded. (A Responses
    /// API stream is refused instead: its items cannot be renumbered safely.)
    Remove,
    /// Tool calls in answers are not judged.
    Off,
}

/// The tools one LLM answer may ask for: those the request declared that the
/// agent may call (capabilities and policy); any other name is denied.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCallGate {
    pub(crate) allowed: HashSet<String>,
    pub(crate) mode: ToolCallMode,
    /// The dialect of an error event sent before any named event.
    pub(crate) dialect: Option<&'static str>,
}

/// The outcome of gating a whole answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Gated {
    /// The new body when calls were removed.
    pub body: Option<Vec<u8>>,
    /// Tools the answer asked for that the agent may not call.
    pub denied: Vec<String>,
    /// Whether the answer must be refused.
    pub refused: bool,
}

/// The message of a refused answer.
pub fn refusal_message(denied: &[String]) -> String {
    format!(
        "the model asked to call {}, which this agent may not call",
        denied
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

impl ToolCallGate {
    pub fn new(allowed: HashSet<String>, mode: ToolCallMode) -> ToolCallGate {
        ToolCallGate {
            allowed,
            mode,
            dialect: None,
        }
    }

    /// The dialect of an error event sent before any named event (see
    /// `stream::dialect`).
    pub fn dialect(mut self, event_name: Option<&'static str>) -> Self {
        self.dialect = event_name;
        self
    }

    pub fn mode(&self) -> ToolCallMode {
        self.mode
    }

    pub(crate) fn allows(&self, name: &str) -> bool {
        self.allowed.contains(name)
    }

    /// Gates a whole (non-streamed) answer. A body that is not JSON carries no
    /// tool call the filter could name, and passes.
    pub fn body(&self, body: &[u8]) -> Gated {
        // Parsing the body and walking its tool calls.
        work::charge(2 * body.len());
        let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
            return Gated::default();
        };
        let mut denied = Vec::new();
        let remove = self.mode == ToolCallMode::Remove;
        self.chat_body(&mut value, remove, &mut denied);
        self.anthropic_body(&mut value, remove, &mut denied);
        self.responses_body(&mut value, remove, &mut denied);
        if denied.is_empty() {
            return Gated::default();
        }
        if !remove {
            return Gated {
                body: None,
                denied,
                refused: true,
            };
        }
        Gated {
            body: Some(value.to_string().into_bytes()),
            denied,
            refused: false,
        }
    }

    /// Removes (when `remove`) the entries of `holder[field]` that are calls
    /// (`name_of` names them) of a denied tool; collects the denied names.
    /// Whether any was denied.
    pub(crate) fn retain(
        &self,
        holder: &mut Value,
        field: &str,
        name_of: fn(&Value) -> Option<&str>,
        remove: bool,
        denied: &mut Vec<String>,
    ) -> bool {
        let Some(entries) = holder.get_mut(field).and_then(Value::as_array_mut) else {
            return false;
        };
        let before = denied.len();
        entries.retain(|entry| {
            let Some(name) = name_of(entry) else {
                return true;
            };
            if self.allows(name) {
                return true;
            }
            denied.push(name.to_owned());
            !remove
        });
        denied.len() > before
    }

    /// The gate of one streamed (SSE) answer, a [`Transform`] of its events.
    pub fn stream(&self) -> ToolCallStream {
        ToolCallStream {
            gate: self.clone(),
            openai: BTreeMap::new(),
            openai_kept: BTreeSet::new(),
            anthropic_removed: BTreeSet::new(),
            anthropic_kept: false,
            anthropic_tool_blocks: 0,
            refused: false,
            denied: Vec::new(),
            event_name: self.dialect.map(str::to_owned),
            cut: false,
        }
    }
}

/// Most tool calls one streamed answer may make (OpenAI: distinct choice and call
/// index; Anthropic: `tool_use` blocks); past it the stream is cut, as one with more
/// than `MAX_STREAMS` open delta streams is. Every call event renumbers against the
/// calls before it, so without a bound an answer of n calls would cost n².
pub(crate) const MAX_TOOL_CALLS: usize = 256;

/// One streamed answer being gated.
pub struct ToolCallStream {
    pub(crate) gate: ToolCallGate,
    /// OpenAI chat: (choice, call index) → allowed.
    pub(crate) openai: BTreeMap<(u64, u64), bool>,
    /// OpenAI chat: choices with an allowed call.
    pub(crate) openai_kept: BTreeSet<u64>,
    /// Anthropic: content blocks removed (original indices).
    pub(crate) anthropic_removed: BTreeSet<u64>,
    pub(crate) anthropic_kept: bool,
    /// Anthropic: `tool_use` blocks seen.
    pub(crate) anthropic_tool_blocks: usize,
    pub(crate) refused: bool,
    pub(crate) denied: Vec<String>,
    /// The last `event:` name seen: the dialect of an error event.
    pub(crate) event_name: Option<String>,
    /// An event could not be read (too long, or JSON the reader refuses).
    pub(crate) cut: bool,
}

impl ToolCallStream {
    /// Tools denied so far (for the audit event).
    pub fn denied(&self) -> &[String] {
        &self.denied
    }

    /// Whether the stream was refused (everything after is dropped).
    pub fn refused(&self) -> bool {
        self.refused
    }

    /// Whether the stream was cut at an event it could not read (longer than the
    /// limit, or JSON the reader refuses).
    pub fn cut(&self) -> bool {
        self.cut
    }

    fn judge(&mut self, event: Event<'_>, out: &mut Events) {
        let (name, mut value) = match parse_event(event) {
            Parsed::Json(name, value) => (name, value),
            Parsed::Other => {
                out.pass(event);
                return;
            }
            Parsed::Unreadable(name) => {
                self.refused = true;
                self.cut = true;
                out.generated(&cut_event(name.as_deref().or(self.event_name.as_deref())));
                return;
            }
        };
        if name.is_some() {
            self.event_name.clone_from(&name);
        }
        let changed = if value.get("choices").is_some() {
            self.openai_event(&mut value)
        } else {
            match value.get("type").and_then(Value::as_str) {
                Some("content_block_start" | "content_block_delta" | "content_block_stop") => {
                    match self.anthropic_block(&mut value) {
                        Some(changed) => changed,
                        None => return, // a removed block's event
                    }
                }
                Some("message_delta") => self.anthropic_stop_reason(&mut value),
                Some("response.output_item.added" | "response.output_item.done") => {
                    self.responses_item(&value);
                    false
                }
                _ => false,
            }
        };
        if self.cut {
            out.generated(&cut_event(name.as_deref().or(self.event_name.as_deref())));
        } else if self.refused {
            out.generated(&self.error_event(name.as_deref()));
        } else if changed {
            write_json(out, name.as_deref(), &value);
        } else {
            out.pass(event);
        }
    }

    /// The error event that ends a refused stream, in the stream's own dialect.
    fn error_event(&self, name: Option<&str>) -> Vec<u8> {
        error_event(name, ErrorCode::ToolDenied, &refusal_message(&self.denied))
    }
}

impl Transform for ToolCallStream {
    fn event(&mut self, event: Event<'_>, out: &mut Events) {
        if !self.refused {
            self.judge(event, out);
        }
    }

    fn too_long(&mut self, out: &mut Events) {
        if !self.refused {
            self.refused = true;
            self.cut = true;
            out.generated(&cut_event(self.event_name.as_deref()));
        }
    }

    /// Nothing is held but the event being read.
    fn finish(&mut self, _out: &mut Events) {}

    fn stopped(&self) -> bool {
        self.refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Piped;
    use serde_json::json;

    fn gate(mode: ToolCallMode) -> ToolCallGate {
        ToolCallGate::new(["search".to_owned()].into(), mode)
    }

    /// The gate of one streamed answer, over a stream of its own.
    fn piped(gate: ToolCallGate) -> Piped<ToolCallStream> {
        Piped::new(gate.stream(), 1 << 20)
    }

    fn openai_answer(tools: &[&str]) -> Value {
        let calls: Vec<Value> = tools
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"id": format!("call_{i}"), "type": "function", "function": {"name": t, "arguments": "{}"}}))
            .collect();
        json!({"id": "c", "object": "chat.completion", "choices": [{"index": 0,
            "message": {"role": "assistant", "content": null, "tool_calls": calls}, "finish_reason": "tool_calls"}]})
    }

    #[test]
    fn whole_openai_answers_are_refused_or_trimmed() {
        let body = openai_answer(&["search", "delete_repo"]).to_string();
        let refused = gate(ToolCallMode::Refuse).body(body.as_bytes());
        assert!(refused.refused);
        assert_eq!(refused.denied, ["delete_repo"]);
        let removed = gate(ToolCallMode::Remove).body(body.as_bytes());
        let value: Value = serde_json::from_slice(&removed.body.unwrap()).unwrap();
        assert_eq!(
            value["choices"][0]["message"]["tool_calls"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(value["choices"][0]["finish_reason"], "tool_calls");
        let only_denied = openai_answer(&["delete_repo"]).to_string();
        let value: Value = serde_json::from_slice(
            &gate(ToolCallMode::Remove)
                .body(only_denied.as_bytes())
                .body
                .unwrap(),
        )
        .unwrap();
        assert!(value["choices"][0]["message"].get("tool_calls").is_none());
        assert_eq!(value["choices"][0]["finish_reason"], "stop");
        let fine = openai_answer(&["search"]).to_string();
        assert_eq!(
            gate(ToolCallMode::Refuse).body(fine.as_bytes()),
            Gated::default()
        );
        assert_eq!(
            gate(ToolCallMode::Refuse).body(b"not json"),
            Gated::default()
        );
    }

    #[test]
    fn whole_anthropic_and_responses_answers() {
        let anthropic = json!({"type": "message", "role": "assistant", "content": [
            {"type": "text", "text": "calling"}, {"type": "tool_use", "id": "t", "name": "rm", "input": {}}],
            "stop_reason": "tool_use"});
        let gated = gate(ToolCallMode::Remove).body(anthropic.to_string().as_bytes());
        let value: Value = serde_json::from_slice(&gated.body.unwrap()).unwrap();
        assert_eq!(value["content"].as_array().unwrap().len(), 1);
        assert_eq!(value["stop_reason"], "end_turn");
        assert_eq!(gated.denied, ["rm"]);
        let responses = json!({"object": "response", "output": [
            {"type": "function_call", "name": "rm", "arguments": "{}", "call_id": "c"},
            {"type": "function_call", "name": "search", "arguments": "{}", "call_id": "d"}]});
        let gated = gate(ToolCallMode::Refuse).body(responses.to_string().as_bytes());
        assert!(gated.refused);
        assert_eq!(gated.denied, ["rm"]);
    }

    fn openai_stream(calls: &[(u64, &str)]) -> Vec<u8> {
        let mut s = String::new();
        let chunk = |delta: Value, finish: Value| {
            format!(
                "data: {}\n\n",
                json!({"id": "c", "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            )
        };
        s += &chunk(json!({"role": "assistant", "content": null}), Value::Null);
        for (index, name) in calls {
            s += &chunk(
                json!({"tool_calls": [{"index": index, "id": format!("call_{index}"), "type": "function",
                "function": {"name": name, "arguments": ""}}]}),
                Value::Null,
            );
            s += &chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": "{\"q\":1}"}}]}),
                Value::Null,
            );
        }
        s += &chunk(json!({}), json!("tool_calls"));
        s += "data: [DONE]\n\n";
        s.into_bytes()
    }

    fn run(stream: &mut Piped<ToolCallStream>, input: &[u8], chunk: usize) -> String {
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            out.extend(stream.push(piece));
        }
        out.extend(stream.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_form_of_call_is_named() {
        let g = gate(ToolCallMode::Refuse);
        let custom = json!({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
            "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "rm", "input": "x"}}]}}]});
        let legacy = json!({"choices": [{"index": 0, "finish_reason": "function_call", "message": {"role": "assistant",
            "function_call": {"name": "rm", "arguments": "{}"}}}]});
        let responses = |item: Value| json!({"object": "response", "output": [item]});
        for (answer, tool) in [
            (custom, "rm"),
            (legacy, "rm"),
            (
                responses(
                    json!({"type": "custom_tool_call", "call_id": "c", "name": "rm", "input": "x"}),
                ),
                "rm",
            ),
            (
                responses(
                    json!({"type": "local_shell_call", "call_id": "c", "action": {"type": "exec", "command": ["rm"]}}),
                ),
                "local_shell",
            ),
            (
                responses(
                    json!({"type": "shell_call", "call_id": "c", "action": {"commands": ["rm"]}}),
                ),
                "shell",
            ),
            (
                responses(
                    json!({"type": "computer_call", "call_id": "c", "action": {"type": "click"}}),
                ),
                "computer",
            ),
            (
                responses(json!({"type": "apply_patch_call", "call_id": "c", "operation": {}})),
                "apply_patch",
            ),
        ] {
            let gated = g.body(answer.to_string().as_bytes());
            assert!(gated.refused, "{answer}");
            assert_eq!(gated.denied, [tool]);
        }
        // Hosted tools' items are the provider's business.
        let hosted =
            responses(json!({"type": "web_search_call", "id": "w", "status": "completed"}));
        assert!(!g.body(hosted.to_string().as_bytes()).refused);
    }

    #[test]
    fn streamed_legacy_function_calls_and_custom_calls_are_refused() {
        let chunk = |delta: Value| {
            format!(
                "data: {}\n\n",
                json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
            )
        };
        for delta in [
            json!({"function_call": {"name": "rm", "arguments": ""}}),
            json!({"tool_calls": [{"index": 0, "id": "c", "type": "custom", "custom": {"name": "rm", "input": ""}}]}),
        ] {
            for mode in [ToolCallMode::Refuse, ToolCallMode::Remove] {
                let input = chunk(json!({"role": "assistant"}))
                    + &chunk(delta.clone())
                    + "data: [DONE]\n\n";
                let mut stream = piped(gate(mode));
                let out = run(&mut stream, input.as_bytes(), 7);
                if mode == ToolCallMode::Refuse || delta.get("function_call").is_some() {
                    assert!(stream.refused(), "{out}");
                    assert!(
                        out.contains("TOOL_DENIED") && !out.contains("\"name\":\"rm\""),
                        "{out}"
                    );
                } else {
                    assert!(!out.contains("\"name\":\"rm\""), "{out}");
                }
            }
        }
        let event = |kind: &str, item: Value| {
            format!(
                "event: {kind}\ndata: {}\n\n",
                json!({"type": kind, "output_index": 0, "item": item})
            )
        };
        let input = event(
            "response.output_item.added",
            json!({"type": "local_shell_call", "call_id": "c", "action": {"command": ["rm"]}}),
        );
        let mut stream = piped(gate(ToolCallMode::Remove));
        let out = run(&mut stream, input.as_bytes(), 5);
        assert!(stream.refused() && out.contains("TOOL_DENIED"), "{out}");
    }

    #[test]
    fn a_streamed_openai_call_to_a_denied_tool_is_refused() {
        let input = openai_stream(&[(0, "delete_repo")]);
        for chunk in [1, 7, input.len()] {
            let mut stream = piped(gate(ToolCallMode::Refuse));
            let out = run(&mut stream, &input, chunk);
            assert!(out.contains("\"code\":\"TOOL_DENIED\""), "{out}");
            assert!(!out.contains("delete_repo\",\"arguments"), "{out}");
            assert!(out.ends_with("data: [DONE]\n\n"));
            assert!(stream.refused());
            assert_eq!(stream.denied(), ["delete_repo"]);
        }
        let allowed = openai_stream(&[(0, "search")]);
        let mut stream = piped(gate(ToolCallMode::Refuse));
        assert_eq!(run(&mut stream, &allowed, 5).as_bytes(), allowed.as_slice());
    }

    #[test]
    fn a_streamed_openai_call_is_removed_and_the_rest_renumbered() {
        let input = openai_stream(&[(0, "delete_repo"), (1, "search")]);
        let mut stream = piped(gate(ToolCallMode::Remove));
        let out = run(&mut stream, &input, 3);
        assert!(!out.contains("delete_repo"), "{out}");
        let indices: Vec<u64> = out
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| {
                v.pointer("/choices/0/delta/tool_calls/0/index")
                    .and_then(Value::as_u64)
            })
            .collect();
        assert_eq!(indices, [0, 0]);
        assert!(out.contains("\"finish_reason\":\"tool_calls\""));
        let only_denied = openai_stream(&[(0, "rm")]);
        let out = run(&mut piped(gate(ToolCallMode::Remove)), &only_denied, 4);
        assert!(
            out.contains("\"finish_reason\":\"stop\"") && !out.contains("rm"),
            "{out}"
        );
    }

    fn anthropic_stream(tool: &str) -> Vec<u8> {
        let event = |kind: &str, body: Value| format!("event: {kind}\ndata: {body}\n\n");
        let mut s = String::new();
        s += &event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "m", "content": []}}),
        );
        s += &event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        );
        s += &event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        );
        s += &event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t", "name": tool, "input": {}}}),
        );
        s += &event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
        );
        s += &event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        );
        s += &event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}}),
        );
        s += &event("message_stop", json!({"type": "message_stop"}));
        s.into_bytes()
    }

    #[test]
    fn streamed_anthropic_tool_use_is_refused_or_removed() {
        let mut stream = piped(gate(ToolCallMode::Refuse));
        let out = run(&mut stream, &anthropic_stream("rm"), 6);
        assert!(out.contains("event: error\ndata: {"), "{out}");
        assert!(!out.contains("message_stop"));
        let out = run(
            &mut piped(gate(ToolCallMode::Remove)),
            &anthropic_stream("rm"),
            6,
        );
        assert!(
            !out.contains("tool_use\",\"id") && !out.contains("\"index\":1"),
            "{out}"
        );
        assert!(
            out.contains("end_turn") && out.contains("message_stop"),
            "{out}"
        );
        let fine = anthropic_stream("search");
        assert_eq!(
            run(&mut piped(gate(ToolCallMode::Remove)), &fine, 9).as_bytes(),
            fine.as_slice()
        );
    }

    #[test]
    fn streamed_responses_function_calls_are_refused_in_either_mode() {
        let input = format!(
            "event: response.output_item.added\ndata: {}\n\nevent: response.completed\ndata: {{}}\n\n",
            json!({"type": "response.output_item.added", "output_index": 0, "item": {"type": "function_call", "name": "rm"}})
        );
        let out = run(&mut piped(gate(ToolCallMode::Remove)), input.as_bytes(), 10);
        assert!(
            out.starts_with("event: error\n") && out.contains("TOOL_DENIED"),
            "{out}"
        );
        assert!(!out.contains("response.completed"));
    }

    #[test]
    fn a_stream_of_more_tool_calls_than_the_bound_is_cut() {
        let openai: String = (0..=MAX_TOOL_CALLS)
            .map(|i| {
                let delta = json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":i,
                    "function":{"name":"search","arguments":""}}]}}]});
                format!("data: {delta}\n\n")
            })
            .collect();
        let anthropic: String = (0..=MAX_TOOL_CALLS)
            .map(|i| {
                let start = json!({"type":"content_block_start","index":i,
                    "content_block":{"type":"tool_use","id":"t","name":"search","input":{}}});
                format!("event: content_block_start\ndata: {start}\n\n")
            })
            .collect();
        for input in [openai, anthropic] {
            for mode in [ToolCallMode::Refuse, ToolCallMode::Remove] {
                let mut stream = piped(gate(mode));
                let out = run(&mut stream, input.as_bytes(), 64);
                assert!(stream.cut(), "{mode:?}");
                assert!(out.contains("KALGUARD_UNAVAILABLE"), "{out}");
                // Every call up to the bound went through.
                assert_eq!(
                    out.matches("\"search\"").count(),
                    MAX_TOOL_CALLS,
                    "{mode:?}"
                );
            }
        }
        // Up to the bound, nothing is cut.
        let mut stream = piped(gate(ToolCallMode::Remove));
        let within: String = (0..MAX_TOOL_CALLS)
            .map(|i| {
                let delta = json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":i,
                    "function":{"name":"search","arguments":""}}]}}]});
                format!("data: {delta}\n\n")
            })
            .collect();
        let out = run(&mut stream, within.as_bytes(), 64);
        assert!(!stream.cut() && !out.contains("KALGUARD_UNAVAILABLE"));
    }

    #[test]
    fn streamed_calls_are_read_however_the_events_are_written() {
        let call = json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c",
            "type":"function","function":{"name":"rm","arguments":""}}]}}]})
        .to_string();
        let (head, tail) = call.split_at(call.find("\"delta\"").unwrap());
        for input in [
            format!("data: {call}\r\r"),
            format!("data: {head}\ndata: {tail}\n\n"),
            format!("data: {call}\nid: 4\n\n"),
            format!("data: {call}"), // no end before the stream's
        ] {
            let mut stream = piped(gate(ToolCallMode::Refuse));
            let out = run(&mut stream, input.as_bytes(), 3);
            assert!(stream.refused(), "{input:?}");
            assert!(
                out.contains("TOOL_DENIED") && !out.contains("\"rm\""),
                "{out}"
            );
        }
    }

    #[test]
    fn an_event_longer_than_the_limit_cuts_the_stream() {
        let gate = ToolCallGate::new(["search".to_owned()].into(), ToolCallMode::Refuse);
        let mut stream = Piped::new(gate.stream(), 64);
        let mut out = stream.push(b"data: {\"choices\":[]}\n\n");
        out.extend(stream.push(&[b' '; 100]));
        out.extend(stream.push(b"\n\ndata: {}\n\n"));
        out.extend(stream.finish());
        let out = String::from_utf8(out).unwrap();
        assert!(stream.cut() && stream.refused());
        assert!(
            out.starts_with("data: {\"choices\":[]}\n\ndata: {\"error\""),
            "{out}"
        );
        assert!(out.contains("KALGUARD_UNAVAILABLE") && out.ends_with("data: [DONE]\n\n"));
        let mut list = Piped::new(crate::answer::mcp::ToolListStream::new(|_: &str| true), 64);
        let mut out = list.push(&[b'x'; 100]);
        out.extend(list.finish());
        assert!(list.cut());
        assert!(String::from_utf8(out)
            .unwrap()
            .starts_with("event: error\n"));
    }

    #[test]
    fn unreadable_events_and_byte_order_marks_hide_no_call() {
        let call = |name: &str| {
            json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c",
                "type":"function","function":{"name":name,"arguments":""}}]}}]})
            .to_string()
        };
        // JSON the reader refuses cannot be judged: the stream is cut.
        let nan = call("search").replacen('{', "{\"x\":NaN,", 1);
        let mut stream = piped(gate(ToolCallMode::Refuse));
        let out = run(
            &mut stream,
            format!("data: {nan}\n\ndata: {}\n\n", call("search")).as_bytes(),
            4,
        );
        assert!(
            stream.cut() && out.contains("KALGUARD_UNAVAILABLE") && !out.contains("NaN"),
            "{out}"
        );
        // A byte-order mark does not hide the first event.
        let mut stream = piped(gate(ToolCallMode::Refuse));
        let out = run(
            &mut stream,
            format!("\u{feff}data: {}\n\n", call("rm")).as_bytes(),
            2,
        );
        assert!(stream.refused() && out.contains("TOOL_DENIED"), "{out}");
    }
}
