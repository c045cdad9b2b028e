//! `kalguard serve`: wires the control plane next to Envoy — builds the
//! shared [`Ctx`] (audit log, spool, license cache, policy file), binds the
//! listener, validates the license, then serves the filter API while the
//! license sync, the license watch, the usage reporter and the policy watcher
//! run in the background, until SIGTERM.

use crate::audit::enforce_retention;
use crate::ctx::{self, Ctx, OpenError};
use crate::settings::{Args, Listen};
use crate::{api, otel, policy, sync, usage};
use axum::Router;
use std::path::Path;
use std::sync::Arc;

/// How long in-flight requests may finish after SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Why `kalguard serve` could not start or stopped serving. Each names the
/// setting, file or address involved.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Open(#[from] OpenError),
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
    let (ctx, tasks) = ctx::open(&args)?;
    let ctx = Arc::new(ctx);
    if let Some(raw) = tasks.policy_raw {
        tokio::spawn(policy::watch(Arc::clone(&ctx), raw));
    }
    if let Some(pump) = tasks.otel {
        tokio::spawn(otel::run(Arc::clone(&ctx), pump));
    }
    enforce_retention(&ctx.audit_path, ctx.state.current().audit_retention_days);

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
        crate::pins::relay::start(&ctx, &args.data_dir);
    }
    tracing::info!(
        "control plane listening on {bound} (mode {}, audit log {}, sync every {} ms)",
        ctx.state.current().mode.as_str(),
        ctx.audit_path.display(),
        ctx.sync_interval.as_millis()
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
