//! KalGuard's wire contracts: the one definition of what passes between the
//! filter (in Envoy), the control plane (`kalguard`) and the Cloud, shared by
//! all three programs. `docs/contracts.md` describes each message and names
//! the type here that defines it; each has a golden test beside it.
//!
//! - [`token`]: agent tokens (claims, minting, verification) and
//!   [`agent_id`] (what an agent ID may contain), with [`capability`] and
//!   [`glob`] (the patterns capabilities and policies match with).
//! - [`policy`]: the operator's policy document, parsed and validated.
//! - [`refusal`]: error codes, status codes and refusal bodies;
//!   [`skeleton`]: the look-alike folding names are compared on.
//! - [`channel`]: the authenticated filter ↔ control-plane channel (key, MACs);
//!   [`event`]: the decision events the filter reports and the control plane
//!   forwards to the Cloud; [`snapshot`]: the state the control plane
//!   publishes to the filter.
//! - [`cloud`]: the Cloud's license and usage API, and plan limits.
//! - [`approval`]: a held request filed for a person's approval, and the answer.
//! - [`pins`]: the MCP tools the filter files for pinning, and the verdicts.
//!
//! The control plane and the Cloud link this crate. The filter compiles these
//! same files into itself as its module `wire` and re-exports each module at
//! its own root (one copy of serde's generic code in the `.wasm`, not two), so
//! here a module names another as `crate::<module>`, every module is
//! re-exported by `kalguard-filter`'s `lib.rs`, and the dependencies are a
//! subset of the filter's: serde, serde_json, hmac, sha2 and base64.

pub mod agent_id;
pub mod approval;
pub mod capability;
pub mod channel;
pub mod cloud;
pub mod event;
pub mod glob;
pub mod pins;
pub mod policy;
pub mod refusal;
pub mod skeleton;
pub mod snapshot;
pub mod token;

#[cfg(test)]
pub(crate) mod golden;
