//! The thin proxy-wasm layer: reads what the pure core needs from Envoy,
//! carries out the effects of each request's [`Exchange`](crate::exchange),
//! and keeps the state channel to the control plane. No request decision is
//! made here.
//!
//! Host calls go through `proxy_wasm::hostcalls` (which return `Result`) rather
//! than the SDK's trait helpers (which unwrap): a host failure becomes a
//! fail-closed 503, never a crashed VM.

mod http;
mod metrics;
mod sync;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel, MapType};
use std::cell::{Cell, RefCell};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use crate::channel::{self, ChannelKey, Position};
use crate::config::Config;
use crate::event::Event;
use crate::exchange::{CallAnswer, InForce};
use crate::guard::{Credentials, Guard};
use crate::quota::{self, KnownAgents, StoreError};
use crate::state::{Snapshot, State};
use metrics::Metrics;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// Everything a request context reads, prepared once per configuration.
struct Shared {
    guard: Guard,
    /// What the VM's own environment gives, in force until a snapshot arrives.
    local: Credentials,
    /// The last snapshot this VM parsed.
    state: RefCell<Option<State>>,
    /// Where `state` sits, compared with the shared position key per request.
    state_position: RefCell<Option<Position>>,
    metrics: Metrics,
    request_ids: RequestIds,
    /// The shared event queue, when the control plane channel is on.
    queue: Option<u32>,
    /// Agents this VM has seen admitted today (the agent limit's cache).
    known_agents: RefCell<KnownAgents>,
    /// The channel key, when the control plane channel is on (approval
    /// requests carry it, and their answers are verified with it).
    channel_key: Option<ChannelKey>,
}

impl Shared {
    /// Adopts the snapshot in shared data if its position moved (the lease
    /// holder stores only snapshots that verified and superseded the one
    /// held, so any move is forward). A snapshot that does not parse leaves
    /// the state in force unchanged.
    fn refresh(&self) {
        let Some(position) = sync::stored_position() else {
            return;
        };
        if self.state_position.borrow().as_ref() == Some(&position) {
            return;
        }
        let version = position.version;
        *self.state_position.borrow_mut() = Some(position);
        let snapshot = hostcalls::get_shared_data(sync::STATE_KEY)
            .ok()
            .and_then(|(v, _)| v);
        match snapshot.as_deref().and_then(Snapshot::parse) {
            Some(snapshot) => {
                let mut state = snapshot.into_state(&self.local);
                state.inherit_policy(self.state.borrow().as_ref());
                log_policy_change(&state, self.guard.config().policy.is_some());
                *self.state.borrow_mut() = Some(state);
            }
            None => log::warn!("kalguard: shared state version {version} does not parse; keeping the state in force"),
        }
    }

    /// Runs `f` with everything in force for a request whose head arrived at
    /// `now_ms`.
    fn with_enforcement<R>(&self, now_ms: u64, f: impl FnOnce(InForce<'_>) -> R) -> R {
        let state = self.state.borrow();
        let known_agents = &mut self.known_agents.borrow_mut();
        let config = self.guard.config();
        f(InForce::new(
            config,
            state.as_ref(),
            &self.local,
            &SharedData,
            known_agents,
            now_ms,
        ))
    }

    /// Hands a decision event to the lease holder; a full or missing queue
    /// counts a drop, never blocks the request.
    fn emit(&self, event: &Event) {
        let Some(queue) = self.queue else {
            return;
        };
        if hostcalls::enqueue_shared_queue(queue, Some(&event.encode())).is_err() {
            self.metrics.event_dropped();
        }
    }
}

/// The plugin's root context. Its prepared state is shared with the request
/// contexts it creates: a reconfiguration replaces it, and the old one is freed
/// when the last request that started under it ends.
#[derive(Default)]
struct Root {
    shared: Option<Rc<Shared>>,
    sync: Option<sync::Channel>,
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if let (Some(shared), Some(sync)) = (self.shared.as_deref(), self.sync.as_mut()) {
            sync.on_response(shared, token_id, body_size, now_ms());
        }
    }
}

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
        let guard = match Config::parse(&raw).and_then(Guard::new) {
            Ok(guard) => guard,
            Err(error) => {
                log::error!("kalguard: {error}");
                return false;
            }
        };
        let local = credentials_from_environment();
        if local.signing_secrets.is_empty() {
            log::warn!(
                "kalguard: KALGUARD_TOKEN_SECRET is not set in the Wasm VM's environment \
                 (vm_config.environment_variables); every agent token is refused with 503 \
                 KALGUARD_UNAVAILABLE until a signing secret is configured or the control plane sends one"
            );
        }
        let channel_key = if guard.config().control_plane_cluster.is_empty() {
            None
        } else {
            // A channel without its key would be one anyone on the control
            // plane's address could feed: refuse the configuration instead.
            match ChannelKey::parse(std::env::var(channel::ENV_VAR).ok().as_deref()) {
                Ok(key) => Some(key),
                Err(error) => {
                    log::error!(
                        "kalguard: the control plane channel (cluster `{}`) needs a key in the Wasm VM's environment: {error}; or set \"control_plane_cluster\": \"\" to run without a control plane",
                        guard.config().control_plane_cluster
                    );
                    return false;
                }
            }
        };
        let queue = if channel_key.is_some() {
            hostcalls::register_shared_queue(sync::QUEUE_NAME).ok()
        } else {
            None
        };
        if channel_key.is_some() && hostcalls::set_tick_period(sync::TICK).is_err() {
            log::error!("kalguard: cannot set the tick period; the control plane channel is off");
        }
        let request_ids = RequestIds::default();
        let me = format!("root-{}", request_ids.next());
        self.sync = channel_key.clone().map(|key| sync::Channel::new(me, key));
        let shared = Rc::new(Shared {
            guard,
            local,
            state: RefCell::new(None),
            state_position: RefCell::new(None),
            metrics: Metrics::define(),
            request_ids,
            queue,
            known_agents: RefCell::new(KnownAgents::default()),
            channel_key,
        });
        if let Err(error) = quota::seed(&SharedData, now_unix().unwrap_or(0)) {
            log::error!("kalguard: cannot create the usage counter in shared data ({error:?}); the first check will create it");
        }
        shared.refresh();
        self.shared = Some(shared);
        log::info!("kalguard: filter configured");
        true
    }

    fn on_tick(&mut self) {
        if let (Some(shared), Some(sync)) = (self.shared.as_deref(), self.sync.as_mut()) {
            sync.tick(shared, now_ms());
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(http::Request::new(Rc::clone(
            self.shared.as_ref()?,
        ))))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// All of a header map in one host call: each call into Envoy costs about as
/// much as the work of a small request, so a head is read once, not per name.
fn header_map(map: MapType) -> Vec<(String, String)> {
    hostcalls::get_map(map).unwrap_or_default()
}

/// Envoy's VM-shared data, the quota's compare-and-swap store.
struct SharedData;

impl quota::Store for SharedData {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(value), Some(cas))) => Ok(Some((value, cas))),
            Ok((None, _)) => Ok(None),
            // A value without its CAS could only be written back unconditionally.
            Ok((Some(_), None)) | Err(_) => Err(StoreError::Host),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(proxy_wasm::types::Status::CasMismatch) => Err(StoreError::CasMismatch),
            Err(_) => Err(StoreError::Host),
        }
    }
}

/// Says what a new state does to the policy, once per state version.
fn log_policy_change(state: &crate::state::State, configured: bool) {
    if let Some(error) = &state.policy_error {
        log::error!(
            "kalguard: state version {}: {error}; the previous policy stays in force",
            state.version
        );
    }
    if !state.custom_policy && (configured || state.policy.is_some()) {
        log::warn!(
            "kalguard: state version {}: the Cloud plan lacks `{}`; custom policy rules are not enforced",
            state.version,
            crate::state::CUSTOM_POLICY_FEATURE
        );
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
        verified: Default::default(),
    }
}

fn host_time() -> Option<std::time::Duration> {
    hostcalls::get_current_time()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()
}

/// Unix seconds from the host clock; `None` if the host cannot tell.
fn now_unix() -> Option<i64> {
    i64::try_from(host_time()?.as_secs()).ok()
}

/// Unix milliseconds from the host clock (0 if the host cannot tell).
fn now_ms() -> u64 {
    host_time().map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Unguessable request IDs: a per-VM random SipHash key over a counter and the
/// clock (WASI seeds `RandomState` from the host's random source).
#[derive(Default)]
struct RequestIds {
    keys: RandomState,
    counter: Cell<u64>,
}

impl RequestIds {
    fn next(&self) -> String {
        let n = self.counter.get().wrapping_add(1);
        self.counter.set(n);
        let nanos = host_time().map_or(0, |d| d.as_nanos());
        let high = self.keys.hash_one((n, nanos, 0u8));
        let low = self.keys.hash_one((n, nanos, 1u8));
        format!("req_{high:016x}{low:016x}")
    }
}

/// The answer to this context's call to the control plane, as Envoy holds
/// it: status, `x-kalguard-mac` and body (the approval call and the channel's
/// calls read it alike).
fn call_answer(body_size: usize) -> CallAnswer {
    let header = |name| {
        hostcalls::get_map_value(MapType::HttpCallResponseHeaders, name)
            .ok()
            .flatten()
    };
    CallAnswer {
        status: header(":status"),
        mac: header(channel::MAC_HEADER).unwrap_or_default(),
        body: hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default(),
    }
}
