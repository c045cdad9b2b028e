//! SQLite's write-ahead log does not grow without bound: the checkpoint the server
//! runs every minute truncates it, and `journal_size_limit` caps what is kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{app, event};
use serde_json::json;

#[tokio::test]
async fn the_checkpoint_truncates_the_wal() {
    let dir = std::env::temp_dir().join(format!(
        "kalguard-cloud-wal-{}-{}",
        std::process::id(),
        kalguard_cloud::secrets::random_string(6)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cloud.db");
    let app = app(&format!("sqlite://{}?mode=rwc", path.display())).await;
    let (_, key) = app.org("Walrus").await;
    // A reader holds a snapshot open, as a dashboard page or CSV export does, so
    // SQLite's own checkpoints cannot reset the log.
    let mut reader = app.state.db.pool.begin().await.unwrap();
    sqlx::query("SELECT COUNT(*) FROM events")
        .fetch_one(&mut *reader)
        .await
        .unwrap();
    for b in 0..10 {
        let events: Vec<_> = (0..500)
            .map(|i| event("bot", "allow", &format!("w-{b}-{i}"), None))
            .collect();
        app.api("/api/v1/usage/report", &key, json!({"events": events}))
            .await;
    }
    let wal = || std::fs::metadata(dir.join("cloud.db-wal")).map_or(0, |m| m.len());
    let grown = wal();
    assert!(
        grown > 1_000_000,
        "the WAL grew while a reader held it: {grown}"
    );
    let started = std::time::Instant::now();
    assert!(
        !app.state.db.checkpoint().await.unwrap(),
        "held back by the reader"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "a held-back checkpoint returns at once: {:?}",
        started.elapsed()
    );
    reader.rollback().await.unwrap();
    assert!(app.state.db.checkpoint().await.unwrap());
    assert_eq!(wal(), 0, "truncated from {grown} bytes");
}
