//! MCP answers: a server's `tools/list` result reduced to the tools the agent
//! may call, in a whole JSON answer or a stream of events (Streamable HTTP).
//! A stream cut at an event the filter cannot read answers each request still
//! waiting with a JSON-RPC error, since MCP clients wait for a message with
//! their ID and ignore other events.

use serde_json::{json, Value};
use std::collections::HashSet;

use super::{Piped, Transform};
use crate::stream::{cut_event, parse_event, write_json, Event, Events, Parsed, StreamStop};
use crate::work;

/// Reduces every tool list of a JSON-RPC message (or batch) to the tools
/// `may_call` allows: a `result.tools` (whatever request it answers), and
/// the `params.tools` of a server's `sampling/createMessage`, which the
/// agent's model is offered as it is offered a listed tool. How many were
/// removed.
pub fn filter_tool_list(value: &mut Value, may_call: &dyn Fn(&str) -> bool) -> usize {
    match value {
        Value::Array(batch) => batch
            .iter_mut()
            .map(|message| filter_tool_list(message, may_call))
            .sum(),
        Value::Object(_) => {
            filter_sampling_tools(value, may_call) + retain_tools(value, "/result/tools", may_call)
        }
        _ => 0,
    }
}

/// Reduces the tools a server's `sampling/createMessage` offers the agent's
/// model (its `params.tools`, the method read in any case) to those
/// `may_call` allows: how many were removed.
pub fn filter_sampling_tools(message: &mut Value, may_call: &dyn Fn(&str) -> bool) -> usize {
    let sampling = message
        .get("method")
        .and_then(Value::as_str)
        .is_some_and(|method| method.eq_ignore_ascii_case(SAMPLING));
    if sampling {
        retain_tools(message, "/params/tools", may_call)
    } else {
        0
    }
}

/// Keeps the tools at `pointer` in `message` that `may_call` allows (a tool
/// without a name goes); how many went.
fn retain_tools(message: &mut Value, pointer: &str, may_call: &dyn Fn(&str) -> bool) -> usize {
    let Some(tools) = message.pointer_mut(pointer).and_then(Value::as_array_mut) else {
        return 0;
    };
    let before = tools.len();
    tools.retain(|tool| {
        tool.get("name")
            .and_then(Value::as_str)
            .is_some_and(may_call)
    });
    before - tools.len()
}

/// A server's request for an LLM completion from the agent's side.
const SAMPLING: &str = "sampling/createMessage";
/// A server's request for the user's input.
const ELICITATION: &str = "elicitation/create";

/// Whether a JSON-RPC `method` asks the agent's side for an LLM completion
/// (`sampling/createMessage`) or the user's input (`elicitation/create`):
/// the server's words (messages, a system prompt, tools, a question) then
/// reach the agent's model or user. Read in any case, as a lenient client
/// might match it.
pub fn asks_the_agent(method: &str) -> bool {
    method.eq_ignore_ascii_case(SAMPLING) || method.eq_ignore_ascii_case(ELICITATION)
}

/// Every string of a server's ask (its `params`: messages, system prompt,
/// tools' descriptions, the question and its schema), one per line: what the
/// firewall reads. The tools and the form are handed on whole (to the model,
/// to the user: a property's name is a form's label when it has no title),
/// so their keys are read too, as a tool's definition is for pins; the
/// ask's own keys are the protocol's. Linear in the ask.
pub fn ask_texts(params: &Value) -> String {
    let mut out = String::new();
    let Value::Object(map) = params else {
        crate::taint::strings(params, &mut out);
        return out;
    };
    for (key, value) in map {
        match key.as_str() {
            "tools" | "requestedSchema" => crate::pinning::strings(value, &mut out),
            _ => crate::taint::strings(value, &mut out),
        }
    }
    out
}

/// What becomes of a server's ask, once screened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// It goes on as it came.
    Pass,
    /// Its `params` were rewritten (PII or secrets redacted).
    Changed,
    /// It never reaches the agent.
    Drop,
}

/// What screening the asks of an answer did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Asked {
    /// The answer rewritten; `None` when nothing changed.
    pub body: Option<Vec<u8>>,
    /// Asks dropped.
    pub dropped: usize,
    /// The answer was one ask, dropped: nothing of it can go on.
    pub refused: bool,
}

/// Whether `body` may carry an ask (`asks_the_agent`): the method's words
/// in any case, or a `\u` escape that could spell them. Asks are rare; this
/// spares every other answer a second reading.
pub fn may_ask(body: &[u8]) -> bool {
    work::charge(body.len());
    body.windows(2).any(|pair| pair == b"\\u")
        || contains_folded(body, b"sampling")
        || contains_folded(body, b"elicitation")
}

/// Whether `needle` (lower case) is in `haystack` in any ASCII case.
fn contains_folded(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle))
}

/// Screens the server's asks in a whole MCP answer (one JSON document, or
/// else SSE events), each ask's `params` by `screen`: a dropped ask leaves
/// its batch, an event that was only asks goes whole, a document that was
/// one ask is `refused`.
pub fn screen_asks(
    body: &[u8],
    max_event_bytes: usize,
    screen: &mut dyn FnMut(&mut Value) -> Ask,
) -> Asked {
    let text = body.strip_prefix(BOM).unwrap_or(body);
    // Reading the document (then, if it is not one, its events).
    work::charge(text.len());
    if let Ok(mut value) = serde_json::from_slice::<Value>(text) {
        let mut asked = Asked::default();
        return match screen_messages(&mut value, screen, &mut asked.dropped) {
            Some(false) => asked,
            Some(true) => Asked {
                body: Some(value.to_string().into_bytes()),
                ..asked
            },
            None => Asked {
                refused: true,
                ..asked
            },
        };
    }
    let mut asked = Asked::default();
    let mut out = Events::output(body.len());
    let mut changed = false;
    let mut splitter = crate::stream::EventSplitter::new(max_event_bytes.max(body.len()));
    let mut each = |bytes: &[u8], separator: &[u8], one_line: bool| {
        let event = Event {
            bytes,
            separator,
            one_line,
        };
        match parse_event(event) {
            Parsed::Json(name, mut value) => {
                match screen_messages(&mut value, screen, &mut asked.dropped) {
                    Some(false) => out.pass(event),
                    Some(true) => {
                        changed = true;
                        write_json(&mut out, name.as_deref(), &value);
                    }
                    None => changed = true,
                }
            }
            Parsed::Other | Parsed::Unreadable(_) => out.pass(event),
        }
        true
    };
    splitter.push(body, &mut each);
    let rest = splitter.rest();
    if !rest.is_empty() {
        each(&rest, b"", !rest.contains(&b'\n'));
    }
    if changed {
        asked.body = Some(out.into_bytes());
    }
    asked
}

/// Screens the asks of one message (or batch), counting those `dropped`:
/// whether anything changed, or `None` when all of it goes.
fn screen_messages(
    value: &mut Value,
    screen: &mut dyn FnMut(&mut Value) -> Ask,
    dropped: &mut usize,
) -> Option<bool> {
    match value {
        Value::Array(batch) if !batch.is_empty() => {
            let before = batch.len();
            let mut changed = false;
            batch.retain_mut(|message| match screen_one(message, screen) {
                Ask::Pass => true,
                Ask::Changed => {
                    changed = true;
                    true
                }
                Ask::Drop => false,
            });
            *dropped += before - batch.len();
            match (batch.is_empty(), changed || batch.len() < before) {
                (true, _) => None,
                (false, changed) => Some(changed),
            }
        }
        message => match screen_one(message, screen) {
            Ask::Pass => Some(false),
            Ask::Changed => Some(true),
            Ask::Drop => {
                *dropped += 1;
                None
            }
        },
    }
}

fn screen_one(message: &mut Value, screen: &mut dyn FnMut(&mut Value) -> Ask) -> Ask {
    let asks = message
        .get("method")
        .and_then(Value::as_str)
        .is_some_and(asks_the_agent);
    match message.get_mut("params") {
        Some(params) if asks => screen(params),
        _ => Ask::Pass,
    }
}

/// A `tools/list` filter over a whole MCP answer; `None` when nothing changed.
pub fn filter_tool_list_body(body: &[u8], may_call: &dyn Fn(&str) -> bool) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(body).ok()?;
    (filter_tool_list(&mut value, may_call) > 0).then(|| value.to_string().into_bytes())
}

/// A whole MCP answer that no list filing read, with every tool list in it
/// emptied (`docs/mcp-pinning.md`): the answer to any other request could
/// still carry a `tools/list` result (the ID of a list the client sent on
/// another POST), and a client would take it.
#[derive(Debug, PartialEq, Eq)]
pub enum Unlisted {
    /// No list in it (or only empty ones): it goes on byte for byte.
    Unchanged,
    /// Its lists emptied (`dropped` tools in all), rewritten; `cut` when
    /// its events were cut at one that could not be read (each of the
    /// request's IDs still unanswered then answered with an error).
    Emptied {
        body: Vec<u8>,
        dropped: usize,
        cut: bool,
    },
    /// JSON the reader refuses (`NaN`, a lone surrogate, bytes that are not
    /// UTF-8, UTF-16 or UTF-32 text) that a lenient client may still read: it
    /// cannot be vouched for.
    Unreadable,
}

/// The UTF-8 byte-order mark, which `fetch`'s `json()` skips.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Whether `body` may be JSON in UTF-16 or UTF-32, as Python's
/// `json.loads` tells it (RFC 4627 §3): a byte-order mark of either, or a
/// NUL in the first four bytes (no UTF-8 JSON, SSE or error text has one).
fn wide_json(body: &[u8]) -> bool {
    body.starts_with(b"\xFE\xFF")
        || body.starts_with(b"\xFF\xFE")
        || body.iter().take(4).any(|&b| b == 0)
}

/// Reduces every tool list of a whole MCP answer (whatever request each
/// message answers, single or batch) to the tools `may_call` allows,
/// whatever its label says: read as one JSON document when it is one (after
/// a byte-order mark, as a browser's `json()` reads it), else as SSE events
/// (a client may read a body labelled JSON as events), each event at most
/// `max_event_bytes`; events cut short answer each of `ids` (its request's)
/// still unanswered with an error.
pub fn filter_tool_lists(
    body: &[u8],
    max_event_bytes: usize,
    ids: &[Value],
    may_call: &dyn Fn(&str) -> bool,
) -> Unlisted {
    let text = body.strip_prefix(BOM).unwrap_or(body);
    // Reading the document (then, if it is not one, its events).
    work::charge(text.len());
    match serde_json::from_slice::<Value>(text) {
        Ok(mut value) => match filter_tool_list(&mut value, may_call) {
            0 => Unlisted::Unchanged,
            dropped => Unlisted::Emptied {
                body: value.to_string().into_bytes(),
                dropped,
                cut: false,
            },
        },
        Err(_)
            if text.trim_ascii_start().starts_with(b"{")
                || text.trim_ascii_start().starts_with(b"[")
                || wide_json(text) =>
        {
            Unlisted::Unreadable
        }
        Err(_) => {
            let mut events = Piped::new(
                ToolListStream::new(|tool: &str| may_call(tool)).answering(ids),
                max_event_bytes,
            );
            let mut out = events.push(body);
            out.extend(events.finish());
            match (events.dropped(), events.cut()) {
                (0, false) => Unlisted::Unchanged,
                (dropped, cut) => Unlisted::Emptied {
                    body: out,
                    dropped,
                    cut,
                },
            }
        }
    }
}

/// A `tools/list` filter over an MCP answer streamed as SSE (Streamable HTTP).
pub struct ToolListStream<F: Fn(&str) -> bool> {
    may_call: F,
    /// The stream was cut at an event it could not read.
    cut: bool,
    /// IDs of the requests the stream answers, in the request's order: a cut answers
    /// each one not yet `answered` with a JSON-RPC error, since MCP clients wait for a
    /// message with their ID and ignore other events.
    unanswered: Vec<Value>,
    /// The IDs answered so far, as JSON text: a set, since a batch may answer many
    /// requests at once (a list searched per answer would cost their product).
    answered: HashSet<String>,
    /// Tools removed from the lists so far.
    dropped: usize,
}

/// JSON-RPC "internal error": the answer could not be judged.
const JSONRPC_INTERNAL_ERROR: i64 = -32603;

impl<F: Fn(&str) -> bool> ToolListStream<F> {
    /// A filter of one stream's events.
    pub fn new(may_call: F) -> Self {
        ToolListStream {
            may_call,
            cut: false,
            unanswered: Vec::new(),
            answered: HashSet::new(),
            dropped: 0,
        }
    }

    /// The IDs of the requests this stream answers (see `unanswered`).
    pub fn answering(mut self, ids: &[Value]) -> Self {
        self.unanswered = ids.to_vec();
        self
    }

    /// Whether the stream was cut at an event it could not read.
    pub fn cut(&self) -> bool {
        self.cut
    }

    /// How many tools were removed from its lists so far.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Cuts the stream: each request still unanswered gets a JSON-RPC error
    /// (with none, an `error` event says why).
    fn stop(&mut self, out: &mut Events) {
        self.cut = true;
        let answered = std::mem::take(&mut self.answered);
        let unanswered: Vec<Value> = std::mem::take(&mut self.unanswered)
            .into_iter()
            .filter(|id| !answered.contains(&id.to_string()))
            .collect();
        if unanswered.is_empty() {
            out.generated(&cut_event(Some("message")));
            return;
        }
        let stop = StreamStop::Unreadable;
        for id in unanswered {
            let error = json!({"jsonrpc": "2.0", "id": id, "error": {
                "code": JSONRPC_INTERNAL_ERROR,
                "message": stop.message(),
                "data": {"type": "kalguard_error", "code": stop.code().as_str()}}});
            write_json(out, Some("message"), &error);
        }
    }

    fn judge(&mut self, event: Event<'_>, out: &mut Events) {
        match parse_event(event) {
            Parsed::Json(name, mut value) => {
                let answered = |message: &Value| {
                    let reply = message.get("result").is_some() || message.get("error").is_some();
                    reply.then(|| message.get("id")).flatten().cloned()
                };
                let ids: Vec<Value> = match &value {
                    Value::Array(batch) => batch.iter().filter_map(answered).collect(),
                    message => answered(message).into_iter().collect(),
                };
                if !self.unanswered.is_empty() {
                    work::charge(ids.len());
                    self.answered.extend(ids.iter().map(Value::to_string));
                }
                let dropped = filter_tool_list(&mut value, &self.may_call);
                if dropped > 0 {
                    self.dropped += dropped;
                    write_json(out, name.as_deref(), &value);
                } else {
                    out.pass(event);
                }
            }
            Parsed::Other => out.pass(event),
            Parsed::Unreadable(_) => self.stop(out),
        }
    }
}

impl<F: Fn(&str) -> bool> Transform for ToolListStream<F> {
    fn event(&mut self, event: Event<'_>, out: &mut Events) {
        if !self.cut {
            self.judge(event, out);
        }
    }

    fn too_long(&mut self, out: &mut Events) {
        if !self.cut {
            self.stop(out);
        }
    }

    /// Nothing is held but the event being read.
    fn finish(&mut self, _out: &mut Events) {}

    fn stopped(&self) -> bool {
        self.cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Piped;

    /// Every list of `body` emptied, as with pinning on.
    fn empty_tool_lists(body: &[u8], max_event_bytes: usize, ids: &[Value]) -> Unlisted {
        filter_tool_lists(body, max_event_bytes, ids, &|_| false)
    }

    #[test]
    fn tools_list_answers_keep_only_callable_tools() {
        let answer = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [
            {"name": "search"}, {"name": "delete_repo"}, {"description": "nameless"}]}});
        let may_call = |t: &str| t == "search";
        let body = filter_tool_list_body(answer.to_string().as_bytes(), &may_call).unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["result"]["tools"], json!([{"name": "search"}]));
        let other = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}});
        assert!(filter_tool_list_body(other.to_string().as_bytes(), &may_call).is_none());
        let sse = format!("event: message\ndata: {answer}\n\n");
        let mut stream = Piped::new(ToolListStream::new(may_call), 1 << 20);
        let mut out = Vec::new();
        for piece in sse.as_bytes().chunks(11) {
            out.extend(stream.push(piece));
        }
        out.extend(stream.finish());
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("search") && !out.contains("delete_repo"),
            "{out}"
        );
    }

    #[test]
    fn every_list_of_a_whole_answer_is_emptied_and_nothing_else_is_touched() {
        let list = json!({"jsonrpc": "2.0", "id": "7", "result": {"tools": [{"name": "a"}]}});
        let batch = json!([{"jsonrpc": "2.0", "id": 1, "result": {}}, list]);
        match empty_tool_lists(batch.to_string().as_bytes(), 1 << 20, &[]) {
            Unlisted::Emptied { body, dropped, .. } => {
                let value: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(value[1]["result"]["tools"], json!([]));
                assert_eq!(value[0], batch[0]);
                assert_eq!(dropped, 1);
            }
            other => panic!("{other:?}"),
        }
        // After a byte-order mark (`fetch`'s `json()` skips it), or as events
        // in a body labelled JSON.
        let bom = format!("\u{feff}{list}");
        assert!(matches!(
            empty_tool_lists(bom.as_bytes(), 1 << 20, &[]),
            Unlisted::Emptied { dropped: 1, .. }
        ));
        let events = format!("data: {list}\n\n");
        assert!(matches!(
            empty_tool_lists(events.as_bytes(), 1 << 20, &[]),
            Unlisted::Emptied { dropped: 1, .. }
        ));
        // JSON a lenient client could read: not vouched for.
        for unreadable in [
            " {\"id\": 1, \"x\": NaN}".as_bytes(),
            b"[{\"t\": \"\xff\"}]",
            b"{\"a\": 1} {\"b\": 2}",
        ] {
            assert_eq!(
                empty_tool_lists(unreadable, 1 << 20, &[]),
                Unlisted::Unreadable
            );
        }
        for unchanged in [
            "",
            "Not Found",
            "{\n  \"jsonrpc\": \"2.0\", \"id\": 1, \"result\": {\"tools\": []}\n}",
            "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}",
        ] {
            assert_eq!(
                empty_tool_lists(unchanged.as_bytes(), 1 << 20, &[]),
                Unlisted::Unchanged,
                "{unchanged}"
            );
        }
    }

    #[test]
    fn a_list_in_utf_16_or_utf_32_is_not_vouched_for() {
        // Python's `json.loads` (and `requests`', `httpx`'s `.json()`) read
        // JSON bytes in UTF-16 or UTF-32, told by a byte-order mark or by
        // the NULs of its first four bytes: a list so encoded reads as no
        // JSON and no event here, yet a client takes it.
        let list = json!({"jsonrpc": "2.0", "id": 7, "result": {"tools": [{"name": "a"}]}});
        let text = format!(" {list}");
        let utf16 = |big: bool, bom: bool| -> Vec<u8> {
            let units = bom.then_some(0xFEFF).into_iter().chain(text.encode_utf16());
            units
                .flat_map(|u: u16| {
                    if big {
                        u.to_be_bytes()
                    } else {
                        u.to_le_bytes()
                    }
                })
                .collect()
        };
        let utf32 = |big: bool| -> Vec<u8> {
            text.chars()
                .flat_map(|c| {
                    let c = u32::from(c);
                    if big {
                        c.to_be_bytes()
                    } else {
                        c.to_le_bytes()
                    }
                })
                .collect()
        };
        for body in [
            utf16(true, false),
            utf16(false, false),
            utf16(true, true),
            utf16(false, true),
            utf32(true),
            utf32(false),
        ] {
            assert_eq!(
                empty_tool_lists(&body, 1 << 20, &[]),
                Unlisted::Unreadable,
                "{body:?}"
            );
        }
    }

    #[test]
    fn a_list_spelled_or_framed_otherwise_is_emptied_too() {
        let tools = r#"[{"name":"exfiltrate"}]"#;
        let emptied = |body: &str| match empty_tool_lists(body.as_bytes(), 1 << 20, &[]) {
            Unlisted::Emptied { body, dropped, .. } => {
                let body = String::from_utf8(body).unwrap();
                assert!(dropped > 0 && !body.contains("exfiltrate"), "{body}");
            }
            other => panic!("{body}: {other:?}"),
        };
        // Keys escaped, and a key repeated: the last one wins, as in
        // `JSON.parse`, `json.loads` and Go's decoder.
        emptied(&format!(
            r#"{{"id":1,"\u0072esult":{{"\u0074ools":{tools}}}}}"#
        ));
        emptied(&format!(
            r#"{{"id":1,"result":{{"tools":[]}},"result":{{"tools":{tools}}}}}"#
        ));
        emptied(&format!(
            r#"{{"id":1,"result":{{"tools":[],"tools":{tools}}}}}"#
        ));
        // Events of another name, data on many lines, CR line ends, a
        // comment and an ID.
        let message = format!(r#"{{"id":1,"result":{{"tools":{tools}}}}}"#);
        emptied(&format!("event: other\ndata: {message}\n\n"));
        emptied(&format!(
            "data: {{\"id\":1,\ndata: \"result\":\ndata: {{\"tools\":{tools}}}}}\n\n"
        ));
        emptied(&format!(": hi\rid: 4\revent: message\rdata: {message}\r\r"));
        // Where no client reads a list (an error's data, the params of a
        // request other than a sampling one) nothing is touched.
        for elsewhere in [
            format!(r#"{{"id":1,"error":{{"code":1,"message":"x","data":{{"tools":{tools}}}}}}}"#),
            format!(r#"{{"id":"s1","method":"roots/list","params":{{"tools":{tools}}}}}"#),
        ] {
            assert_eq!(
                empty_tool_lists(elsewhere.as_bytes(), 1 << 20, &[]),
                Unlisted::Unchanged
            );
        }
    }

    #[test]
    fn a_sampling_requests_tools_are_a_list_too() {
        // A server's `sampling/createMessage` offers the agent's model tools
        // (MCP 2025-11-25): reduced as a listed tool is, in any case of the
        // method, in a batch or an event; other requests' params are not lists.
        let ask = |method: &str| {
            json!({"jsonrpc": "2.0", "id": "s1", "method": method, "params": {
                "messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}],
                "maxTokens": 9, "tools": [{"name": "search"}, {"name": "exfiltrate"}]}})
        };
        let may_call = |tool: &str| tool == "search";
        for method in ["sampling/createMessage", "SAMPLING/createmessage"] {
            for body in [
                ask(method).to_string(),
                json!([ask(method), {"jsonrpc": "2.0", "id": 1, "result": {}}]).to_string(),
                format!("event: message\ndata: {}\n\n", ask(method)),
            ] {
                match filter_tool_lists(body.as_bytes(), 1 << 20, &[], &may_call) {
                    Unlisted::Emptied { body, dropped, .. } => {
                        let body = String::from_utf8(body).unwrap();
                        assert!(dropped == 1 && !body.contains("exfiltrate"), "{body}");
                        assert!(body.contains("search"), "{body}");
                    }
                    other => panic!("{body}: {other:?}"),
                }
            }
        }
        let other = json!({"jsonrpc": "2.0", "id": 1, "method": "roots/list",
            "params": {"tools": [{"name": "exfiltrate"}]}});
        assert_eq!(
            filter_tool_lists(other.to_string().as_bytes(), 1 << 20, &[], &may_call),
            Unlisted::Unchanged
        );
    }

    #[test]
    fn asks_the_screen_drops_leave_their_answer_and_others_pass() {
        let ask = |method: &str, text: &str| {
            json!({"jsonrpc": "2.0", "id": 5, "method": method,
                "params": {"systemPrompt": text, "messages": []}})
        };
        let result = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}});
        // The screen drops what says "evil", rewrites what says "mail".
        let mut screen = |params: &mut Value| {
            let texts = ask_texts(params);
            if texts.contains("evil") {
                Ask::Drop
            } else if texts.contains("mail") {
                params["systemPrompt"] = json!("[EMAIL_1]");
                Ask::Changed
            } else {
                Ask::Pass
            }
        };
        // A batch loses the ask; an event that is one ask goes; a document
        // that is one ask is refused; a redacted ask is rewritten.
        let batch = json!([result, ask("elicitation/create", "evil")]).to_string();
        let asked = screen_asks(batch.as_bytes(), 1 << 20, &mut screen);
        assert_eq!((asked.dropped, asked.refused), (1, false));
        let body: Value = serde_json::from_slice(&asked.body.unwrap()).unwrap();
        assert_eq!(body, json!([result]));
        let events = format!(
            "event: message\ndata: {}\n\ndata: {result}\n\n",
            ask("Sampling/CreateMessage", "evil")
        );
        let asked = screen_asks(events.as_bytes(), 1 << 20, &mut screen);
        let body = String::from_utf8(asked.body.unwrap()).unwrap();
        assert_eq!(body, format!("data: {result}\n\n"));
        let one = ask("sampling/createMessage", "evil").to_string();
        assert!(screen_asks(one.as_bytes(), 1 << 20, &mut screen).refused);
        let mail = ask("sampling/createMessage", "mail me").to_string();
        let asked = screen_asks(mail.as_bytes(), 1 << 20, &mut screen);
        assert!(String::from_utf8(asked.body.unwrap())
            .unwrap()
            .contains("[EMAIL_1]"));
        // Escaped keys and method are read as a client reads them.
        let escaped = r#"{"id":5,"\u006dethod":"\u0073ampling/createMessage","params":{"systemPrompt":"evil"}}"#;
        assert!(may_ask(escaped.as_bytes()));
        assert!(screen_asks(escaped.as_bytes(), 1 << 20, &mut screen).refused);
        // Nothing else is touched.
        let clean = json!([result, ask("ping", "evil")]).to_string();
        assert_eq!(
            screen_asks(clean.as_bytes(), 1 << 20, &mut screen),
            Asked::default()
        );
        assert!(!may_ask(result.to_string().as_bytes()));
    }

    #[test]
    fn emptying_lists_grows_linearly_with_the_answer() {
        let batch = |n: usize| -> Box<str> {
            let tools: Vec<Value> = (0..n / 64)
                .map(|i| json!({"name": format!("t{i}"), "description": "x"}))
                .collect();
            json!([{"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}}])
                .to_string()
                .into_boxed_str()
        };
        crate::work::assert_linear("list emptying", "a long list", batch, |body: &str| {
            empty_tool_lists(body.as_bytes(), 1 << 24, &[]);
        });
        let events = |n: usize| -> Box<str> {
            format!(
                "data: {}\n\n",
                json!({"jsonrpc": "2.0", "id": 1, "result": {}})
            )
            .repeat(n / 48)
            .into_boxed_str()
        };
        crate::work::assert_linear("list emptying", "many events", events, |body: &str| {
            empty_tool_lists(body.as_bytes(), 1 << 24, &[]);
        });
    }

    #[test]
    fn screening_asks_grows_linearly_with_the_answer() {
        // Every message an ask (each with an escape, so none is spared a
        // reading), in events and in one batch.
        let ask = json!({"jsonrpc": "2.0", "id": 1, "method": "sampling/createMessage",
            "params": {"systemPrompt": "caf\\u00e9", "messages": [], "maxTokens": 9}});
        let events =
            |n: usize| -> Box<str> { format!("data: {ask}\n\n").repeat(n / 96).into_boxed_str() };
        fn screen(params: &mut Value) -> Ask {
            let _ = ask_texts(params);
            Ask::Pass
        }
        crate::work::assert_linear("ask screening", "many events", events, |body: &str| {
            assert!(may_ask(body.as_bytes()));
            screen_asks(body.as_bytes(), 1 << 24, &mut screen);
        });
        let batch = |n: usize| -> Box<str> {
            let asks: Vec<Value> = (0..n / 96).map(|_| ask.clone()).collect();
            Value::Array(asks).to_string().into_boxed_str()
        };
        crate::work::assert_linear("ask screening", "a long batch", batch, |body: &str| {
            screen_asks(body.as_bytes(), 1 << 24, &mut screen);
        });
    }

    #[test]
    fn a_cut_tools_list_stream_answers_each_waiting_request_with_an_error() {
        // The JSON-RPC messages of a stream, as an MCP client reads them.
        let read_messages = |out: &str| -> Vec<Value> {
            out.split("\n\n")
                .filter_map(|event| event.strip_prefix("event: message\ndata: "))
                .map(|data| serde_json::from_str(data).unwrap())
                .collect()
        };
        // A batch of two requests: the first answered, then an event too long.
        let first = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": []}});
        let mut list = Piped::new(
            ToolListStream::new(|_: &str| true).answering(&[json!(1), json!("two")]),
            128,
        );
        let mut out = list.push(format!("event: message\ndata: {first}\n\n").as_bytes());
        out.extend(list.push(&[b'x'; 200]));
        out.extend(list.push(b"\n\n"));
        out.extend(list.finish());
        let out = String::from_utf8(out).unwrap();
        assert!(list.cut());
        let messages = read_messages(&out);
        assert_eq!(messages.len(), 2, "{out}");
        assert_eq!(messages[0], first);
        assert_eq!(messages[1]["id"], "two");
        assert_eq!(messages[1]["error"]["code"], JSONRPC_INTERNAL_ERROR);
        assert_eq!(messages[1]["error"]["data"]["code"], "KALGUARD_UNAVAILABLE");

        // A batch answered in one event counts every ID in it; JSON the reader
        // refuses then cuts the stream, answering only the request still waiting.
        let batch = json!([{"jsonrpc": "2.0", "id": 1, "result": {"tools": []}},
            {"jsonrpc": "2.0", "id": 2, "error": {"code": -1, "message": "no"}}]);
        let mut list = Piped::new(
            ToolListStream::new(|_: &str| true).answering(&[json!(1), json!(2), json!(3)]),
            1 << 20,
        );
        let mut out = list.push(format!("data: {batch}\n\n").as_bytes());
        out.extend(list.push(b"data: {\"jsonrpc\": \"2.0\", \"id\": 3, \"x\": NaN}\n\n"));
        let out = String::from_utf8(out).unwrap();
        assert!(list.cut() && !out.contains("NaN"), "{out}");
        let errors = read_messages(&out);
        assert_eq!(errors.len(), 1, "{out}");
        assert_eq!(errors[0]["id"], 3);
    }
}
