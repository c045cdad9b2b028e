//! KalGuard Cloud, self-hosted: the API sidecars sync their license and usage with,
//! and the dashboard where an organisation manages API keys, agent tokens, usage,
//! audit events and billing.
//!
//! Layout: [`api`] is what control planes call (`x-api-key`), [`web`] is the
//! server-rendered dashboard (session cookie + CSRF), [`store`] holds every SQL
//! query (each one scoped to an organisation), [`db`] opens SQLite or Postgres
//! and runs the shared migrations, [`plan`] is the plan table from DESIGN.md.

/// What an agent ID may contain: one rule, shared with the filter and `kalguard token create`.
pub use kalguard_wire::agent_id;
pub mod alerts;
pub mod api;
pub mod app;
pub mod config;
pub mod db;
pub mod license_changes;
pub mod net;
pub mod plan;
pub mod role;
pub mod secrets;
pub mod store;
pub mod stripe;
pub mod time_util;
pub mod web;

pub use app::{router, AppState};
pub use config::Config;
pub use db::Db;
