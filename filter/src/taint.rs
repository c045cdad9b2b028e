//! Taint escalation (`docs/taint.md`): once a conversation carried text the
//! firewall flagged in a tool result or a supplied document (a possible
//! indirect injection), the tool calls that would send data out (e-mail,
//! HTTP, file writes, payments, messages) need a person's approval for a
//! window of time, instead of passing.
//!
//! This module holds the pure parts: the plugin configuration's `taint`
//! ([`TaintConfig`], its outbound tool patterns matched on normalised names),
//! what in a judged request counts as a flagged source ([`flagged`]), the
//! per-agent taint kept in Envoy's shared data across worker VMs ([`Marks`],
//! [`record`], [`lookup`]: one bounded record per agent, compare-and-swap
//! writes) and the `REQUIRE_APPROVAL` refusal that says why ([`Taint::refusal`]).
//! The exchange applies it to MCP `tools/call` requests and to the tool calls
//! of an LLM answer.

use serde_json::{json, Map, Value};

use crate::quota::{Store, StoreError};
use crate::refusal::{ErrorCode, Refusal};
use crate::request::{Role, Segment};

/// The rule ID a taint's approval is filed under (and approved by).
pub const RULE_ID: &str = "taint";
/// Default `window_seconds`: ten minutes, a conversation's working span.
pub const DEFAULT_WINDOW_SECONDS: u64 = 600;
/// Longest `window_seconds`: one day.
const MAX_WINDOW_SECONDS: u64 = 86_400;
/// Default `session_header`.
pub const DEFAULT_SESSION_HEADER: &str = "x-kalguard-session";
/// Most taints one agent's record keeps (one per session, plus the
/// agent-wide one); past it the record folds into one agent-wide taint.
const MAX_MARKS: usize = 16;
/// Longest session ID kept (longer ones are cut: two cut alike share a taint).
const MAX_SESSION_BYTES: usize = 128;
/// CAS attempts before a write gives up (another worker kept winning).
const CAS_ATTEMPTS: usize = 8;

/// The outbound tool categories, by the name a configuration may use
/// (`"@email"`), with the patterns each stands for. Names are matched after
/// [`normalise`], so `send_email`, `sendEmail` and `send-email` are one.
const CATEGORIES: [(&str, &[&str]); 5] = [
    (
        "email",
        &[
            "send_email*",
            "send_mail*",
            "*send*email*",
            "*send*mail",
            "email_send*",
            "mail_send*",
            "reply_*mail*",
            "forward_*mail*",
            "gmail_*send*",
            "smtp_*",
            "draft_*mail*",
        ],
    ),
    (
        "http",
        &[
            "http_*",
            "https_*",
            "*http_request*",
            "fetch",
            "fetch_*",
            "web_fetch*",
            "curl*",
            "wget*",
            "*webhook*",
            "post_url*",
            "open_url*",
            "browse*",
            "navigate*",
        ],
    ),
    (
        "file_write",
        &[
            "write_file*",
            "*write_file*",
            "file_write*",
            "*file_write*",
            "edit_file*",
            "create_file*",
            "append_*file*",
            "save_file*",
            "*upload*",
            "move_file*",
            "delete_file*",
        ],
    ),
    (
        "payments",
        &[
            "payments_*",
            "payment_*",
            "*payment*",
            "pay_invoice*",
            "pay_bill*",
            "send_money*",
            "*transfer_funds*",
            "*wire_transfer*",
            "refund*",
            "charge_*",
            "*create_invoice*",
        ],
    ),
    (
        "messages",
        &[
            "send_message*",
            "post_message*",
            "*send_sms*",
            "*send_slack*",
            "slack_*post*",
            "slack_*send*",
            "*post_tweet*",
            "tweet*",
            "*send_dm*",
        ],
    ),
];

/// The plugin configuration's `taint`, prepared once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaintConfig {
    /// On by default: it acts only where the firewall already flagged text
    /// the agent did not write.
    pub enabled: bool,
    /// How long a taint holds after the last flagged text, milliseconds.
    pub window_ms: u64,
    /// Tools that send data out, as normalised `*` patterns.
    outbound: Vec<String>,
    /// The request header naming the agent's conversation (empty: none);
    /// a taint recorded under one holds that conversation only.
    pub session_header: String,
}

impl Default for TaintConfig {
    fn default() -> TaintConfig {
        TaintConfig {
            enabled: true,
            window_ms: DEFAULT_WINDOW_SECONDS * 1000,
            outbound: expand(CATEGORIES.iter().map(|(name, _)| format!("@{name}"))),
            session_header: DEFAULT_SESSION_HEADER.to_owned(),
        }
    }
}

/// `@category` names replaced by their patterns; every pattern normalised.
fn expand(patterns: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    for pattern in patterns {
        match pattern
            .strip_prefix('@')
            .and_then(|name| CATEGORIES.iter().find(|(n, _)| *n == name))
        {
            Some((_, members)) => out.extend(members.iter().map(|p| normalise(p))),
            None => out.push(normalise(&pattern)),
        }
    }
    out
}

impl TaintConfig {
    /// Reads `{"enabled", "window_seconds", "outbound_tools", "session_header"}`;
    /// an error names the field under `taint`.
    pub fn from_value(value: &Value) -> Result<TaintConfig, (String, String)> {
        let fail = |field: &str, reason: &str| (format!("taint.{field}"), reason.to_owned());
        let Value::Object(map) = value else {
            return Err(("taint".into(), "must be an object".into()));
        };
        let mut config = TaintConfig::default();
        for (key, value) in map {
            match key.as_str() {
                "enabled" => {
                    config.enabled = value
                        .as_bool()
                        .ok_or_else(|| fail(key, "must be true or false"))?
                }
                "window_seconds" => {
                    let seconds = value
                        .as_u64()
                        .filter(|s| (1..=MAX_WINDOW_SECONDS).contains(s))
                        .ok_or_else(|| {
                            fail(key, "must be a whole number of seconds, 1 to 86400")
                        })?;
                    config.window_ms = seconds * 1000;
                }
                "outbound_tools" => {
                    let list = value
                        .as_array()
                        .filter(|list| list.iter().all(Value::is_string))
                        .ok_or_else(|| fail(key, "must be a list of strings"))?;
                    let names = list.iter().filter_map(Value::as_str);
                    if let Some(unknown) = names.clone().find(|n| {
                        n.strip_prefix('@')
                            .is_some_and(|c| !CATEGORIES.iter().any(|(name, _)| *name == c))
                    }) {
                        return Err(fail(
                            key,
                            &format!("unknown category `{unknown}`; the categories are @email, @http, @file_write, @payments, @messages"),
                        ));
                    }
                    if let Some(empty) = names.clone().find(|n| normalise(n).is_empty()) {
                        return Err(fail(key, &format!("`{empty}` names no tool")));
                    }
                    config.outbound = expand(names.map(str::to_owned));
                }
                "session_header" => {
                    let header = value
                        .as_str()
                        .filter(|h| {
                            h.bytes().all(|b| {
                                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
                            })
                        })
                        .ok_or_else(|| {
                            fail(key, "must be a lowercase HTTP header name, or empty for none")
                        })?;
                    config.session_header = header.to_owned();
                }
                other => {
                    return Err(fail(
                        other,
                        "unknown field; known fields are enabled, window_seconds, outbound_tools, session_header",
                    ))
                }
            }
        }
        Ok(config)
    }

    /// Whether a call of `tool` sends data out (its normalised name matches
    /// an outbound pattern).
    pub fn is_outbound(&self, tool: &str) -> bool {
        let name = normalise(tool);
        // One pass to normalise; the glob reads the name at most once per
        // character of a pattern, and the patterns are fixed.
        crate::work::charge(tool.len() + name.len() * self.outbound.len());
        self.outbound
            .iter()
            .any(|pattern| crate::glob::matches(pattern, &name))
    }
}

/// A tool name as it is matched: compatibility forms folded (fullwidth
/// letters), invisible characters (zero-width, bidi, soft hyphen, Unicode
/// tags) dropped, lowercase, and separators (`_`, `-`, `.`, `/`, `:`,
/// spaces) removed, so `Send-Email`, `sendEmail` and `send_email` are one
/// name. A pattern's `*` stays.
pub fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = match u32::from(c) {
            // Fullwidth ASCII (U+FF01..U+FF5E) is ASCII shifted.
            cp @ 0xFF01..=0xFF5E => char::from_u32(cp - 0xFEE0).unwrap_or(c),
            0x3000 => ' ',
            _ => c,
        };
        if invisible(c) || matches!(c, '_' | '-' | '.' | '/' | ':' | ' ') || c.is_whitespace() {
            continue;
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Characters a reader does not see, which must not split a name.
fn invisible(c: char) -> bool {
    matches!(u32::from(c),
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF)
        || c.is_control()
}

/// Where flagged text came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// A tool's output fed back to the model (an MCP result, a function's).
    ToolResult,
    /// A document the request supplies (Anthropic `document`, `search_result`,
    /// OpenAI `file` and `input_file` parts).
    Document,
}

impl SourceKind {
    fn label(self) -> &'static str {
        match self {
            SourceKind::ToolResult => "tool result",
            SourceKind::Document => "document",
        }
    }

    fn parse(label: &str) -> SourceKind {
        match label {
            "document" => SourceKind::Document,
            _ => SourceKind::ToolResult,
        }
    }
}

/// Text the firewall flagged in a source the agent did not write.
#[derive(Clone, Debug, PartialEq)]
pub struct Flagged {
    pub source: SourceKind,
    /// The firewall's categories for the request, by name.
    pub categories: Vec<&'static str>,
}

impl Flagged {
    /// An MCP tool result longer than `max_body_bytes`: the screened copy
    /// stopped short, so the rest may carry anything.
    pub fn unscreened() -> Flagged {
        Flagged {
            source: SourceKind::ToolResult,
            categories: vec!["unscreened_result"],
        }
    }
}

/// What taint escalation needs of a judged request body.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Seen {
    /// Text the firewall flagged in a tool result or document, if any.
    pub flagged: Option<Flagged>,
    /// The tools the request calls (an MCP body's `tools/call`, the check
    /// API's `toolName`) or has the provider run for it (`web_fetch`,
    /// `mcp:<label>`), in order.
    pub calls: Vec<String>,
}

/// Content part types that supply a document inside a user's message.
const DOCUMENT_PARTS: [&str; 4] = ["document", "search_result", "file", "input_file"];

/// The flagged source among `segments` (scored `scores`, the firewall's
/// per-segment scores, each the highest of its own and its run's, so a text
/// split across consecutive results is read whole): a tool result, or text
/// inside a document part of `body`, at or above `threshold`. Tool results
/// first. Linear: each segment is looked at once, and only a flagged user
/// segment's pointer is walked.
pub fn flagged(
    segments: &[Segment],
    scores: &[f32],
    body: &Value,
    threshold: f32,
    categories: &[&'static str],
) -> Option<Flagged> {
    let mut found = None;
    for (segment, score) in segments.iter().zip(scores) {
        if *score < threshold {
            continue;
        }
        let source = match segment.role {
            Role::ToolResult => SourceKind::ToolResult,
            Role::User if in_document(body, &segment.pointer) => SourceKind::Document,
            _ => continue,
        };
        if source == SourceKind::ToolResult {
            found = Some(source);
            break;
        }
        found.get_or_insert(source);
    }
    found.map(|source| Flagged {
        source,
        categories: categories.to_vec(),
    })
}

/// Tool results the firewall does not read together, because other turns
/// sit between them: each pair of neighbouring runs of results, as one text
/// (an injection split across two results of an agent's loop). Each result
/// is in at most two pairs, so the texts total at most twice the results'.
pub fn split_results(segments: &[Segment]) -> Vec<String> {
    let mut runs: Vec<String> = Vec::new();
    let mut last: Option<usize> = None;
    for (i, segment) in segments.iter().enumerate() {
        if segment.role != Role::ToolResult {
            continue;
        }
        match runs.last_mut() {
            Some(run) if last == Some(i.saturating_sub(1)) => {
                run.push('\n');
                run.push_str(&segment.text);
            }
            _ => runs.push(segment.text.clone()),
        }
        last = Some(i);
    }
    runs.windows(2)
        .map(|pair| format!("{}\n{}", pair[0], pair[1]))
        .collect()
}

/// Whether the string at JSON `pointer` in `body` lies inside a content part
/// whose `type` supplies a document.
fn in_document(body: &Value, pointer: &str) -> bool {
    let mut node = body;
    for token in pointer.split('/').skip(1) {
        if node
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|kind| DOCUMENT_PARTS.contains(&kind))
        {
            return true;
        }
        let token = token.replace("~1", "/").replace("~0", "~");
        let next = match node {
            Value::Object(map) => map.get(&token),
            Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(next) => node = next,
            None => return false,
        }
    }
    false
}

/// The text an MCP server's answer hands the agent, to be screened as a
/// tool result: every string under each JSON-RPC message's `result` (and an
/// error's `message`), in a JSON body, a batch, or the `data:` lines of an
/// SSE stream, one per line. Linear in the body.
pub fn result_texts(body: &[u8]) -> String {
    let mut out = String::new();
    let mut read = |json: &[u8]| {
        if let Ok(value) = serde_json::from_slice::<Value>(json) {
            let messages = match &value {
                Value::Array(batch) => batch.iter().collect(),
                one => vec![one],
            };
            for message in messages {
                if let Some(result) = message.get("result") {
                    strings(result, &mut out);
                }
                if let Some(error) = message.pointer("/error/message") {
                    strings(error, &mut out);
                }
            }
        }
    };
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        read(body);
    } else {
        // Events as clients read them: `data:` lines joined, any line break.
        let mut splitter = crate::stream::EventSplitter::new(body.len());
        splitter.push(body, |event, _, one_line| {
            if let Some(event) = crate::stream::event_data(event, one_line) {
                read(event.data.as_bytes());
            }
            true
        });
        if let Some(event) = crate::stream::event_data(&splitter.rest(), false) {
            read(event.data.as_bytes());
        }
    }
    out
}

/// Appends every string value in `value` (not its keys) to `out`, one per line.
pub(crate) fn strings(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// One taint, as an agent's record keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// The conversation it was recorded in; `None` holds every conversation
    /// of the agent.
    pub session: Option<String>,
    /// Unix milliseconds when it ends.
    pub expires_ms: u64,
    pub source: SourceKind,
    /// Comma-separated category names.
    pub categories: String,
    /// The request that carried the flagged text.
    pub request_id: String,
}

impl Mark {
    /// The taint `flagged` sets in `session` for `window_ms` from `now_ms`.
    pub fn new(
        flagged: &Flagged,
        session: Option<&str>,
        request_id: &str,
        now_ms: u64,
        window_ms: u64,
    ) -> Mark {
        Mark {
            session: session.and_then(session_id),
            expires_ms: now_ms.saturating_add(window_ms),
            source: flagged.source,
            categories: clean(&flagged.categories.join(","), 256),
            request_id: clean(request_id, 64),
        }
    }

    /// Whether it holds a request in `session` at `now_ms`.
    fn holds(&self, session: Option<&str>, now_ms: u64) -> bool {
        self.expires_ms > now_ms
            && match (&self.session, session.and_then(session_id)) {
                (None, _) | (_, None) => true,
                (Some(mine), Some(theirs)) => *mine == theirs,
            }
    }
}

/// A session header's value as a record keeps it: visible ASCII only, cut
/// to [`MAX_SESSION_BYTES`]; `None` when nothing is left.
fn session_id(raw: &str) -> Option<String> {
    let id = clean(raw.trim(), MAX_SESSION_BYTES);
    (!id.is_empty()).then_some(id)
}

/// `text` with only visible ASCII kept (no tab, newline or comma-free
/// guarantee needed beyond the record's separators), cut to `max` bytes.
fn clean(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(max)
        .collect()
}

/// One agent's taints: the value of its shared-data key, one line per
/// mark: `expires_ms \t source \t categories \t request_id \t session`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Marks(pub Vec<Mark>);

impl Marks {
    /// Reads a record; lines it cannot read are skipped (a record is only
    /// ever written by [`Marks::encode`]).
    pub fn decode(bytes: &[u8]) -> Marks {
        let text = String::from_utf8_lossy(bytes);
        let marks = text
            .lines()
            .take(MAX_MARKS)
            .filter_map(|line| {
                let mut fields = line.split('\t');
                let expires_ms = fields.next()?.parse().ok()?;
                let source = SourceKind::parse(fields.next()?);
                let categories = fields.next()?.to_owned();
                let request_id = fields.next()?.to_owned();
                let session = fields.next().filter(|s| !s.is_empty()).map(str::to_owned);
                Some(Mark {
                    session,
                    expires_ms,
                    source,
                    categories,
                    request_id,
                })
            })
            .collect();
        Marks(marks)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::new();
        for mark in &self.0 {
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\n",
                mark.expires_ms,
                mark.source.label(),
                mark.categories,
                mark.request_id,
                mark.session.as_deref().unwrap_or_default()
            ));
        }
        out.into_bytes()
    }

    /// Adds `mark` at `now_ms`: expired marks go; a mark for the same
    /// session is replaced (its window starts again, never shortened); past
    /// [`MAX_MARKS`] every mark folds into one agent-wide taint that lasts as
    /// long as the longest, so a full record widens, never forgets.
    pub fn add(&mut self, mark: Mark, now_ms: u64) {
        self.0.retain(|m| m.expires_ms > now_ms);
        let expires_ms = match self.0.iter().position(|m| m.session == mark.session) {
            Some(i) => self.0.remove(i).expires_ms.max(mark.expires_ms),
            None => mark.expires_ms,
        };
        self.0.push(Mark { expires_ms, ..mark });
        if self.0.len() > MAX_MARKS {
            let longest = self.0.iter().map(|m| m.expires_ms).max().unwrap_or(0);
            let latest = self.0.pop();
            self.0.clear();
            if let Some(latest) = latest {
                self.0.push(Mark {
                    session: None,
                    expires_ms: longest,
                    ..latest
                });
            }
        }
    }

    /// The taint that holds a request in `session` at `now_ms`: the one that
    /// lasts longest.
    pub fn holding(&self, session: Option<&str>, now_ms: u64) -> Option<&Mark> {
        self.0
            .iter()
            .filter(|m| m.holds(session, now_ms))
            .max_by_key(|m| m.expires_ms)
    }
}

/// The shared-data key of `agent`'s taints (one per agent: agents are the
/// verified tokens' subjects, so the keys are as many as the agents taint ever
/// touched, and each value is bounded by [`MAX_MARKS`]).
pub fn key(agent: &str) -> String {
    format!("kalguard.taint.{agent}")
}

/// Records `mark` for `agent` in `store`, shared by every worker VM:
/// read, add, write back with the read's CAS, again if another worker wrote
/// in between.
pub fn record(store: &dyn Store, agent: &str, mark: &Mark, now_ms: u64) -> Result<(), StoreError> {
    let key = key(agent);
    for _ in 0..CAS_ATTEMPTS {
        let (mut marks, cas) = match store.get(&key)? {
            Some((bytes, cas)) => (Marks::decode(&bytes), Some(cas)),
            None => (Marks::default(), None),
        };
        marks.add(mark.clone(), now_ms);
        match store.set(&key, &marks.encode(), cas) {
            Err(StoreError::CasMismatch) => continue,
            other => return other,
        }
    }
    Err(StoreError::CasMismatch)
}

/// The taint that holds `agent`'s request in `session` at `now_ms`, if any.
pub fn lookup(
    store: &dyn Store,
    agent: &str,
    session: Option<&str>,
    now_ms: u64,
) -> Result<Option<Mark>, StoreError> {
    Ok(store
        .get(&key(agent))?
        .and_then(|(bytes, _)| Marks::decode(&bytes).holding(session, now_ms).cloned()))
}

/// Why a request's outbound tool calls need approval: the taint in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taint {
    pub mark: Mark,
    /// The taint was set by this very request's flagged text.
    pub here: bool,
}

impl Taint {
    /// Writes the taint into a decision event: `taintExpiresAtMs`,
    /// `taintSource` (1 a tool result, 2 a document) and its categories
    /// (fixed names, no text).
    pub fn annotate(&self, metadata: &mut Map<String, Value>, categories: &mut Vec<String>) {
        let mark = &self.mark;
        metadata.insert("taintExpiresAtMs".into(), mark.expires_ms.into());
        let source: u8 = match mark.source {
            SourceKind::ToolResult => 1,
            SourceKind::Document => 2,
        };
        metadata.insert("taintSource".into(), source.into());
        for category in mark.categories.split(',').filter(|c| !c.is_empty()) {
            if !categories.iter().any(|c| c == category) {
                categories.push(category.to_owned());
            }
        }
    }

    /// The `REQUIRE_APPROVAL` refusal of a call of `tool` (what a person is
    /// asked, and what the agent reads if no one approves): which source,
    /// its categories, and when the taint ends.
    pub fn refusal(&self, tool: &str, now_ms: u64) -> Refusal {
        let mark = &self.mark;
        let categories = if mark.categories.is_empty() {
            "no category named".to_owned()
        } else {
            mark.categories.replace(',', ", ")
        };
        let when = if self.here {
            "in this request".to_owned()
        } else {
            format!("in request {}", mark.request_id)
        };
        let seconds = mark.expires_ms.saturating_sub(now_ms).div_ceil(1000);
        let message = format!(
            "tainted conversation: the KalGuard firewall flagged a {} {when} ({categories}); \
             `{tool}` sends data out, so it needs a person's approval for {seconds} s more",
            mark.source.label()
        );
        Refusal::new(ErrorCode::RequireApproval, message).with_data(json!({
            "action": "tool:execute",
            "tool": tool,
            "ruleId": RULE_ID,
            "taint": {
                "source": mark.source.label(),
                "categories": mark.categories.split(',').filter(|c| !c.is_empty()).collect::<Vec<_>>(),
                "requestId": mark.request_id,
                "session": mark.session,
                "expiresAtMs": mark.expires_ms,
            },
        }))
    }
}

#[cfg(test)]
mod tests;
