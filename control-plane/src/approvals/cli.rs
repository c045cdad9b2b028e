//! `kalguard approvals list|approve|deny`: a person's side of approvals,
//! spoken to the running control plane (`--listen`, as `kalguard serve` was
//! given it) with the channel key from `KALGUARD_CHANNEL_KEY`: whoever may
//! decide must hold the key, as the filter does.

use crate::clock::now_ms;
use crate::settings::Listen;
use kalguard_wire::channel::{ChannelKey, ENV_VAR, KEY_HEADER};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::Duration;

/// How long one CLI call may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why an approvals command failed; printed after `kalguard: `.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("approvals: {0}")]
    Key(String),
    #[error("approvals: {0:?} is not an approval ID (see `kalguard approvals list`)")]
    NotAnId(String),
    #[error("approvals: {0}")]
    Call(#[from] CallError),
}

/// Why a call of an operator command (`approvals`, `tools`) to the control
/// plane failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{listen} did not answer {method} {path}: {source}")]
    Unreachable {
        listen: String,
        method: String,
        path: String,
        source: std::io::Error,
    },
    #[error("{listen} answered {status}: {error}")]
    Refused {
        listen: String,
        status: String,
        error: String,
    },
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// List the requests waiting for a person, oldest first.
    List {
        /// Print the approvals as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        at: At,
    },
    /// Approve a held request: it goes upstream unchanged (this once).
    Approve {
        /// The approval's ID, as `list` shows it.
        id: String,
        /// Also approve later requests of the same agent, action, route, tool or
        /// model and rule, whatever their arguments, for this many minutes
        /// (at most a day; a new policy version ends it).
        #[arg(long)]
        for_minutes: Option<u64>,
        #[command(flatten)]
        who: Who,
    },
    /// Deny a held request: the agent gets 403 REQUIRE_APPROVAL with the reason.
    Deny {
        id: String,
        /// Told to the agent and kept in the audit log.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        who: Who,
    },
}

/// Where the control plane listens (for every operator command:
/// `approvals`, `tools`).
#[derive(clap::Args)]
pub struct At {
    /// The control plane's address, as given to `kalguard serve --listen`.
    #[arg(long, env = "KALGUARD_LISTEN", default_value = "127.0.0.1:9292")]
    pub(crate) listen: Listen,
}

/// Who decides, for the audit log.
#[derive(clap::Args)]
pub struct Who {
    /// The name the audit log records (default: $USER).
    #[arg(long, env = "USER", default_value = "unnamed")]
    pub(crate) by: String,
    #[command(flatten)]
    pub(crate) at: At,
}

pub fn run(command: Command) -> Result<(), CliError> {
    let key = ChannelKey::parse(std::env::var(ENV_VAR).ok().as_deref())
        .map_err(|e| CliError::Key(e.to_string()))?;
    match command {
        Command::List { json, at } => {
            let listed = call(&at.listen, &key, "GET", "/v1/approvals", None)?;
            if json {
                println!("{listed}");
            } else {
                print_list(&listed);
            }
            Ok(())
        }
        Command::Approve {
            id,
            for_minutes,
            who,
        } => {
            let body = json!({"by": who.by, "forMinutes": for_minutes});
            let path = format!("/v1/approvals/{}/approve", path_segment(&id)?);
            call(&who.at.listen, &key, "POST", &path, Some(&body))?;
            match for_minutes {
                Some(minutes) => {
                    println!("approved {id}, and its agent's same calls for {minutes} minutes")
                }
                None => println!("approved {id}"),
            }
            Ok(())
        }
        Command::Deny { id, reason, who } => {
            let body = json!({"by": who.by, "reason": reason});
            let path = format!("/v1/approvals/{}/deny", path_segment(&id)?);
            call(&who.at.listen, &key, "POST", &path, Some(&body))?;
            println!("denied {id}");
            Ok(())
        }
    }
}

/// An ID as it goes into a path: approval IDs are `ap_` and hex digits.
fn path_segment(id: &str) -> Result<&str, CliError> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(id)
    } else {
        Err(CliError::NotAnId(id.to_owned()))
    }
}

fn print_list(listed: &Value) {
    let Some(approvals) = listed.as_array().filter(|a| !a.is_empty()) else {
        println!("no approvals waiting");
        return;
    };
    let now = now_ms();
    for approval in approvals {
        // Control characters shown escaped: a name can never move the cursor.
        let text = |key: &str| printable(approval[key].as_str().unwrap_or_default());
        let what = [text("tool"), text("model")].concat();
        let expires = approval["expiresAtMs"].as_u64().unwrap_or(0);
        println!(
            "{}  agent {}  {} {}  rule {}  policy {}  args sha256 {}…  request {}  expires in {} s\n    {}",
            text("id"),
            text("agentId"),
            text("action"),
            what,
            approval["ruleId"].as_str().map_or_else(|| "(default)".to_owned(), printable),
            text("policyVersion"),
            text("argumentsSha256").get(..16).unwrap_or_default(),
            text("requestId"),
            expires.saturating_sub(now) / 1000,
            text("reason"),
        );
    }
}

/// `text` with every control character escaped (`\u{1b}`, `\n`).
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// One HTTP/1.0 call (the server closes after an unchunked body); the
/// answer's JSON when it is 200, else the control plane's error.
pub(crate) fn call(
    listen: &Listen,
    key: &ChannelKey,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, CallError> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.0\r\nhost: kalguard\r\n{KEY_HEADER}: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        key.header_value(),
        body.len()
    );
    let answer = exchange(listen, request.as_bytes()).map_err(|source| CallError::Unreachable {
        listen: listen.to_string(),
        method: method.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.get(9..12).unwrap_or_default();
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if status == "200" {
        return Ok(value);
    }
    let error = value["error"].as_str().unwrap_or(body);
    Err(CallError::Refused {
        listen: listen.to_string(),
        status: status.to_owned(),
        error: error.to_owned(),
    })
}

fn exchange(listen: &Listen, request: &[u8]) -> std::io::Result<String> {
    let mut answer = Vec::new();
    match listen {
        Listen::Tcp(addr) => {
            let mut stream = std::net::TcpStream::connect_timeout(addr, TIMEOUT)?;
            stream.set_read_timeout(Some(TIMEOUT))?;
            stream.write_all(request)?;
            stream.read_to_end(&mut answer)?;
        }
        Listen::Unix(path) => {
            let mut stream = std::os::unix::net::UnixStream::connect(path)?;
            stream.set_read_timeout(Some(TIMEOUT))?;
            stream.write_all(request)?;
            stream.read_to_end(&mut answer)?;
        }
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_printed_escaped() {
        assert_eq!(printable("o1\u{1b}[1A\r\nx"), "o1\\u{1b}[1A\\r\\nx");
        assert_eq!(printable("plain ümlaut"), "plain ümlaut");
    }

    #[test]
    fn only_approval_ids_go_into_a_path() {
        assert_eq!(path_segment("ap_0123abcd").ok(), Some("ap_0123abcd"));
        for bad in ["", "../healthz", "ap_1/approve", "ap 1", "ap_1?x"] {
            assert!(path_segment(bad).is_err(), "{bad:?}");
        }
    }
}
