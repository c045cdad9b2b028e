//! KalGuard filter: guards AI agents' traffic to LLM providers and MCP tool
//! servers from inside Envoy, as a proxy-wasm HTTP filter.
//!
//! Everything that decides is plain Rust with no host calls, tested natively:
//! [`route`] (what a request is), [`request`] (provider body formats),
//! [`guard`] (the request path), [`exchange`] (one request across its
//! callbacks, as effects the host carries out), [`compat`] (the check API),
//! [`firewall`] (prompt inspection) and [`screen`] (its verdict applied).
//! Agent tokens, policy, refusals and the authenticated channel to the control
//! plane are wire contracts shared with the control plane and the Cloud: they
//! live in `kalguard-wire` ([`token`], [`agent_id`], [`capability`],
//! [`policy`], [`refusal`], [`channel`]). Only `host`, built for `wasm32`, talks to
//! proxy-wasm.

pub mod answer;
pub mod compat;
pub mod config;
pub mod event;
pub mod exchange;
pub mod firewall;
pub mod guard;
pub mod lease;
pub mod mediation;
pub mod observe;
pub mod pinning;
pub mod quota;
pub mod request;
pub mod route;
pub mod screen;
pub mod spotlight;
pub mod state;
pub mod stream;
pub mod sync;
pub mod taint;
mod work;

#[cfg(test)]
mod linearity;

/// The `kalguard-wire` crate's modules, compiled into the filter from their one
/// source rather than linked as a crate: Rust instantiates generic code (serde's
/// JSON reader, B-trees) once per crate, and linking the crate would carry a
/// second copy of it in the `.wasm` (34 KB). Its modules also sit at the
/// crate root (below), where they were before the crate existed; the wire
/// sources name each other through those paths (`crate::refusal`, …).
#[path = "../../wire/src/lib.rs"]
pub mod wire;

pub use wire::{
    agent_id, approval, capability, channel, cloud, glob, pins, policy, refusal, skeleton,
    snapshot, token,
};
// `event` is the filter's own module, which re-exports the wire's.
#[cfg(test)]
use wire::golden;

#[cfg(target_arch = "wasm32")]
mod host;
