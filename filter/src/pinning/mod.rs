//! MCP tool pinning, the pure part (`docs/mcp-pinning.md`): what an MCP
//! request asks (tools it calls, whether its answer lists tools or carries
//! the server's instructions), what an answer lists (each tool's canonical
//! hash, and why one looks hostile), the filing the control plane judges,
//! and the answer rewritten with only the tools it pinned.
//!
//! A tool's definition is hashed in a canonical form (object keys sorted,
//! no whitespace, strings and numbers as `serde_json` writes them) of every
//! field but `_meta`: reordered keys or another indentation are the same
//! definition, any other change (a word of the description, a widened
//! `enum` in the schema, a flipped annotation) is another.
//!
//! The control plane decides (first use pins; a change waits for an
//! operator); this module only reads and rewrites, and drops whatever the
//! control plane did not call [`PinVerdict::Pinned`] with the very hash filed.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::answer::{Piped, Transform};
use crate::approval::arguments_sha256 as sha256_hex;
use crate::channel::{Answer, ChannelKey};
use crate::pins::{PinAnswer, PinFiling, PinVerdict, ToolSeen, MAX_TEXT_CHARS, MAX_TOOLS};
use crate::refusal::{ErrorCode, Refusal};
use crate::skeleton::{skeleton, Camel};
use crate::stream::{parse_event, write_json, Event, Events, Parsed};
use crate::work;

/// Longest tool name kept (MCP's own limit): a longer one is dropped, unfiled.
pub const MAX_NAME_BYTES: usize = 128;

/// `value` in canonical form: object keys sorted by their bytes, no
/// whitespace. That is `serde_json`'s compact output, since its maps are
/// B-trees (no `preserve_order` in this workspace: the tests of this module
/// fail if one turns it on).
pub fn canonical(value: &Value) -> String {
    value.to_string()
}

/// One tool of a `tools/list` result, as the pins see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    pub name: String,
    /// SHA-256 of the canonical definition (every field but `_meta`).
    pub sha256: String,
    /// SHA-256 of each field's canonical form.
    pub fields: BTreeMap<String, String>,
    /// The first [`MAX_TEXT_CHARS`] characters of its description.
    pub description: Option<String>,
    /// Every string of the definition but its name (values and keys), one
    /// per line: what the firewall reads for hidden directives.
    pub text: String,
}

impl Tool {
    /// The tool `value` defines; `None` without a string `name` (no client
    /// can call such a tool: it is dropped).
    pub fn of(value: &Value) -> Option<Tool> {
        let map = value.as_object()?;
        let name = map.get("name")?.as_str()?.to_owned();
        let mut definition = map.clone();
        definition.remove("_meta");
        let mut fields = BTreeMap::new();
        let mut text = String::new();
        for (key, value) in &definition {
            let field = canonical(value);
            work::charge(field.len());
            fields.insert(key.clone(), sha256_hex(field.as_bytes()));
            if key != "name" {
                strings(value, &mut text);
            }
        }
        let whole = canonical(&Value::Object(definition));
        let description = map.get("description").and_then(Value::as_str).map(excerpt);
        Some(Tool {
            name,
            description,
            sha256: sha256_hex(whole.as_bytes()),
            fields,
            text,
        })
    }
}

/// Appends every string in `value` (object keys too: a schema's property
/// names reach the model and the user) to `out`, one per line.
pub(crate) fn strings(value: &Value, out: &mut String) {
    let mut line = |text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    match value {
        Value::String(text) => line(text),
        Value::Array(items) => items.iter().for_each(|item| strings(item, out)),
        Value::Object(map) => {
            for (key, value) in map {
                out.push_str(key);
                out.push('\n');
                strings(value, out);
            }
        }
        _ => {}
    }
}

/// Why a tool name is suspect: MCP names are ASCII letters, digits, `_`,
/// `-`, `.` and `/`; anything else (a zero-width character, a Cyrillic
/// look-alike, a space) makes a name another tool's double.
fn name_problem(name: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/');
    (name.is_empty() || !name.chars().all(allowed))
        .then(|| "its name has characters outside A-Z, a-z, 0-9, `_`, `-`, `.`, `/`".to_owned())
}

/// What an MCP request body asks that pinning must know: the tools it
/// calls, whether its answer lists tools or carries instructions
/// (`tools/list`, `initialize`), and the IDs its answer answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Asks {
    pub calls: Vec<String>,
    pub reads_answer: bool,
    /// The IDs of the requests in the body (not its notifications or
    /// responses), in order: an answer cut short answers each with an error.
    pub ids: Vec<Value>,
}

impl Asks {
    /// Reads a JSON-RPC message or batch; a body that is not one asks
    /// nothing (the guard refuses it as a bad request).
    pub fn of(body: &[u8]) -> Asks {
        let mut asks = Asks::default();
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return asks;
        };
        each_in(&value, &mut |message| {
            let method = message.get("method").and_then(Value::as_str);
            if let Some(id) = message
                .get("id")
                .filter(|id| method.is_some() && !id.is_null())
            {
                asks.ids.push(id.clone());
            }
            match method {
                Some("tools/call") => {
                    if let Some(name) = message.pointer("/params/name").and_then(Value::as_str) {
                        asks.calls.push(name.to_owned());
                    }
                }
                Some("tools/list" | "initialize") => asks.reads_answer = true,
                _ => {}
            }
        });
        asks
    }
}

/// Calls `each` on the message, or each message of a batch.
fn each_in(value: &Value, each: &mut dyn FnMut(&Value)) {
    match value {
        Value::Array(batch) => batch.iter().for_each(&mut *each),
        message => each(message),
    }
}

/// What an answer to `tools/list` or `initialize` names: each tool once (the
/// first definition of a name), why some are suspect, and whether the
/// server's instructions were flagged.
#[derive(Debug, Default)]
pub struct Listing {
    tools: Vec<ToolSeen>,
    by_name: HashMap<String, usize>,
    /// Why the server's `instructions` were flagged, if they were.
    pub instructions_flagged: Option<String>,
}

/// Whether a text reads as hidden directives, and why (the firewall's
/// categories); `None` when it is clean.
pub type Scan<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Listing {
    /// Reads every `tools/list` result (`result.tools`) and `initialize`
    /// result (`result.instructions`) in `body`: one JSON document, or SSE
    /// events when `events` (each at most `max_event_bytes`).
    pub fn read(body: &[u8], events: bool, max_event_bytes: usize, scan: Scan) -> Listing {
        let mut listing = Listing::default();
        let mut visit = |message: &mut Value| {
            listing.message(message, scan);
            false
        };
        each_message(body, events, max_event_bytes, &mut visit);
        listing
    }

    fn message(&mut self, message: &Value, scan: Scan) {
        if let Some(instructions) = message
            .pointer("/result/instructions")
            .and_then(Value::as_str)
        {
            if let Some(why) = scan(instructions) {
                self.instructions_flagged = Some(why);
            }
        }
        let Some(tools) = message.pointer("/result/tools").and_then(Value::as_array) else {
            return;
        };
        // Within one list: a name twice, or two names a reader takes for one.
        let mut names: HashSet<&str> = HashSet::new();
        let mut looks: HashMap<String, &str> = HashMap::new();
        let mut flags: Vec<(String, String)> = Vec::new();
        for tool in tools.iter().filter_map(Tool::of) {
            if tool.name.len() <= MAX_NAME_BYTES {
                self.add(tool, scan, &mut flags);
            }
        }
        for tool in tools {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                continue;
            };
            if name.len() > MAX_NAME_BYTES {
                continue;
            }
            if !names.insert(name) {
                flags.push((name.to_owned(), "listed twice in one list".to_owned()));
            }
            for folded in [skeleton(name, Camel::Flat), skeleton(name, Camel::Split)] {
                match looks.get(folded.as_str()) {
                    Some(other) if *other != name => {
                        flags.push((name.to_owned(), format!("its name looks like `{other}`")));
                        flags.push(((*other).to_owned(), format!("its name looks like `{name}`")));
                    }
                    Some(_) => {}
                    None => {
                        looks.insert(folded, name);
                    }
                }
            }
        }
        for (name, why) in flags {
            self.flag(&name, why);
        }
    }

    /// Adds a tool's first definition; a second, other definition of the
    /// same name flags it.
    fn add(&mut self, tool: Tool, scan: Scan, flags: &mut Vec<(String, String)>) {
        if let Some(&at) = self.by_name.get(&tool.name) {
            if self.tools[at].sha256.as_deref() != Some(tool.sha256.as_str()) {
                flags.push((tool.name, "listed with two definitions".to_owned()));
            }
            return;
        }
        if self.tools.len() >= MAX_TOOLS {
            return;
        }
        let suspicious = name_problem(&tool.name).or_else(|| {
            scan(&tool.text).map(|why| format!("the firewall flagged its definition ({why})"))
        });
        self.by_name.insert(tool.name.clone(), self.tools.len());
        self.tools.push(ToolSeen {
            name: tool.name,
            sha256: Some(tool.sha256),
            fields: tool.fields,
            description: tool.description,
            suspicious,
        });
    }

    fn flag(&mut self, name: &str, why: String) {
        if let Some(&at) = self.by_name.get(name) {
            let seen = &mut self.tools[at];
            if seen.suspicious.is_none() {
                seen.suspicious = Some(why);
            }
        }
    }

    /// Whether the answer lists any tool to file.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// How many tools the answer names (once each).
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// The filing of these tools for `server` by one request.
    pub fn filing(&self, request_id: &str, agent_id: &str, server: &str) -> PinFiling {
        PinFiling {
            nonce: format!("{request_id}.list"),
            request_id: request_id.to_owned(),
            agent_id: agent_id.to_owned(),
            server: server.to_owned(),
            tools: self.tools.clone(),
        }
    }

    /// Whether `tool` goes to the agent under `answer`: pinned with the very
    /// definition filed for its name.
    fn keeps(&self, tool: &Tool, answer: Option<&PinAnswer>) -> bool {
        let Some(&at) = self.by_name.get(&tool.name) else {
            return false;
        };
        self.tools[at].sha256.as_deref() == Some(tool.sha256.as_str())
            && answer.is_some_and(|a| a.verdict(&tool.name) == PinVerdict::Pinned)
    }

    /// `body` with every tool the control plane did not pin removed from
    /// each list (all of them when `answer` is `None`: no word, no tool),
    /// the tools of a server's sampling ask removed (never pinned), and
    /// flagged instructions removed; `None` when nothing changed.
    /// Also returns how many tools went.
    pub fn rewrite(
        &self,
        body: &[u8],
        events: bool,
        max_event_bytes: usize,
        answer: Option<&PinAnswer>,
    ) -> (Option<Vec<u8>>, usize) {
        let mut dropped = 0;
        let drop_instructions = self.instructions_flagged.is_some();
        let mut rewrite = |message: &mut Value| {
            let mut changed = false;
            if drop_instructions {
                if let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) {
                    changed |= result.remove("instructions").is_some();
                }
            }
            if let Some(tools) = message
                .pointer_mut("/result/tools")
                .and_then(Value::as_array_mut)
            {
                let before = tools.len();
                tools.retain(|tool| Tool::of(tool).is_some_and(|t| self.keeps(&t, answer)));
                dropped += before - tools.len();
                changed |= tools.len() != before;
            }
            // A server's sampling ask beside the list offers the model
            // tools no one pinned.
            let offered = crate::answer::mcp::filter_sampling_tools(message, &|_| false);
            dropped += offered;
            changed || offered > 0
        };
        let body = each_message(body, events, max_event_bytes, &mut rewrite);
        (body, dropped)
    }
}

/// Calls `each` on every JSON-RPC message of an answer (a JSON document, or
/// SSE events when `events`); the answer rewritten when `each` changed a
/// message (it says so by returning true), else `None`. An SSE event whose
/// JSON cannot be read is dropped: a lenient client might read a list in it.
fn each_message(
    body: &[u8],
    events: bool,
    max_event_bytes: usize,
    each: &mut dyn FnMut(&mut Value) -> bool,
) -> Option<Vec<u8>> {
    if !events {
        let mut value: Value = serde_json::from_slice(body).ok()?;
        work::charge(body.len());
        let changed = match &mut value {
            Value::Array(batch) => batch
                .iter_mut()
                .fold(false, |changed, message| each(message) | changed),
            message => each(message),
        };
        return changed.then(|| value.to_string().into_bytes());
    }
    let mut piped = Piped::new(
        Messages {
            each,
            changed: false,
        },
        max_event_bytes,
    );
    let mut out = piped.push(body);
    out.extend(piped.finish());
    piped.changed.then_some(out)
}

/// The SSE side of [`each_message`].
struct Messages<'a> {
    each: &'a mut dyn FnMut(&mut Value) -> bool,
    changed: bool,
}

impl Transform for Messages<'_> {
    fn event(&mut self, event: Event<'_>, out: &mut Events) {
        match parse_event(event) {
            Parsed::Json(name, mut value) => {
                let changed = match &mut value {
                    Value::Array(batch) => batch
                        .iter_mut()
                        .fold(false, |changed, message| (self.each)(message) | changed),
                    message => (self.each)(message),
                };
                if changed {
                    self.changed = true;
                    write_json(out, name.as_deref(), &value);
                } else {
                    out.pass(event);
                }
            }
            Parsed::Other => out.pass(event),
            Parsed::Unreadable(_) => self.changed = true,
        }
    }

    /// An event too long to judge is dropped, and so is the rest.
    fn too_long(&mut self, _out: &mut Events) {
        self.changed = true;
    }

    fn finish(&mut self, _out: &mut Events) {}

    fn stopped(&self) -> bool {
        false
    }
}

/// The filing of the tools a request calls on `server`: names only, the
/// pins in force decide.
pub fn calls_filing(request_id: &str, agent_id: &str, server: &str, calls: &[String]) -> PinFiling {
    let mut seen = HashSet::new();
    let tools = calls
        .iter()
        .filter(|name| seen.insert(name.as_str()))
        .map(|name| ToolSeen {
            name: name.clone(),
            sha256: None,
            fields: BTreeMap::new(),
            description: None,
            suspicious: None,
        })
        .collect();
    PinFiling {
        nonce: format!("{request_id}.call"),
        request_id: request_id.to_owned(),
        agent_id: agent_id.to_owned(),
        server: server.to_owned(),
        tools,
    }
}

/// The control plane's answer to `filing`, when it came (`status` 200),
/// verifies under `key` for the filing's nonce and names the filing; else
/// why not (for the log).
pub fn verified(
    status: Option<&str>,
    mac: &str,
    body: &[u8],
    key: Option<&ChannelKey>,
    filing: &PinFiling,
) -> Result<PinAnswer, &'static str> {
    match status {
        Some("200") => {}
        None => return Err("no answer came from the control plane in time"),
        Some("401") => return Err("the control plane refused the channel key (401): give Envoy and the control plane the same KALGUARD_CHANNEL_KEY"),
        Some(_) => return Err("the control plane refused the filing"),
    }
    if !key.is_some_and(|key| key.verify(Answer::Pins, &filing.nonce, body, mac)) {
        return Err("the answer does not carry a valid MAC under KALGUARD_CHANNEL_KEY (is something else listening on the control plane's address?)");
    }
    let answer = PinAnswer::parse(body).ok_or("the answer could not be read")?;
    if !answer.answers(filing) {
        return Err("the answer is about another request");
    }
    Ok(answer)
}

/// The refusal of a call to `tool` of `server` the pins do not let pass.
pub fn call_refusal(server: &str, tool: &str, verdict: PinVerdict) -> Refusal {
    let approve =
        format!("an operator re-approves it with `kalguard tools approve {server} {tool}`");
    let (code, message) = match verdict {
        PinVerdict::Suspicious => (
            ErrorCode::ToolSuspicious,
            format!("tool `{tool}` of MCP server {server} was flagged as suspicious and is not callable until {approve}"),
        ),
        PinVerdict::Unknown => (
            ErrorCode::ToolChanged,
            format!("tool `{tool}` of MCP server {server} is not pinned: list the server's tools (tools/list) first; a tool the server never listed is not callable"),
        ),
        PinVerdict::Changed | PinVerdict::Pinned => (
            ErrorCode::ToolChanged,
            format!("tool `{tool}` of MCP server {server} changed its definition since it was pinned and is not callable until {approve}"),
        ),
    };
    let data = serde_json::json!({"server": server, "tool": tool, "pin": verdict.as_str()});
    Refusal::new(code, message).with_data(data)
}

/// The first of `calls` the pins in `answer` do not let pass, with its verdict.
pub fn first_refused<'a>(calls: &'a [String], answer: &PinAnswer) -> Option<(&'a str, PinVerdict)> {
    calls
        .iter()
        .map(|name| (name.as_str(), answer.verdict(name)))
        .find(|(_, verdict)| *verdict != PinVerdict::Pinned)
}

/// Keeps at most [`MAX_TEXT_CHARS`] characters of `text`.
pub fn excerpt(text: &str) -> String {
    text.chars().take(MAX_TEXT_CHARS).collect()
}

#[cfg(test)]
mod tests;
