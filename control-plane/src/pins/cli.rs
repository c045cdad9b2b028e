//! `kalguard tools list|approve|forget`: an operator's side of MCP tool
//! pins, spoken to the running control plane (`--listen`, as `kalguard
//! serve` was given it) with the channel key from `KALGUARD_CHANNEL_KEY`.

use super::{Pin, Servers, FIRST_USE};
use crate::approvals::cli::{call, At, CallError, Who};
use kalguard_wire::channel::{ChannelKey, ENV_VAR};
use kalguard_wire::pins::{shown_name as name, shown_text as text};
use serde_json::json;

/// Why a tools command failed; printed after `kalguard: `.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("tools: {0}")]
    Key(String),
    #[error("tools: {0}")]
    Call(#[from] CallError),
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// List each MCP server's pinned tools and the changes waiting for approval.
    List {
        /// Print the pins as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        at: At,
    },
    /// Accept the definition waiting for a tool that changed or was flagged.
    Approve {
        /// The MCP server, as `list` names it (the path it is served on).
        server: String,
        tool: String,
        #[command(flatten)]
        who: Who,
    },
    /// Forget a tool's pin (or every pin of a server): its next definition
    /// is trusted on first use again.
    Forget {
        server: String,
        tool: Option<String>,
        #[command(flatten)]
        who: Who,
    },
}

pub fn run(command: Command) -> Result<(), CliError> {
    let key = ChannelKey::parse(std::env::var(ENV_VAR).ok().as_deref())
        .map_err(|e| CliError::Key(e.to_string()))?;
    match command {
        Command::List { json, at } => {
            let listed = call(&at.listen, &key, "GET", "/v1/pins", None)?;
            if json {
                println!("{listed}");
            } else {
                let servers: Servers = serde_json::from_value(listed).unwrap_or_default();
                print!("{}", render(&servers));
            }
        }
        Command::Approve { server, tool, who } => {
            let body = json!({"server": server, "tool": tool, "by": who.by});
            call(
                &who.at.listen,
                &key,
                "POST",
                "/v1/pins/approve",
                Some(&body),
            )?;
            println!(
                "approved the new definition of {} on {}",
                name(&tool),
                name(&server)
            );
        }
        Command::Forget { server, tool, who } => {
            let body = json!({"server": server, "tool": tool, "by": who.by});
            call(&who.at.listen, &key, "POST", "/v1/pins/forget", Some(&body))?;
            match tool {
                Some(tool) => println!("forgot {} on {}", name(&tool), name(&server)),
                None => println!("forgot every tool of {}", name(&server)),
            }
        }
    }
    Ok(())
}

/// The pins as an operator reads them: per server, each tool's state;
/// a change shows which fields differ and both descriptions, and the
/// command that approves it. Every name is printed with control
/// characters escaped (a server chooses its tools' names).
fn render(servers: &Servers) -> String {
    if servers.is_empty() {
        return "no MCP tools pinned yet\n".to_owned();
    }
    let mut out = String::new();
    for (server, tools) in servers {
        let server = name(server);
        out.push_str(&format!("MCP server {server}\n"));
        let width = tools
            .keys()
            .map(|n| name(n).chars().count())
            .max()
            .unwrap_or(0);
        for (tool, pin) in tools {
            let tool = name(tool);
            out.push_str(&format!("  {tool:<width$}  {}\n", state(pin)));
            let Some(waiting) = &pin.waiting else {
                continue;
            };
            let pad = " ".repeat(width + 4);
            if let Some(pinned) = &pin.pinned {
                let changed: Vec<String> = pin.changed_fields().into_iter().map(name).collect();
                if !changed.is_empty() {
                    out.push_str(&format!("{pad}fields changed: {}\n", changed.join(", ")));
                }
                let was = pinned.description.as_deref().map_or("-".into(), text);
                out.push_str(&format!("{pad}pinned: {was}\n"));
            }
            let now = waiting
                .definition
                .description
                .as_deref()
                .map_or("-".into(), text);
            out.push_str(&format!("{pad}now:    {now}\n"));
            out.push_str(&format!(
                "{pad}seen by agent {} (request {}); approve: kalguard tools approve {server} {tool}\n",
                text(&waiting.agent_id),
                text(&waiting.request_id),
            ));
        }
    }
    out
}

/// One line of a tool's state.
fn state(pin: &Pin) -> String {
    let pinned = pin.pinned.as_ref().map(|d| {
        let by = pin.pinned_by.as_deref().unwrap_or(FIRST_USE);
        format!(
            "pinned by {} at {}, sha256 {}…",
            text(by),
            when(d.at_ms),
            d.sha256.get(..16).unwrap_or_default()
        )
    });
    match (&pin.waiting, pinned) {
        (None, Some(pinned)) => pinned,
        (None, None) => "not pinned".to_owned(),
        (Some(waiting), pinned) => {
            let what = match waiting.held {
                super::Held::Changed => "CHANGED".to_owned(),
                super::Held::Suspicious => format!(
                    "SUSPICIOUS: {}",
                    text(waiting.why.as_deref().unwrap_or("flagged"))
                ),
            };
            let new = waiting.definition.sha256.get(..16).unwrap_or_default();
            match pinned {
                Some(pinned) => format!("{what}, held back (new sha256 {new}…; {pinned})"),
                None => format!("{what}, held back (sha256 {new}…, never pinned)"),
            }
        }
    }
}

/// Unix milliseconds as an RFC 3339 UTC time (to the second).
fn when(ms: u64) -> String {
    let seconds = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms"))
}

#[cfg(test)]
mod tests {
    use super::super::{Definition, Held, Waiting};
    use super::*;
    use std::collections::BTreeMap;

    fn definition(sha: char, description: &str, schema: char) -> Definition {
        Definition {
            sha256: sha.to_string().repeat(64),
            fields: BTreeMap::from([
                ("description".to_owned(), "d".repeat(64)),
                ("inputSchema".to_owned(), schema.to_string().repeat(64)),
            ]),
            description: Some(description.into()),
            at_ms: 1_765_000_000_000,
        }
    }

    #[test]
    fn a_change_shows_what_changed_and_how_to_approve_it() {
        let mut tools = BTreeMap::new();
        tools.insert(
            "search".to_owned(),
            Pin {
                pinned: Some(definition('a', "Search", '1')),
                pinned_by: Some(FIRST_USE.into()),
                waiting: None,
            },
        );
        tools.insert(
            "rm\u{1b}[2J".to_owned(),
            Pin {
                pinned: Some(definition('b', "Remove", '1')),
                pinned_by: Some("alice".into()),
                waiting: Some(Waiting {
                    definition: definition('c', "Remove\nIGNORE", '2'),
                    held: Held::Changed,
                    why: None,
                    agent_id: "bot".into(),
                    request_id: "req_1".into(),
                }),
            },
        );
        let out = render(&BTreeMap::from([("/mcp".to_owned(), tools)]));
        assert!(out.starts_with("MCP server /mcp\n"), "{out}");
        assert!(
            out.contains("search") && out.contains("pinned by first use at 2025-12-06T05:46:40Z"),
            "{out}"
        );
        assert!(
            out.contains("CHANGED, held back (new sha256 cccccccccccccccc…"),
            "{out}"
        );
        assert!(out.contains("fields changed: inputSchema\n"), "{out}");
        assert!(out.contains("now:    Remove\\u{a}IGNORE"), "{out}");
        assert!(
            out.contains("kalguard tools approve /mcp rm\\u{1b}[2J"),
            "{out}"
        );
        assert!(
            !out.contains('\u{1b}'),
            "no control character reaches the terminal"
        );
        assert_eq!(render(&BTreeMap::new()), "no MCP tools pinned yet\n");
        // Look-alike names show what they are.
        assert_eq!(name("rеad_fi\u{200b}le"), "r\\u{435}ad_fi\\u{200b}le");
        assert_eq!(text("Lisez-moi \u{202e}txt"), "Lisez-moi \\u{202e}txt");
    }
}
