//! `kalguard-stub-llm [ADDR]`: the demo stack's stand-in LLM provider
//! (default 127.0.0.1:18000). See `kalguard_e2e::stub`.

use std::net::SocketAddr;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18000".to_owned());
    let addr: SocketAddr = match addr.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("kalguard-stub-llm: bad listen address {addr:?}: {e}");
            return ExitCode::from(2);
        }
    };
    println!("kalguard-stub-llm: stand-in LLM upstream (OpenAI, Anthropic, MCP) on http://{addr}");
    let log = Default::default();
    tokio::select! {
        result = kalguard_e2e::stub::bind_and_serve(addr, log) => match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kalguard-stub-llm: cannot serve on {addr}: {e}");
                ExitCode::FAILURE
            }
        },
        _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
    }
}
