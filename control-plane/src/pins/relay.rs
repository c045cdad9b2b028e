//! Cloud mode: the tools this control plane holds back are relayed to the
//! Cloud (`kalguard_wire::pins::CLOUD_PATH`), where an owner or admin may
//! re-approve (or forget) one on the dashboard's Tools page.
//!
//! One task reports what waits (a [`PinReport`]: names, hashes, the filter's
//! finding; never a description, which is the server's text and may carry
//! what the firewall flagged) whenever the book changes, and at least every
//! [`REFRESH`]; between reports it holds a poll open for decisions (`GET
//! …/decisions?wait=S`, answered the moment a member decides). A decision
//! is taken into the book exactly as the CLI's ([`super::http::apply`]),
//! bound to the definition the member saw: the book applies it only while
//! that very definition waits, so the first decision wins (the CLI's or the
//! dashboard's) and a tool that changed again since is never pinned by it.
//! The task then tells the Cloud what it did (`settle`). A Cloud that cannot
//! be reached costs nothing but the relay: `kalguard tools` still decides.

use super::http::{apply, Decision};
use super::{Offered, PinBook, PinError, Servers};
use crate::approvals::http::shown_text;
use crate::cloud::{
    backoff, CloudClient, CloudError, RELAY_CALL_TIMEOUT, RELAY_MIN_INTERVAL, RELAY_RETRY_BASE,
    RELAY_RETRY_CAP,
};
use crate::ctx::Ctx;
use crate::fsutil::write_atomically;
use kalguard_wire::pins::{
    HeldTool, PinAction, PinDecision, PinDecisions, PinOutcome, PinReport, PinSettled, CLOUD_PATH,
    MAX_CLOUD_HELD, MAX_CLOUD_WAIT_SECS, MAX_SIDECAR_ID_BYTES, MAX_TEXT_CHARS,
};
use reqwest::Method;
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest a poll may take: the Cloud's hold and some slack.
const POLL_TIMEOUT: Duration = Duration::from_secs(MAX_CLOUD_WAIT_SECS + 10);
/// A report is sent again at least this often, so the Cloud's page says
/// the sidecar is alive and what it holds.
const REFRESH: Duration = Duration::from_secs(300);
/// Pause after the Cloud refuses the relay outright (a key without the
/// right, a Cloud without the route).
const REFUSED_PAUSE: Duration = Duration::from_secs(60);
/// Decisions remembered with what was done: one delivered again (its settle
/// was lost) is settled again with the same word, never applied twice.
const REMEMBERED: usize = 1_000;
/// Most bytes of held tools one report carries, well under the Cloud's
/// 2 MiB body limit: a server's names may be long, and the tools past it
/// are counted, as those past [`MAX_CLOUD_HELD`] are.
const MAX_REPORT_BYTES: usize = 1 << 20;
/// Most changed fields named per tool, and the longest name kept (a
/// server chooses its fields' names): the rest is `…`.
const MAX_FIELDS_NAMED: usize = 16;
const MAX_FIELD_CHARS: usize = 64;
/// The file, in the data directory, that keeps this control plane's ID.
const SIDECAR_ID_FILE: &str = "sidecar-id";

/// Starts the relay when a Cloud is configured.
pub fn start(ctx: &Arc<Ctx>, data_dir: &Path) {
    if ctx.cloud.is_none() {
        return;
    }
    let sidecar_id = match sidecar_id(data_dir) {
        Ok(id) => id,
        Err(error) => {
            tracing::warn!("MCP tool pins are not relayed to the Cloud ({error}); decide them with `kalguard tools`");
            return;
        }
    };
    let host = std::env::var("HOSTNAME")
        .ok()
        .and_then(|host| shown_text(Some(host)))
        .map(|host| host.chars().take(MAX_TEXT_CHARS).collect());
    let relay = Relay {
        sidecar_id,
        host,
        remembered: Remembered::default(),
    };
    tokio::spawn(run(Arc::clone(ctx), relay));
}

/// This control plane's ID: read from the data directory, made there
/// (`sc_` and 32 hex digits) the first time.
fn sidecar_id(data_dir: &Path) -> Result<String, String> {
    let path = data_dir.join(SIDECAR_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if id_ok(id.trim()) => return Ok(id.trim().to_owned()),
        Ok(_) => return Err(format!("{} is not a sidecar ID", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let id = format!(
        "sc_{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    );
    write_atomically(&path, id.as_bytes()).map_err(|e| e.to_string())?;
    Ok(id)
}

/// An ID the Cloud makes or keeps: letters, digits, `_` and `-`, so it
/// goes into a URL as it is.
fn id_ok(id: &str) -> bool {
    (1..=MAX_SIDECAR_ID_BYTES).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

struct Relay {
    sidecar_id: String,
    host: Option<String>,
    remembered: Remembered,
}

/// What was done with the latest decisions, oldest forgotten first.
#[derive(Default)]
struct Remembered {
    outcomes: HashMap<String, PinSettled>,
    order: VecDeque<String>,
}

impl Remembered {
    fn get(&self, id: &str) -> Option<&PinSettled> {
        self.outcomes.get(id)
    }

    fn keep(&mut self, id: &str, settled: PinSettled) {
        if self.outcomes.insert(id.to_owned(), settled).is_none() {
            self.order.push_back(id.to_owned());
        }
        while self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.outcomes.remove(&old);
            }
        }
    }
}

/// What the Cloud is told this control plane holds back: every tool
/// waiting, at most [`MAX_CLOUD_HELD`] and [`MAX_REPORT_BYTES`] of them (the
/// rest counted), names the Cloud could not keep (a NUL) left to the CLI.
fn report(servers: &Servers, sidecar_id: &str, host: Option<&str>) -> PinReport {
    let mut held = Vec::new();
    let mut left_out = 0;
    let mut bytes = 0;
    for (server, tools) in servers {
        for (tool, pin) in tools {
            let Some(waiting) = &pin.waiting else {
                continue;
            };
            if held.len() >= MAX_CLOUD_HELD || server.contains('\0') || tool.contains('\0') {
                left_out += 1;
                continue;
            }
            let mut fields_changed: Vec<String> = pin
                .changed_fields()
                .into_iter()
                .filter(|field| !field.contains('\0'))
                .map(|field| clip(field, MAX_FIELD_CHARS))
                .collect();
            if fields_changed.len() > MAX_FIELDS_NAMED {
                fields_changed.truncate(MAX_FIELDS_NAMED - 1);
                fields_changed.push("…".into());
            }
            let entry = HeldTool {
                server: server.clone(),
                tool: tool.clone(),
                held: waiting.held,
                why: waiting
                    .why
                    .as_ref()
                    .map(|why| clip(&why.replace('\0', ""), MAX_TEXT_CHARS)),
                pinned_sha256: pin.pinned.as_ref().map(|d| d.sha256.clone()),
                offered_sha256: waiting.definition.sha256.clone(),
                fields_changed,
                held_since_ms: waiting.definition.at_ms,
            };
            bytes += serde_json::to_vec(&entry).map_or(usize::MAX, |json| json.len());
            if bytes > MAX_REPORT_BYTES {
                left_out += 1;
                continue;
            }
            held.push(entry);
        }
    }
    if left_out > 0 {
        tracing::warn!("{left_out} held MCP tools are not on the Cloud's dashboard (too many, too long, or names with NUL); decide them with `kalguard tools`");
    }
    PinReport {
        sidecar_id: sidecar_id.to_owned(),
        host: host.map(str::to_owned),
        held,
        left_out,
    }
}

/// `text` cut to `max` characters, the cut marked `…`.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(max.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

/// What happened while the relay waited.
enum Step {
    /// The book changed: report again.
    Changed,
    Answered(Result<PinDecisions, CloudError>),
}

async fn run(ctx: Arc<Ctx>, mut relay: Relay) {
    let Some(cloud) = ctx.cloud.as_ref() else {
        return;
    };
    let client = &cloud.client;
    let book = Arc::clone(&ctx.pins);
    let poll = format!(
        "{CLOUD_PATH}/decisions?sidecarId={}&wait={MAX_CLOUD_WAIT_SECS}",
        relay.sidecar_id
    );
    let mut report_due = true;
    let mut last_report = Instant::now();
    let mut attempt = 0;
    let mut refused = false;
    loop {
        let reporting = report_due || last_report.elapsed() >= REFRESH;
        let started = Instant::now();
        let step = if reporting {
            let held =
                book.read(|servers| report(servers, &relay.sidecar_id, relay.host.as_deref()));
            Step::Answered(
                client
                    .call(Method::POST, CLOUD_PATH, Some(&held), RELAY_CALL_TIMEOUT)
                    .await,
            )
        } else {
            tokio::select! {
                biased;
                () = book.changed.notified() => Step::Changed,
                polled = client.call(Method::GET, &poll, None::<&()>, POLL_TIMEOUT) => Step::Answered(polled),
            }
        };
        let pause = match step {
            Step::Changed => {
                report_due = true;
                continue;
            }
            Step::Answered(Ok(answer)) => {
                refused = false;
                if reporting {
                    (report_due, last_report) = (false, Instant::now());
                }
                if relay.take(&ctx, client, &book, answer.decisions).await {
                    attempt = 0;
                    RELAY_MIN_INTERVAL.saturating_sub(started.elapsed())
                } else {
                    attempt += 1;
                    backoff(attempt, RELAY_RETRY_BASE, RELAY_RETRY_CAP)
                }
            }
            Step::Answered(Err(error @ CloudError::Unavailable { .. })) => {
                attempt += 1;
                tracing::debug!("MCP tool pins: the Cloud relay failed ({error}); retrying");
                backoff(attempt, RELAY_RETRY_BASE, RELAY_RETRY_CAP)
            }
            Step::Answered(Err(error)) => {
                // Said once until the Cloud answers again (an older Cloud has no such route).
                if std::mem::replace(&mut refused, true) {
                    tracing::debug!("MCP tool pins: the Cloud still refuses the relay ({error})");
                } else {
                    tracing::warn!("MCP tool pins are not on the Cloud's dashboard ({error}); decide them with `kalguard tools`; trying again every {} s", REFUSED_PAUSE.as_secs());
                }
                report_due = true;
                REFUSED_PAUSE
            }
        };
        // A change while pausing is reported once the pause ends.
        tokio::time::sleep(pause).await;
    }
}

impl Relay {
    /// Applies the Cloud's decisions and settles each. Whether the relay
    /// may poll again at once: not when one could not be taken or settled,
    /// or all were taken before (the Cloud delivers them again until told;
    /// a Cloud that never hears must not be asked in a tight loop).
    async fn take(
        &mut self,
        ctx: &Arc<Ctx>,
        client: &CloudClient,
        book: &Arc<PinBook>,
        decisions: Vec<PinDecision>,
    ) -> bool {
        let mut all_settled = true;
        let mut any_new = decisions.is_empty();
        for decision in decisions.into_iter().take(MAX_CLOUD_HELD) {
            if !id_ok(&decision.id) {
                tracing::warn!(
                    "MCP tool pins: the Cloud sent a decision with a malformed ID; ignored"
                );
                all_settled = false;
                continue;
            }
            let settled = match self.remembered.get(&decision.id) {
                Some(settled) => settled.clone(),
                None => match take_one(ctx, book, &decision).await {
                    Some(settled) => {
                        any_new = true;
                        self.remembered.keep(&decision.id, settled.clone());
                        settled
                    }
                    None => {
                        all_settled = false;
                        continue;
                    }
                },
            };
            let path = format!(
                "{CLOUD_PATH}/decisions/{}/settle?sidecarId={}",
                decision.id, self.sidecar_id
            );
            let told: Result<serde_json::Value, CloudError> = client
                .call(Method::POST, &path, Some(&settled), RELAY_CALL_TIMEOUT)
                .await;
            if let Err(error) = told {
                tracing::debug!(
                    "MCP tool pins: decision {} not settled on the Cloud ({error}); again later",
                    decision.id
                );
                all_settled = false;
            }
        }
        all_settled && any_new
    }
}

/// Takes one decision into the book; `None` when the book could not be
/// written (the decision is taken again when the Cloud delivers it again).
async fn take_one(
    ctx: &Arc<Ctx>,
    book: &Arc<PinBook>,
    decided: &PinDecision,
) -> Option<PinSettled> {
    let by = format!(
        "{} (Cloud)",
        shown_text(Some(decided.by.clone())).unwrap_or_else(|| "unnamed".into())
    );
    let decision = Decision {
        action: decided.action,
        server: decided.server.clone(),
        tool: Some(decided.tool.clone()),
        offered: Some(Offered {
            sha256: decided.offered_sha256.clone(),
            since_ms: decided.held_since_ms,
        }),
        by: by.clone(),
    };
    let (server, tool, action) = (&decided.server, &decided.tool, decided.action.as_str());
    let (outcome, detail) = match apply(ctx, Arc::clone(book), decision).await {
        Ok(_) => {
            tracing::info!("MCP server {server} tool {tool:?}: {action} by {by}");
            (PinOutcome::Applied, None)
        }
        Err(error @ (PinError::Stale { .. } | PinError::HeldAgain { .. })) => {
            tracing::info!(
                "MCP server {server} tool {tool:?}: {action} by {by} is refused: {error}"
            );
            (PinOutcome::Stale, Some(error.to_string()))
        }
        Err(PinError::NothingPending { .. } | PinError::NotPinned { .. }) => {
            // Nothing waits: this very decision may have been applied before
            // a restart lost the relay's memory of it (the Cloud delivers it
            // again until settled), or another decision came first.
            let found = book.read(|servers| found_before(servers, decided, &by));
            match found {
                Before::Applied(detail) => {
                    tracing::info!("MCP server {server} tool {tool:?}: {action} by {by} was applied before ({detail})");
                    (PinOutcome::Applied, Some(detail))
                }
                Before::Decided(detail) => {
                    tracing::info!("MCP server {server} tool {tool:?}: {action} by {by} came after the control plane's own decision ({detail}); the first stands");
                    (PinOutcome::Gone, Some(detail))
                }
            }
        }
        Err(error) => {
            tracing::warn!(
                "MCP server {server} tool {tool:?}: {action} by {by} not taken yet: {error}"
            );
            return None;
        }
    };
    let detail = detail.map(|d| d.chars().take(MAX_TEXT_CHARS).collect());
    Some(PinSettled { outcome, detail })
}

/// What a decision that found nothing waiting finds in the book instead.
#[derive(Debug, PartialEq, Eq)]
enum Before {
    /// What it asked for holds: it was applied before, by the same member.
    Applied(String),
    /// Another decision came first: what stands.
    Decided(String),
}

/// What `decided` (taken by `by`) finds in `servers` when nothing waits: an
/// approval whose definition is pinned by the same `by` was applied before
/// (delivered again after a restart), as was a forget of a tool with no
/// pin; else what stands, said plainly.
fn found_before(servers: &Servers, decided: &PinDecision, by: &str) -> Before {
    let pin = servers
        .get(&decided.server)
        .and_then(|tools| tools.get(&decided.tool));
    let Some(pin) = pin else {
        return match decided.action {
            // What a forget asks for holds, whoever took it.
            PinAction::Forget => Before::Applied("the tool has no pin any more".into()),
            PinAction::Approve => Before::Decided("forgotten: the tool has no pin".into()),
        };
    };
    let pinned = pin.pinned.as_ref().map(|d| d.sha256.as_str());
    let pinned_by = pin.pinned_by.as_deref().unwrap_or("unknown");
    let same = pinned == Some(decided.offered_sha256.as_str());
    match decided.action {
        PinAction::Approve if same && pinned_by == by => {
            Before::Applied("applied before the control plane restarted".into())
        }
        PinAction::Approve if same => Before::Decided(format!(
            "the same definition was approved by {pinned_by} first"
        )),
        _ => match pinned {
            Some(sha) => Before::Decided(format!(
                "pinned by {pinned_by} (sha256 {}…)",
                sha.get(..16).unwrap_or(sha)
            )),
            None => Before::Decided("nothing is pinned".into()),
        },
    }
}

#[cfg(test)]
mod tests;
