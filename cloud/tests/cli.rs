//! The admin CLI: `migrate`, `org create` (prints the first key), `token create`,
//! `org set-plan`, on a fresh SQLite data dir.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use kalguard_cloud::time_util::now;
use serde_json::json;

fn cli(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kalguard-cloud"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("KALGUARD_CLOUD_DATABASE_URL")
        .env_remove("KALGUARD_API_KEY")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn org_create_prints_a_working_key_and_token_create_a_valid_token() {
    let data = std::env::temp_dir().join(format!(
        "kalguard-cloud-cli-{}",
        kalguard_cloud::secrets::random_string(8)
    ));
    let (ok, out, err) = cli(&data, &["migrate"]);
    assert!(ok, "{err}");
    assert!(out.contains("migrations applied"));

    let (ok, key, err) = cli(
        &data,
        &[
            "org",
            "create",
            "--name",
            "Acme",
            "--email",
            "Owner@Acme.test",
            "--password",
            "correct horse battery",
        ],
    );
    assert!(ok, "{err}");
    let key = key.trim().to_string();
    assert!(key.starts_with("kg_live_"), "{key}");
    assert!(!err.contains(&key), "the key is printed on stdout only");

    let (ok, _, err) = cli(
        &data,
        &[
            "org",
            "create",
            "--name",
            "Again",
            "--email",
            "owner@acme.test",
            "--password",
            "correct horse battery",
        ],
    );
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    let (ok, _, err) = cli(
        &data,
        &[
            "org",
            "create",
            "--name",
            "X",
            "--email",
            "x@acme.test",
            "--password",
            "short",
        ],
    );
    assert!(!ok && err.contains("at least 10 characters"), "{err}");

    let (ok, token, err) = cli(
        &data,
        &[
            "token",
            "create",
            "--api-key",
            &key,
            "--agent",
            "demo-agent",
            "--ttl-secs",
            "600",
        ],
    );
    assert!(ok, "{err}");
    let token = token.trim().to_string();

    let url = format!("sqlite://{}?mode=rwc", data.join("cloud.db").display());
    let app = common::app(&url).await;
    let l = app
        .api("/api/v1/license/validate", &key, json!({}))
        .await
        .json();
    let org_id = l["orgId"].as_str().unwrap().to_string();
    let secrets = vec![l["tokenSigningSecret"].as_str().unwrap().to_string()];
    let verifier = kalguard_wire::token::Verifier {
        secrets: &secrets,
        is_revoked: &|_: &str| false,
    };
    let agent = verifier.verify(&token, now()).unwrap();
    assert_eq!(agent.id.as_str(), "demo-agent");

    let (ok, _, err) = cli(
        &data,
        &["org", "set-plan", "--org", &org_id, "--plan", "pro"],
    );
    assert!(ok, "{err}");
    let l = app
        .api("/api/v1/license/validate", &key, json!({}))
        .await
        .json();
    assert_eq!(l["tier"], "pro");
    let (ok, _, err) = cli(
        &data,
        &["org", "set-plan", "--org", "org_nope", "--plan", "pro"],
    );
    assert!(!ok && err.contains("no organisation org_nope"), "{err}");
}
