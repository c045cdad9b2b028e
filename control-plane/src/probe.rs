//! `kalguard probe`: asks a running control plane's `/healthz` whether it
//! serves, for a Kubernetes `exec` probe.
//!
//! In a pod the control plane listens on a Unix socket that only the proxy
//! shares, and an `httpGet` probe reaches TCP ports only; the control plane's
//! image holds this one binary and nothing else (no shell, no curl), so the
//! binary probes itself. Exit 0 when `/healthz` answers 200, 1 otherwise,
//! saying why.

use std::io::{Read, Write};
use std::time::Duration;

use crate::settings::Listen;

/// How long the whole probe may take: a control plane that cannot answer a
/// loopback `/healthz` in this time is not serving the filter either.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Why the probe failed: the control plane did not answer, or not with 200.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("probe: {listen} did not answer /healthz: {source}")]
    NoAnswer {
        listen: Listen,
        source: std::io::Error,
    },
    #[error("probe: {listen} answered /healthz with {status_line:?}")]
    Status { listen: Listen, status_line: String },
}

/// The `probe` subcommand's arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The control plane's address, as given to `kalguard serve --listen`.
    #[arg(long, env = "KALGUARD_LISTEN", default_value = "127.0.0.1:9292")]
    pub listen: Listen,
}

/// One `GET /healthz`; `Ok` with the answer's `status` field when it is 200.
pub fn run(args: Args) -> Result<(), ProbeError> {
    let answer = get_healthz(&args.listen).map_err(|source| ProbeError::NoAnswer {
        listen: args.listen.clone(),
        source,
    })?;
    let (status_line, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let code = status_line.get(9..12).unwrap_or_default();
    if code != "200" {
        return Err(ProbeError::Status {
            status_line: status_line.lines().next().unwrap_or_default().to_owned(),
            listen: args.listen,
        });
    }
    let status = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|health| health["status"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    println!("control plane at {} serves (status {status})", args.listen);
    Ok(())
}

/// The raw HTTP/1.0 answer (HTTP/1.0: the server closes after the body, and
/// answers it unchunked).
fn get_healthz(listen: &Listen) -> std::io::Result<String> {
    let request = b"GET /healthz HTTP/1.0\r\nHost: kalguard\r\n\r\n";
    let mut answer = Vec::new();
    match listen {
        Listen::Tcp(addr) => {
            let mut stream = std::net::TcpStream::connect_timeout(addr, TIMEOUT)?;
            stream.set_read_timeout(Some(TIMEOUT))?;
            stream.set_write_timeout(Some(TIMEOUT))?;
            stream.write_all(request)?;
            stream.read_to_end(&mut answer)?;
        }
        Listen::Unix(path) => {
            let mut stream = std::os::unix::net::UnixStream::connect(path)?;
            stream.set_read_timeout(Some(TIMEOUT))?;
            stream.set_write_timeout(Some(TIMEOUT))?;
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
    fn nothing_listening_is_a_failure_naming_the_address() {
        let dir = std::env::temp_dir().join(format!("kalguard-probe-{}", std::process::id()));
        let socket = dir.join("absent.sock");
        let error = run(Args {
            listen: Listen::Unix(socket.clone()),
        })
        .unwrap_err()
        .to_string();
        assert!(error.contains(&socket.display().to_string()), "{error}");
    }

    #[test]
    fn a_200_passes_and_another_status_fails() {
        for (answer, passes) in [
            ("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"status\":\"degraded\"}", true),
            ("HTTP/1.1 503 Service Unavailable\r\n\r\n", false),
        ] {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = std::thread::spawn(move || {
                let (mut stream, _) = listener.accept().unwrap();
                let mut request = [0u8; 256];
                let _ = stream.read(&mut request).unwrap();
                stream.write_all(answer.as_bytes()).unwrap();
            });
            let result = run(Args {
                listen: Listen::Tcp(addr),
            });
            server.join().unwrap();
            assert_eq!(result.is_ok(), passes, "{answer:?}: {result:?}");
        }
    }
}
