//! `kalguard serve`: starts the control plane next to Envoy — opens the audit
//! log and the usage spool, validates the license, then serves the filter API
//! while the license sync and the usage reporter run in the background.

use crate::api;
use crate::audit::{enforce_retention, AuditError, AuditLog};
use crate::clock::now_ms;
use crate::cloud::{ClientError, CloudClient};
use crate::events::FilterEvent;
use crate::fsutil::{create_dir, FileError};
use crate::license::LicenseCache;
use crate::metrics::{add, Metrics};
use crate::policy::{self, PolicyError};
use crate::recent::RecentBatches;
use crate::reported::ReportedFile;
use crate::settings::{clamp_sync_interval, Args, Listen, NoChannelKey, Secrets};
use crate::spool::{Spool, SpoolError};
use crate::state::{Inputs, Mode, StateStore};
use crate::{sync, usage};
use axum::Router;
use kalguard_wire::channel::ChannelKey;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A spool segment is sealed into a batch at this many events.
const EVENTS_PER_BATCH: usize = 500;
/// How many filter `batchId`s are remembered to drop retried posts.
const RECENT_BATCHES: usize = 10_000;
/// How long in-flight requests may finish after SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Why `kalguard serve` could not start or stopped serving. Each names the
/// setting, file or address involved.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    ChannelKey(#[from] NoChannelKey),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    CloudUrl(#[from] ClientError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot listen on {listen} (--listen / KALGUARD_LISTEN): {source}")]
    Listen {
        listen: Listen,
        source: std::io::Error,
    },
    #[error("control plane server on {bound} failed: {source}")]
    Server {
        bound: Listen,
        source: std::io::Error,
    },
}

/// Why a batch of filter events was not recorded (the filter retries it).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The list of recent batch IDs could not be written.
    #[error(transparent)]
    Recent(#[from] FileError),
    #[error("a disk task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Everything the tasks and handlers share.
pub struct Ctx {
    pub state: StateStore,
    /// `KALGUARD_CHANNEL_KEY`: every filter call must present it, every
    /// snapshot is signed with it.
    pub channel_key: ChannelKey,
    pub metrics: Metrics,
    pub health: Mutex<SyncHealth>,
    pub cloud: Option<Cloud>,
    pub sync_interval: Duration,
    pub started: Instant,
    pub token_secret_set: bool,
    pub audit_path: PathBuf,
    sink: Mutex<Sink>,
    pub spool_depth: AtomicUsize,
    pub spool_capacity: usize,
    /// Wakes the usage reporter (a batch was sealed).
    pub reporter_wake: Notify,
    /// Asks the license sync to run now (SIGHUP).
    pub sync_now: Notify,
    /// The watched policy file (`KALGUARD_POLICY_PATH`).
    pub policy: Option<policy::Watched>,
    /// Where today's reported checks are kept.
    pub reported_file: ReportedFile,
}

/// The Cloud side, present when `KALGUARD_API_KEY` is set.
pub struct Cloud {
    pub client: CloudClient,
    pub url: String,
    pub cache: LicenseCache,
}

/// What `/healthz` says about the Cloud.
#[derive(Default)]
pub struct SyncHealth {
    pub last_sync_ok_ms: Option<u64>,
    pub last_sync_error: Option<String>,
    /// The Cloud refused the API key (401/403 or `valid: false`).
    pub api_key_refused: bool,
    pub last_report_error: Option<String>,
}

/// Where decisions go: the audit log always, the spool when a Cloud is configured.
pub struct Sink {
    pub audit: AuditLog,
    pub spool: Option<Spool>,
    pub recent: RecentBatches,
}

impl Ctx {
    pub fn health(&self) -> MutexGuard<'_, SyncHealth> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn sink(&self) -> MutexGuard<'_, Sink> {
        self.sink.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Audits the events, then spools their usage; both fsync'd. Blocking.
    /// False when `batch_id` was already recorded (nothing is written again).
    pub fn record(
        &self,
        events: &[FilterEvent],
        batch_id: Option<&str>,
    ) -> Result<bool, RecordError> {
        let retention = self.state.current().audit_retention_days;
        let mut sink = self.sink();
        if batch_id.is_some_and(|id| sink.recent.contains(id)) {
            return Ok(false);
        }
        sink.audit.append(events, retention)?;
        add(&self.metrics.audit_records, events.len());
        if let Some(spool) = &mut sink.spool {
            let usage: Vec<_> = events.iter().filter_map(FilterEvent::usage).collect();
            let appended = spool.append(&usage)?;
            add(&self.metrics.spool_dropped, appended.dropped);
            self.spool_depth.store(spool.depth(), Ordering::Relaxed);
            if spool.oldest().is_some() {
                self.reporter_wake.notify_one();
            }
        }
        if let Some(id) = batch_id {
            sink.recent.insert(id)?;
        }
        Ok(true)
    }

    /// Runs blocking work on the locked sink off the async workers.
    pub async fn with_sink<R: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&mut Sink) -> R + Send + 'static,
    ) -> Result<R, tokio::task::JoinError> {
        let ctx = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut sink = ctx.sink();
            let result = work(&mut sink);
            if let Some(spool) = &sink.spool {
                ctx.spool_depth.store(spool.depth(), Ordering::Relaxed);
            }
            result
        })
        .await
    }
}

pub fn run(args: Args) -> Result<(), ServeError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "kalguard=info,info".into()),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> Result<(), ServeError> {
    let secrets = Secrets::from_env();
    let channel_key = secrets.require_channel_key()?;
    let (sync_interval, clamped) = clamp_sync_interval(args.sync_interval_ms);
    if let Some(note) = clamped {
        tracing::warn!("{note}");
    }
    create_dir(&args.data_dir)?;
    let audit_path = args
        .audit_log_path
        .clone()
        .unwrap_or_else(|| args.data_dir.join("audit.jsonl"));
    let audit = AuditLog::open(&audit_path)?;
    let cloud = match &secrets.api_key {
        Some(key) => Some(Cloud {
            client: CloudClient::new(&args.cloud_url, key.clone())?,
            url: args.cloud_url.trim_end_matches('/').to_owned(),
            cache: LicenseCache::new(&args.data_dir, key),
        }),
        None => None,
    };
    let spool = match &cloud {
        Some(_) => Some(Spool::open(
            &args.data_dir.join("spool"),
            args.spool_max_events,
            EVENTS_PER_BATCH,
        )?),
        None => None,
    };
    if secrets.token_secret.is_none() && cloud.is_none() {
        tracing::warn!(
            "KALGUARD_TOKEN_SECRET is not set: the filter refuses every agent token until it is"
        );
    }
    let policy_file = match &args.policy_path {
        Some(path) => {
            let (loaded, raw) = policy::load(path)?;
            tracing::info!(
                "policy file {}: version {}, {} rules",
                path.display(),
                loaded.version,
                loaded.rules
            );
            Some((path.clone(), loaded, raw))
        }
        None => None,
    };
    let reported_file = ReportedFile::new(&args.data_dir);
    let mut inputs = Inputs {
        mode: if cloud.is_some() {
            Mode::Degraded
        } else {
            Mode::Local
        },
        license: None,
        previous_secret: None,
        remaining: None,
        reset_at: None,
        reported: reported_file.load(),
        agents_today: None,
        local_secret: secrets.token_secret.clone(),
        default_agent_token: secrets.agent_token.clone(),
        local_audit_retention_days: args.audit_retention_days,
        policy: policy_file
            .as_ref()
            .map(|(_, loaded, _)| loaded.document.clone()),
    };
    if let Some(cloud) = &cloud {
        match cloud.cache.load() {
            Ok(Some(license)) => {
                tracing::info!(
                    "license from {} (plan {}, validated {} s ago) is in force until the Cloud answers",
                    cloud.cache.path().display(),
                    license.tier,
                    now_ms().saturating_sub(license.validated_at_ms) / 1000
                );
                inputs.mode = Mode::Cloud;
                inputs.remaining = license.remaining;
                inputs.reset_at = license.reset_at;
                inputs.license = Some(license);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("license cache ignored: {e}"),
        }
    }
    let recent = RecentBatches::open(&args.data_dir.join("filter-batches.log"), RECENT_BATCHES)?;
    let spool_capacity = spool.as_ref().map_or(0, Spool::max_events);
    let spool_depth = spool.as_ref().map_or(0, Spool::depth);
    if spool_depth > 0 {
        tracing::info!("{spool_depth} usage events from an earlier run wait for the Cloud");
    }
    let ctx = Arc::new(Ctx {
        state: StateStore::new(inputs, crate::state::new_epoch()),
        channel_key,
        metrics: Metrics::default(),
        health: Mutex::new(SyncHealth::default()),
        cloud,
        sync_interval,
        started: Instant::now(),
        token_secret_set: secrets.token_secret.is_some(),
        audit_path: audit_path.clone(),
        sink: Mutex::new(Sink {
            audit,
            spool,
            recent,
        }),
        spool_depth: AtomicUsize::new(spool_depth),
        spool_capacity,
        reporter_wake: Notify::new(),
        sync_now: Notify::new(),
        reported_file,
        policy: policy_file
            .as_ref()
            .map(|(path, loaded, _)| policy::Watched::new(path.clone(), loaded)),
    });
    if let Some((_, _, raw)) = policy_file {
        tokio::spawn(policy::watch(Arc::clone(&ctx), raw));
    }
    enforce_retention(&audit_path, ctx.state.current().audit_retention_days);

    let cannot_listen = |source| ServeError::Listen {
        listen: args.listen.clone(),
        source,
    };
    let listener = match &args.listen {
        Listen::Tcp(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(cannot_listen)?;
            let bound = Listen::Tcp(listener.local_addr().unwrap_or(*addr));
            (Bound::Tcp(listener), bound)
        }
        Listen::Unix(path) => (
            Bound::Unix(bind_unix(path).map_err(cannot_listen)?),
            args.listen.clone(),
        ),
    };
    let (listener, bound) = listener;
    if ctx.cloud.is_some() {
        let first = sync::first_sync(&ctx).await;
        tokio::spawn(sync::run(Arc::clone(&ctx), first));
        tokio::spawn(crate::watch::run(Arc::clone(&ctx)));
        tokio::spawn(usage::run(Arc::clone(&ctx)));
        tokio::spawn(sync_on_hangup(Arc::clone(&ctx)));
    }
    tracing::info!(
        "control plane listening on {bound} (mode {}, audit log {}, sync every {} ms)",
        ctx.state.current().mode.as_str(),
        audit_path.display(),
        sync_interval.as_millis()
    );
    let app = api::router(Arc::clone(&ctx));
    let served = match listener {
        Bound::Tcp(listener) => serve_until_stopped(listener, app).await,
        Bound::Unix(listener) => {
            let served = serve_until_stopped(listener, app).await;
            if let Listen::Unix(path) = &bound {
                let _ = std::fs::remove_file(path);
            }
            served
        }
    };
    served.map_err(|source| ServeError::Server { bound, source })?;
    tracing::info!("control plane stopped");
    Ok(())
}

/// The bound listener, TCP or Unix.
enum Bound {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

/// Binds a Unix socket at `path`. A socket file left by a process that died is
/// replaced; a live one (something answers on it) or any other file is not.
/// The socket is made `0660`: the proxy and the control plane share a user or
/// a group; no one else may connect.
fn bind_unix(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket",
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another process is listening on this socket",
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

/// Serves `app` until Ctrl-C or SIGTERM. Long-polls may hold for 30 s:
/// in-flight requests get a short grace, no more.
async fn serve_until_stopped<L>(listener: L, app: Router) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let (stopping, mut stop_seen) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown().await;
        let _ = stopping.send(true);
    });
    let grace = async move {
        let _ = stop_seen.wait_for(|stop| *stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = server => served,
        () = grace => {
            tracing::info!("stopping with requests still open (long-polls)");
            Ok(())
        }
    }
}

/// SIGHUP validates the license now (e.g. right after a key rotation or a revocation).
async fn sync_on_hangup(ctx: Arc<Ctx>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: the license syncs on its interval only");
            return;
        };
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: validating the license now");
            ctx.sync_now.notify_one();
        }
    }
    #[cfg(not(unix))]
    let _ = ctx;
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
