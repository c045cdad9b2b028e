//! The control plane's shared context: [`Ctx`] holds what the API handlers and
//! the background tasks share (the published state, the channel key, the
//! metrics, the Cloud client, the audit log and usage spool behind one lock),
//! and [`open`] builds it from the settings — opens the audit log, the spool,
//! the license cache and the policy file — before anything listens.

use crate::audit::{AuditError, AuditLog};
use crate::clock::now_ms;
use crate::cloud::{ClientError, CloudClient};
use crate::events::FilterEvent;
use crate::fsutil::{create_dir, FileError};
use crate::license::LicenseCache;
use crate::metrics::{add, Metrics};
use crate::otel::{self, OtelError};
use crate::pins::{PinBook, PinError};
use crate::policy::{self, PolicyError};
use crate::recent::RecentBatches;
use crate::reported::ReportedFile;
use crate::settings::{clamp_sync_interval, Args, NoChannelKey, Secrets};
use crate::spool::{Spool, SpoolError};
use crate::state::{Inputs, Mode, StateStore};
use kalguard_wire::channel::ChannelKey;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A spool segment is sealed into a batch at this many events.
const EVENTS_PER_BATCH: usize = 500;
/// How many filter `batchId`s are remembered to drop retried posts.
const RECENT_BATCHES: usize = 10_000;

/// Why the context could not be built. Each names the setting or file involved.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
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
    #[error(transparent)]
    Otel(#[from] OtelError),
    #[error(transparent)]
    Pins(#[from] PinError),
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
    /// The OTLP span export (`KALGUARD_OTEL_ENDPOINT`).
    pub otel: Option<otel::Exporter>,
    /// MCP tool pins (`<data dir>/pins.json`).
    pub pins: Arc<PinBook>,
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

    /// Audits the events, then spools their usage (both fsync'd), then offers
    /// them to the OTLP export (never waiting). Blocking.
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
        if let Some(otel) = &self.otel {
            otel.offer(events);
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

/// What the background tasks [`open`] prepared need to start.
pub struct Tasks {
    /// The policy file's bytes as read, for its watcher.
    pub policy_raw: Option<Vec<u8>>,
    /// The OTLP export's sending side.
    pub otel: Option<otel::Pump>,
}

/// Builds the context from the settings and the environment.
pub fn open(args: &Args) -> Result<(Ctx, Tasks), OpenError> {
    open_with(args, Secrets::from_env())
}

/// Builds the context from the settings and these secrets.
pub fn open_with(args: &Args, secrets: Secrets) -> Result<(Ctx, Tasks), OpenError> {
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
    let (otel, otel_pump) = match otel::open(
        args.otel_endpoint.as_deref(),
        secrets.otel_headers.as_deref(),
        args.otel_queue_spans,
    )? {
        Some((exporter, pump)) => (Some(exporter), Some(pump)),
        None => (None, None),
    };
    let pins = Arc::new(PinBook::open(&args.data_dir.join("pins.json"))?);
    let recent = RecentBatches::open(&args.data_dir.join("filter-batches.log"), RECENT_BATCHES)?;
    let spool_capacity = spool.as_ref().map_or(0, Spool::max_events);
    let spool_depth = spool.as_ref().map_or(0, Spool::depth);
    if spool_depth > 0 {
        tracing::info!("{spool_depth} usage events from an earlier run wait for the Cloud");
    }
    let ctx = Ctx {
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
        otel,
        pins,
        policy: policy_file
            .as_ref()
            .map(|(path, loaded, _)| policy::Watched::new(path.clone(), loaded)),
    };
    let tasks = Tasks {
        policy_raw: policy_file.map(|(_, _, raw)| raw),
        otel: otel_pump,
    };
    Ok((ctx, tasks))
}

/// A control plane in Cloud mode for tests: its data in `dir`, its Cloud at
/// `cloud_url` (a stand-in), no task started.
#[cfg(test)]
pub fn in_cloud_mode(dir: &std::path::Path, cloud_url: &str) -> Arc<Ctx> {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }
    let cli = <Cli as clap::Parser>::try_parse_from([
        "kalguard",
        "--data-dir",
        dir.to_str().unwrap(),
        "--cloud-url",
        cloud_url,
        "--listen",
        "127.0.0.1:0",
    ])
    .unwrap();
    let secrets = Secrets {
        api_key: Some("kg_test_relay".into()),
        token_secret: None,
        agent_token: None,
        otel_headers: None,
        channel_key: ChannelKey::parse(Some(&"k".repeat(32))),
    };
    let (ctx, _) = open_with(&cli.args, secrets).unwrap();
    Arc::new(ctx)
}
