//! MCP tool pins (`docs/mcp-pinning.md`): per MCP server (the path the
//! filter serves it on), per tool, the definition in force (its canonical
//! SHA-256, which fields it had, an excerpt of its description) and the one
//! waiting for an operator, if any.
//!
//! The filter files what a server lists and what an agent calls ([`http`]);
//! the book answers at once. Trust on first use: a tool never seen, clean,
//! whose name looks like no other tool's of the server, is pinned. A later
//! definition that differs, or one the filter flagged, waits for an
//! operator (`kalguard tools approve`, [`cli`], or in Cloud mode the
//! Cloud's Tools page, through [`relay`]); until then the tool is
//! held back from lists and its calls are refused. Anything waiting holds
//! the tool back, even if the server goes back to the pinned definition:
//! the change was seen and an operator must look at it.
//!
//! The book is kept in `<data dir>/pins.json` (written atomically on every
//! change) so that pins outlive a restart; a file that cannot be read stops
//! the control plane from starting rather than forgetting every pin (which
//! would trust the next definitions on first use again).

pub mod cli;
pub mod http;
pub mod relay;

use crate::fsutil::{write_atomically, FileError, FileOp};
pub use kalguard_wire::pins::Held;
use kalguard_wire::pins::{PinAnswer, PinFiling, PinVerdict, ToolSeen, MAX_TEXT_CHARS, MAX_TOOLS};
use kalguard_wire::skeleton::{skeleton, Camel};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Most MCP servers pinned: a filter (or agent) naming ever more paths
/// cannot grow the book without bound; tools of servers past it are unknown.
pub const MAX_SERVERS: usize = 64;
/// Most tools pinned per server; more are unknown.
pub const MAX_TOOLS_PER_SERVER: usize = MAX_TOOLS;

/// What went wrong with the pins, and where.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("not a pin filing: {0}")]
    Malformed(String),
    #[error("no change of tool `{tool}` of MCP server {server} waits for approval; see `kalguard tools list`")]
    NothingPending { server: String, tool: String },
    #[error("the definition of tool `{tool}` of MCP server {server} waiting now is sha256 {waiting}, not the {offered} decided on; see `kalguard tools list`")]
    Stale {
        server: String,
        tool: String,
        offered: String,
        waiting: String,
    },
    #[error("tool `{tool}` of MCP server {server} is held anew (since {since_ms} ms), after the hold decided on; decide it again: see `kalguard tools list`")]
    HeldAgain {
        server: String,
        tool: String,
        since_ms: u64,
    },
    #[error("MCP server {server} has no pinned tool {tool:?}; see `kalguard tools list`")]
    NotPinned {
        server: String,
        tool: Option<String>,
    },
    #[error("{0} (move it aside to start over: every tool is then trusted again on first use)")]
    Unreadable(String),
    #[error(transparent)]
    File(#[from] FileError),
    #[error("a disk task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// One definition of a tool, as pinned or as waiting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Definition {
    pub sha256: String,
    /// SHA-256 of each field, to tell which changed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Unix milliseconds when it was pinned or first seen.
    pub at_ms: u64,
}

/// A definition waiting for an operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Waiting {
    pub definition: Definition,
    pub held: Held,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The agent and request whose list showed it.
    pub agent_id: String,
    pub request_id: String,
}

/// One tool of one server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pin {
    /// The definition in force; `None` for a tool first seen suspicious.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<Definition>,
    /// Who pinned it: `first use`, or the operator who approved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
}

impl Pin {
    /// What this pin says of a call, or of a listed `sha256` that is not
    /// waiting already.
    fn verdict(&self) -> PinVerdict {
        match (&self.waiting, &self.pinned) {
            (Some(waiting), _) => match waiting.held {
                Held::Changed => PinVerdict::Changed,
                Held::Suspicious => PinVerdict::Suspicious,
            },
            (None, Some(_)) => PinVerdict::Pinned,
            (None, None) => PinVerdict::Unknown,
        }
    }

    /// The fields whose hashes differ between the pinned and the waiting
    /// definitions (none when either is missing).
    pub fn changed_fields(&self) -> Vec<&str> {
        let (Some(pinned), Some(waiting)) = (&self.pinned, &self.waiting) else {
            return Vec::new();
        };
        let new = &waiting.definition.fields;
        let names: BTreeSet<&String> = pinned.fields.keys().chain(new.keys()).collect();
        names
            .into_iter()
            .filter(|field| pinned.fields.get(*field) != new.get(*field))
            .map(String::as_str)
            .collect()
    }
}

/// The definition a decision taken on the Cloud is about: its SHA-256, and
/// when the hold shown began. A later hold of the same definition (it
/// changed, was decided, and came back) is another hold, decided anew: a
/// decision delivered again after a restart never lands on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offered {
    pub sha256: String,
    pub since_ms: u64,
}

/// Whether `pin` holds a definition waiting that matches `offered` (any, when
/// `None`); the error says what waits instead.
fn offered_waits(
    pin: &Pin,
    server: &str,
    tool: &str,
    offered: Option<&Offered>,
) -> Result<(), PinError> {
    let waiting = pin
        .waiting
        .as_ref()
        .ok_or_else(|| PinError::NothingPending {
            server: server.to_owned(),
            tool: tool.to_owned(),
        })?;
    match offered {
        Some(offered) if offered.sha256 != waiting.definition.sha256 => Err(PinError::Stale {
            server: server.to_owned(),
            tool: tool.to_owned(),
            offered: offered.sha256.clone(),
            waiting: waiting.definition.sha256.clone(),
        }),
        Some(offered) if offered.since_ms != waiting.definition.at_ms => Err(PinError::HeldAgain {
            server: server.to_owned(),
            tool: tool.to_owned(),
            since_ms: waiting.definition.at_ms,
        }),
        _ => Ok(()),
    }
}

/// Every server's pins, by server then tool.
pub type Servers = BTreeMap<String, BTreeMap<String, Pin>>;

/// What a filing or a decision did, for the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Audited {
    pub event_type: &'static str,
    /// `pinned` (first use), `changed`, `suspicious`, `approved`, `forgotten`.
    pub outcome: &'static str,
    pub server: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Audited {
    fn new(outcome: &'static str, server: &str, tool: Option<&str>) -> Audited {
        Audited {
            event_type: "tool_pin",
            outcome,
            server: server.to_owned(),
            tool: tool.map(str::to_owned),
            sha256: None,
            previous_sha256: None,
            why: None,
            by: None,
            agent_id: None,
            request_id: None,
        }
    }
}

/// The pins, in memory and in their file.
pub struct PinBook {
    path: PathBuf,
    servers: Mutex<Servers>,
    /// Told of every change written (the Cloud relay, [`relay`], reports
    /// what is held again).
    pub changed: tokio::sync::Notify,
}

/// The file's form.
#[derive(Deserialize)]
struct File {
    servers: Servers,
}

impl PinBook {
    /// The book kept at `path` (empty when the file does not exist yet).
    pub fn open(path: &Path) -> Result<PinBook, PinError> {
        let servers = match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice::<File>(&bytes)
                    .map_err(|e| {
                        PinError::Unreadable(format!("{} is not a pin book: {e}", path.display()))
                    })?
                    .servers
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Servers::new(),
            Err(e) => return Err(FileError::at(FileOp::Read, path)(e).into()),
        };
        Ok(PinBook {
            path: path.to_owned(),
            servers: Mutex::new(servers),
            changed: tokio::sync::Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Servers> {
        self.servers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn save(&self, servers: &Servers) -> Result<(), PinError> {
        let file = serde_json::to_vec_pretty(&FileRef { servers }).unwrap_or_default();
        write_atomically(&self.path, &file)?;
        // One waiter (the relay); a change while it is busy is kept for it.
        self.changed.notify_one();
        Ok(())
    }

    /// Every server's pins.
    pub fn list(&self) -> Servers {
        self.lock().clone()
    }

    /// What `read` makes of every server's pins, read in place: the Cloud
    /// relay's report takes the few tools waiting, not a copy of the whole
    /// book (descriptions included) while the filter's filings wait.
    pub fn read<R>(&self, read: impl FnOnce(&Servers) -> R) -> R {
        read(&self.lock())
    }

    /// Judges a filing at `now_ms`: pins what is new and clean, holds back
    /// what changed or was flagged; the answer, and what to audit. The file
    /// is written before the answer goes (a failure to write refuses the
    /// filing: the filter then holds every tool back).
    pub fn file(
        &self,
        filing: &PinFiling,
        now_ms: u64,
    ) -> Result<(PinAnswer, Vec<Audited>), PinError> {
        check(filing)?;
        let mut servers = self.lock();
        let mut audited = Vec::new();
        let mut verdicts = BTreeMap::new();
        let known_server = servers.contains_key(&filing.server);
        if !known_server && servers.len() >= MAX_SERVERS {
            tracing::warn!(
                "MCP server {} not pinned: {MAX_SERVERS} servers are pinned already (`kalguard tools forget` some)",
                filing.server
            );
            let verdicts = filing
                .tools
                .iter()
                .map(|t| (t.name.clone(), PinVerdict::Unknown))
                .collect();
            return Ok((answer(filing, verdicts), audited));
        }
        let tools = servers.entry(filing.server.clone()).or_default();
        // The names a newcomer must not look like, folded once per filing.
        let mut looks: HashMap<String, String> = HashMap::new();
        for name in tools.keys() {
            for folded in folds(name) {
                looks.entry(folded).or_insert_with(|| name.clone());
            }
        }
        for seen in &filing.tools {
            let verdict = judge(tools, &mut looks, seen, filing, now_ms, &mut audited);
            verdicts.insert(seen.name.clone(), verdict);
        }
        if tools.is_empty() {
            servers.remove(&filing.server);
        }
        if !audited.is_empty() {
            self.save(&servers)?;
        }
        Ok((answer(filing, verdicts), audited))
    }

    /// Accepts the definition waiting for `tool` of `server`: it is pinned,
    /// by `by`. With `offered`, only while that very hold waits (a decision
    /// taken on the Cloud about the one it showed).
    pub fn approve(
        &self,
        server: &str,
        tool: &str,
        offered: Option<&Offered>,
        by: &str,
        now_ms: u64,
    ) -> Result<Audited, PinError> {
        let mut servers = self.lock();
        let pin = servers
            .get_mut(server)
            .and_then(|tools| tools.get_mut(tool))
            .ok_or_else(|| PinError::NothingPending {
                server: server.to_owned(),
                tool: tool.to_owned(),
            })?;
        offered_waits(pin, server, tool, offered)?;
        let Some(waiting) = pin.waiting.take() else {
            return Err(PinError::NothingPending {
                server: server.to_owned(),
                tool: tool.to_owned(),
            });
        };
        let mut audited = Audited::new("approved", server, Some(tool));
        audited.sha256 = Some(waiting.definition.sha256.clone());
        audited.previous_sha256 = pin.pinned.as_ref().map(|d| d.sha256.clone());
        audited.why = waiting.why.clone();
        audited.by = Some(by.to_owned());
        pin.pinned = Some(Definition {
            at_ms: now_ms,
            ..waiting.definition
        });
        pin.pinned_by = Some(by.to_owned());
        self.save(&servers)?;
        Ok(audited)
    }

    /// Forgets `tool` of `server` (every tool of it when `None`): its next
    /// definition is trusted on first use again. With `offered`, only while
    /// that very hold of the tool waits (a decision taken on the Cloud about
    /// the one it showed).
    pub fn forget(
        &self,
        server: &str,
        tool: Option<&str>,
        offered: Option<&Offered>,
        by: &str,
    ) -> Result<Audited, PinError> {
        let mut servers = self.lock();
        let missing = || PinError::NotPinned {
            server: server.to_owned(),
            tool: tool.map(str::to_owned),
        };
        let tools = servers.get_mut(server).ok_or_else(missing)?;
        match tool {
            Some(tool) => {
                if offered.is_some() {
                    let pin = tools.get(tool).ok_or_else(missing)?;
                    offered_waits(pin, server, tool, offered)?;
                }
                tools.remove(tool).ok_or_else(missing)?;
                if tools.is_empty() {
                    servers.remove(server);
                }
            }
            None => {
                servers.remove(server);
            }
        }
        self.save(&servers)?;
        let mut audited = Audited::new("forgotten", server, tool);
        audited.by = Some(by.to_owned());
        Ok(audited)
    }
}

/// The file's form, written from a borrow.
#[derive(Serialize)]
struct FileRef<'a> {
    servers: &'a Servers,
}

/// Refuses a filing the book must not keep: too many tools, empty or
/// overlong names and servers, a hash that is not one.
fn check(filing: &PinFiling) -> Result<(), PinError> {
    let malformed = |why: String| Err(PinError::Malformed(why));
    if filing.tools.len() > MAX_TOOLS {
        return malformed(format!("more than {MAX_TOOLS} tools"));
    }
    if filing.server.is_empty() || filing.server.chars().count() > MAX_TEXT_CHARS {
        return malformed(format!("server must be 1 to {MAX_TEXT_CHARS} characters"));
    }
    for tool in &filing.tools {
        if tool.name.is_empty() || tool.name.chars().count() > MAX_TEXT_CHARS {
            return malformed(format!(
                "tool names must be 1 to {MAX_TEXT_CHARS} characters"
            ));
        }
        let hash = |h: &String| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
        if tool.sha256.as_ref().is_some_and(|h| !hash(h)) || !tool.fields.values().all(hash) {
            return malformed(format!(
                "tool {:?}: sha256 must be 64 hex digits",
                tool.name
            ));
        }
    }
    Ok(())
}

fn answer(filing: &PinFiling, verdicts: BTreeMap<String, PinVerdict>) -> PinAnswer {
    PinAnswer {
        request_id: filing.request_id.clone(),
        server: filing.server.clone(),
        verdicts,
    }
}

/// Both skeletons of a name (`kalguard_wire::skeleton`).
fn folds(name: &str) -> [String; 2] {
    [skeleton(name, Camel::Flat), skeleton(name, Camel::Split)]
}

/// The verdict on one tool of a filing, changing its pin as the rules say.
fn judge(
    tools: &mut BTreeMap<String, Pin>,
    looks: &mut HashMap<String, String>,
    seen: &ToolSeen,
    filing: &PinFiling,
    now_ms: u64,
    audited: &mut Vec<Audited>,
) -> PinVerdict {
    let Some(sha256) = &seen.sha256 else {
        // A call: the pin in force decides.
        return tools
            .get(&seen.name)
            .map_or(PinVerdict::Unknown, Pin::verdict);
    };
    let definition = Definition {
        sha256: sha256.clone(),
        fields: seen.fields.clone(),
        description: seen.description.clone(),
        at_ms: now_ms,
    };
    let record = |outcome, why: Option<&str>, previous: Option<&Definition>| {
        let mut record = Audited::new(outcome, &filing.server, Some(&seen.name));
        record.sha256 = Some(sha256.clone());
        record.previous_sha256 = previous.map(|d| d.sha256.clone());
        record.why = why.map(str::to_owned);
        record.agent_id = Some(filing.agent_id.clone());
        record.request_id = Some(filing.request_id.clone());
        record
    };
    if let Some(pin) = tools.get_mut(&seen.name) {
        let matches_pin = pin.pinned.as_ref().is_some_and(|d| &d.sha256 == sha256);
        let waiting_same = pin
            .waiting
            .as_ref()
            .is_some_and(|w| &w.definition.sha256 == sha256);
        if matches_pin || waiting_same {
            return pin.verdict();
        }
        let held = if seen.suspicious.is_some() {
            Held::Suspicious
        } else {
            Held::Changed
        };
        let outcome = match held {
            Held::Changed => "changed",
            Held::Suspicious => "suspicious",
        };
        audited.push(record(
            outcome,
            seen.suspicious.as_deref(),
            pin.pinned.as_ref(),
        ));
        pin.waiting = Some(waiting(definition, held, seen.suspicious.clone(), filing));
        return pin.verdict();
    }
    if tools.len() >= MAX_TOOLS_PER_SERVER {
        return PinVerdict::Unknown;
    }
    let lookalike = folds(&seen.name)
        .iter()
        .find_map(|folded| looks.get(folded).filter(|other| **other != seen.name))
        .map(|other| format!("its name looks like `{other}`, pinned already"));
    for folded in folds(&seen.name) {
        looks.entry(folded).or_insert_with(|| seen.name.clone());
    }
    let pin = match seen.suspicious.clone().or(lookalike) {
        Some(why) => {
            audited.push(record("suspicious", Some(&why), None));
            Pin {
                pinned: None,
                pinned_by: None,
                waiting: Some(waiting(definition, Held::Suspicious, Some(why), filing)),
            }
        }
        None => {
            audited.push(record("pinned", None, None));
            Pin {
                pinned: Some(definition),
                pinned_by: Some(FIRST_USE.to_owned()),
                waiting: None,
            }
        }
    };
    let verdict = pin.verdict();
    tools.insert(seen.name.clone(), pin);
    verdict
}

/// Who pinned a tool trusted on first use.
pub const FIRST_USE: &str = "first use";

fn waiting(definition: Definition, held: Held, why: Option<String>, filing: &PinFiling) -> Waiting {
    Waiting {
        definition,
        held,
        why,
        agent_id: filing.agent_id.clone(),
        request_id: filing.request_id.clone(),
    }
}

#[cfg(test)]
mod tests;
