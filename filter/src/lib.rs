//! KalGuard filter: guards AI agents' traffic to LLM providers and MCP tool
//! servers from inside Envoy, as a proxy-wasm HTTP filter.
//!
//! Everything that decides is plain Rust with no host calls, tested natively:
//! [`token`] (agent identity) and [`agent_id`] (what an agent ID may contain), [`capability`], [`route`] (what a request is),
//! [`request`] (provider body formats), [`guard`] (the request path), [`exchange`] (one request across its callbacks),
//! [`refusal`] (error codes and bodies), [`compat`] (the check API),
//! [`firewall`] (prompt inspection), [`screen`] (its verdict applied) and
//! [`channel`] (the authenticated link to the control plane). Only `host`, built for `wasm32`, talks to
//! proxy-wasm.

pub mod agent_id;
pub mod capability;
pub mod channel;
pub mod compat;
pub mod config;
pub mod event;
pub mod exchange;
pub mod firewall;
pub mod glob;
pub mod guard;
pub mod lease;
pub mod mediation;
pub mod policy;
pub mod quota;
pub mod refusal;
pub mod request;
pub mod response;
pub mod route;
pub mod screen;
pub mod skeleton;
pub mod state;
pub mod token;
pub mod tool_gate;

#[cfg(target_arch = "wasm32")]
mod host;
