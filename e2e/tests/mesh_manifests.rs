//! Every manifest in `deploy/` checked offline against the published
//! Kubernetes and Istio schemas kept in `deploy/schemas/`, and against the
//! pod's own rules (only istio-proxy and the control plane mount the channel's
//! volume; every container states its requests): `scripts/validate-manifests.py`,
//! which also proves it refuses known-bad variants.
//!
//! The script needs Python with jsonschema and PyYAML: `KALGUARD_PYTHON`
//! (set by `make test`, the tools virtualenv), else `.tools/venv/bin/python`.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_manifest_validates_against_the_kubernetes_and_istio_schemas() {
    let python = std::env::var_os("KALGUARD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".tools/venv/bin/python"));
    let output = Command::new(&python)
        .arg(workspace().join("scripts/validate-manifests.py"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (run `make tools`): {e}", python.display()));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");
    assert!(report.contains(" 0 failed"), "{report}");
    println!("{report}");
}
