//! Observe-only rollout in the policy (`docs/observe.md`): whether the
//! guard's refusals are carried out (`enforce`) or only recorded
//! (`observe`), for the whole policy and for some agents or routes.
//!
//! A document may say `"mode"` (every request it judges) and list scoped
//! overrides in `"modes"`: `{"agentIds"?, "routes"?, "mode"}`, each naming at
//! least one of the two, with `*` wildcards as in rules. The most specific
//! entry that holds wins: one naming agents and routes beats one naming
//! agents only, which beats one naming routes only; among equals the first
//! listed wins. No entry holds: the document's `mode`; none: the plugin
//! configuration's. The agent is the verified token's `sub` and the route
//! the normalised path rules are matched on, so a caller cannot claim
//! another agent's mode.

use serde_json::Value;

use super::{error, known_fields, object, path, patterns, PolicyError};
use crate::glob;

/// Whether refusals are carried out or only recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Refusals are answered (the default).
    #[default]
    Enforce,
    /// Nothing the guard judges is refused or rewritten; what would have been
    /// refused is counted, audited and marked on the answer.
    Observe,
}

impl Mode {
    /// Reads `enforce` or `observe`.
    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "enforce" => Some(Mode::Enforce),
            "observe" => Some(Mode::Observe),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Observe => "observe",
        }
    }
}

/// One entry of `modes`.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Scoped {
    agent_ids: Option<Vec<String>>,
    routes: Option<Vec<String>>,
    mode: Mode,
}

const SCOPED_FIELDS: [&str; 3] = ["agentIds", "routes", "mode"];

impl Scoped {
    /// How specific the entry is: agents and routes 3, agents 2, routes 1.
    fn rank(&self) -> u8 {
        2 * u8::from(self.agent_ids.is_some()) + u8::from(self.routes.is_some())
    }

    fn holds(&self, agent_id: &str, route: &str) -> bool {
        let any = |patterns: &Option<Vec<String>>, fact: &str| {
            patterns
                .as_ref()
                .is_none_or(|patterns| patterns.iter().any(|p| glob::matches(p, fact)))
        };
        any(&self.agent_ids, agent_id) && any(&self.routes, route)
    }
}

/// Reads a document's `mode`.
pub(super) fn parse_mode(value: Option<&Value>, at: &str) -> Result<Option<Mode>, PolicyError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_str()
            .and_then(Mode::parse)
            .map(Some)
            .ok_or_else(|| error(at, "must be \"enforce\" or \"observe\"")),
    }
}

/// Reads a document's `modes`.
pub(super) fn parse_modes(value: Option<&Value>) -> Result<Vec<Scoped>, PolicyError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(error(
                "modes",
                "must be an array of {agentIds?, routes?, mode}",
            ))
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("modes[{i}]");
            let map = object(item, &at)?;
            known_fields(map, &SCOPED_FIELDS, &at)?;
            let scoped = Scoped {
                agent_ids: patterns(map.get("agentIds"), &path(&at, "agentIds"))?,
                routes: patterns(map.get("routes"), &path(&at, "routes"))?,
                mode: parse_mode(map.get("mode"), &path(&at, "mode"))?
                    .ok_or_else(|| error(path(&at, "mode"), "is required"))?,
            };
            if scoped.rank() == 0 {
                // An entry for everyone is the document's `mode`; two ways to
                // say it would leave a reader guessing which one holds.
                return Err(error(
                    at,
                    "must name agentIds or routes (use the policy's `mode` for every request)",
                ));
            }
            Ok(scoped)
        })
        .collect()
}

/// The mode of a request by `agent_id` on `route` under a document's `mode`
/// and `modes`: the most specific entry that holds, else `mode`.
pub(super) fn mode_for(
    mode: Option<Mode>,
    modes: &[Scoped],
    agent_id: &str,
    route: &str,
) -> Option<Mode> {
    let mut best: Option<&Scoped> = None;
    for scoped in modes.iter().filter(|s| s.holds(agent_id, route)) {
        if best.is_none_or(|b| scoped.rank() > b.rank()) {
            best = Some(scoped);
        }
    }
    best.map(|s| s.mode).or(mode)
}
