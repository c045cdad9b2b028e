//! The thin proxy-wasm layer: reads what the guard needs from Envoy, acts on
//! its decisions. No decision is made here.
//!
//! Host calls go through `proxy_wasm::hostcalls` (which return `Result`) rather
//! than the SDK's trait helpers (which panic on an unexpected status): a host
//! failure becomes a fail-closed 503, never a crashed VM.

mod http;
mod metrics;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use crate::config::Config;
use crate::guard::{Credentials, Guard};
use metrics::Metrics;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// Everything a request context reads, prepared once per configuration.
struct Shared {
    guard: Guard,
    credentials: Credentials,
    metrics: Metrics,
    request_ids: RequestIds,
}

#[derive(Default)]
struct Root {
    shared: Option<Rc<Shared>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let raw = match hostcalls::get_buffer(
            BufferType::PluginConfiguration,
            0,
            plugin_configuration_size,
        ) {
            Ok(raw) => raw.unwrap_or_default(),
            Err(status) => {
                log::error!("kalguard: cannot read the plugin configuration ({status:?})");
                return false;
            }
        };
        let config = match Config::parse(&raw) {
            Ok(config) => config,
            Err(error) => {
                log::error!("kalguard: {error}");
                return false;
            }
        };
        let credentials = credentials_from_environment();
        if credentials.signing_secrets.is_empty() {
            log::warn!(
                "kalguard: KALGUARD_TOKEN_SECRET is not set in the Wasm VM's environment \
                 (vm_config.environment_variables); every agent token is refused with 503 \
                 KALGUARD_UNAVAILABLE until a signing secret is configured"
            );
        }
        self.shared = Some(Rc::new(Shared {
            guard: Guard::new(config),
            credentials,
            metrics: Metrics::define(),
            request_ids: RequestIds::default(),
        }));
        log::info!("kalguard: filter configured");
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let shared = self.shared.clone()?;
        Some(Box::new(http::Request::new(shared)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The local signing secret and default agent token, from the VM's
/// environment (`vm_config.environment_variables` in Envoy).
fn credentials_from_environment() -> Credentials {
    let non_empty = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    Credentials {
        signing_secrets: non_empty("KALGUARD_TOKEN_SECRET").into_iter().collect(),
        revoked_token_hashes: Default::default(),
        default_agent_token: non_empty("KALGUARD_AGENT_TOKEN"),
    }
}

/// Unix seconds from the host clock; `None` if the host cannot tell.
fn now_unix() -> Option<i64> {
    let time = hostcalls::get_current_time().ok()?;
    let secs = time.duration_since(UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

/// Unguessable request IDs: a per-VM random SipHash key over a counter and the
/// clock (WASI seeds `RandomState` from the host's random source).
#[derive(Default)]
struct RequestIds {
    keys: RandomState,
    counter: std::cell::Cell<u64>,
}

impl RequestIds {
    fn next(&self) -> String {
        let n = self.counter.get().wrapping_add(1);
        self.counter.set(n);
        let nanos = hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let high = self.keys.hash_one((n, nanos, 0u8));
        let low = self.keys.hash_one((n, nanos, 1u8));
        format!("req_{high:016x}{low:016x}")
    }
}
