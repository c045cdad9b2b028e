//! The database: SQLite by default, Postgres for several replicas. One pool type
//! (`sqlx::Any`), one set of migrations, one set of queries written with `$n`
//! placeholders that both backends accept.

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;

use crate::license_changes::LicenseChanges;
use std::sync::Arc;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Which backend a pool talks to; a few statements differ (see [`Db::is_sqlite`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool and the backend behind it.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    /// SQLite allows one writer at a time and makes the others sleep-and-retry
    /// (`busy_timeout`), which wastes most of the time under load; the hot write
    /// paths queue here instead. Unused on Postgres.
    write_lock: Arc<tokio::sync::Mutex<()>>,
    /// The license versions sidecars' watchers wait on: the store functions that
    /// change a license publish here (src/license_changes.rs).
    pub changes: Arc<LicenseChanges>,
    /// Usage reports waiting for SQLite's writer (`store::usage::ingest`).
    pub(crate) waiting_reports: Arc<crate::store::usage::WaitingReports>,
    /// Wakes the control planes' held approval polls on this process when an
    /// approval is decided or settled (`store::approvals`); other replicas'
    /// decisions are found by the polls' own re-reads.
    pub approvals_changed: Arc<tokio::sync::Notify>,
    /// The approval polls held open on this process (`api::held`).
    pub approval_polls: Arc<crate::api::held::HeldPolls>,
    /// Wakes the control planes' held pin-decision polls on this process when
    /// a member decides on a held MCP tool (`store::pins`).
    pub pins_changed: Arc<tokio::sync::Notify>,
    /// The pin-decision polls held open on this process (`api::held`).
    pub pin_polls: Arc<crate::api::held::HeldPolls>,
}

/// A database error that names what was being opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL scheme in KALGUARD_CLOUD_DATABASE_URL (expected sqlite:// or postgres://)")]
    Scheme,
    #[error("cannot open the database ({backend:?}): {source}")]
    Open {
        backend: Backend,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Db {
    /// Connects to `url` (`sqlite://…` or `postgres://…`). SQLite gets WAL, a busy
    /// timeout and foreign keys on every connection.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(DbError::Scheme);
        };
        let options =
            AnyConnectOptions::from_str(url).map_err(|source| DbError::Open { backend, source })?;
        let pool_options = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            // temp_store: a statement's rollback journal (each
                            // multi-row upsert in a transaction has one) is kept in
                            // memory instead of a temporary file, which cost ingestion
                            // a write system call per page changed. cache_size: 32 MiB
                            // of pages per connection (2 MiB by default), so the
                            // indexes ingestion changes stay in memory.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
                             PRAGMA journal_size_limit = 67108864; \
                             PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
            }
            Backend::Postgres => AnyPoolOptions::new().max_connections(16),
        };
        let pool = pool_options
            .acquire_timeout(Duration::from_secs(15))
            .connect_with(options)
            .await
            .map_err(|source| DbError::Open { backend, source })?;
        Ok(Db {
            pool,
            backend,
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
            changes: Arc::new(LicenseChanges::default()),
            waiting_reports: Arc::default(),
            approvals_changed: Arc::default(),
            approval_polls: Arc::default(),
            pins_changed: Arc::default(),
            pin_polls: Arc::default(),
        })
    }

    /// Applies pending migrations (safe to run from several replicas at once:
    /// sqlx takes a lock on Postgres).
    pub async fn migrate(&self) -> Result<(), DbError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    pub fn is_sqlite(&self) -> bool {
        self.backend == Backend::Sqlite
    }

    /// Copies SQLite's write-ahead log into the database and truncates it to zero
    /// bytes. SQLite's own checkpoints (every 1,000 pages) cannot finish while
    /// readers hold old snapshots, so under steady dashboard reads and ingestion the
    /// WAL keeps growing; [`crate::app::serve`] calls this every minute. A no-op on
    /// Postgres. Returns whether the checkpoint completed (no reader held it back).
    pub async fn checkpoint(&self) -> Result<bool, sqlx::Error> {
        if !self.is_sqlite() {
            return Ok(true);
        }
        let _turn = self.write_turn().await;
        let mut conn = self.pool.acquire().await?;
        // Without a busy handler: a checkpoint that a reader holds back returns at
        // once instead of stalling ingestion (which waits for this turn) for the
        // busy timeout; the next minute tries again.
        conn.execute("PRAGMA busy_timeout = 0").await?;
        let result: Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&mut *conn)
                .await;
        conn.execute("PRAGMA busy_timeout = 10000").await?;
        let (busy, _, _) = result?;
        Ok(busy == 0)
    }

    /// Serialises a write transaction on SQLite (see the `write_lock` field); a no-op
    /// guard on Postgres, where row locks do the job.
    pub async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.write_lock.lock().await),
            Backend::Postgres => None,
        }
    }
}
