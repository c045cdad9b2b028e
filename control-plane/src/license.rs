//! The license: what the Cloud's `POST /api/v1/license/validate` grants (its
//! answer is `kalguard_wire::cloud::LicenseAnswer`), and its cache under the
//! data dir (`license.json`) that keeps it in force for its TTL across
//! restarts and Cloud outages.

use crate::clock::{now_ms, parse_instant_ms};
use crate::fsutil::{write_atomically, FileError, FileOp};
use kalguard_wire::cloud::{LicenseAnswer, Limits};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A license without `expiresAt` stays in force this long after validation.
const DEFAULT_TTL_MS: u64 = 24 * 3_600_000;

/// Why a `valid: true` answer cannot be used as a license.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("the license answer has no limits")]
    NoLimits,
    #[error("the license answer's expiresAt {0} is not a timestamp")]
    BadExpiry(Value),
}

/// Why the license cache cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{} is not a license cache: {source}", .path.display())]
    Unreadable {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot encode the license cache: {0}")]
    Encode(serde_json::Error),
}

/// A valid license as the control plane keeps it. No `Debug`: it holds secrets.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct License {
    pub tier: String,
    pub org_id: String,
    pub limits: Limits,
    /// In force until this instant (unix ms).
    pub expires_at_ms: u64,
    pub validated_at_ms: u64,
    /// Every signing secret the Cloud says is valid, current first.
    pub signing_secrets: Vec<String>,
    pub revoked_token_hashes: Vec<String>,
    pub remaining: Option<i64>,
    /// Unix seconds.
    pub reset_at: Option<u64>,
    /// The organisation's agents with a check today (plans that limit agents).
    #[serde(default)]
    pub agents_today: Option<Vec<String>>,
}

impl License {
    /// Builds the license from a `valid: true` answer received at `now`.
    pub fn from_answer(answer: LicenseAnswer, now: u64) -> Result<Self, AnswerError> {
        let limits = answer.limits.ok_or(AnswerError::NoLimits)?;
        let expires_at_ms = match answer.expires_at {
            None | Some(Value::Null) => now + DEFAULT_TTL_MS,
            Some(value) => parse_instant_ms(&value).ok_or(AnswerError::BadExpiry(value))?,
        };
        let mut signing_secrets = Vec::new();
        for secret in answer
            .token_signing_secret
            .into_iter()
            .chain(answer.token_signing_secrets)
        {
            if !secret.is_empty() && !signing_secrets.contains(&secret) {
                signing_secrets.push(secret);
            }
        }
        Ok(Self {
            tier: answer.tier.unwrap_or_else(|| "free".to_owned()),
            org_id: answer.org_id.unwrap_or_default(),
            limits,
            expires_at_ms,
            validated_at_ms: now,
            signing_secrets,
            revoked_token_hashes: answer.revoked_token_hashes,
            remaining: answer.remaining,
            reset_at: answer
                .reset_at
                .as_ref()
                .and_then(parse_instant_ms)
                .map(|ms| ms / 1000),
            agents_today: answer.agents_today,
        })
    }

    pub fn in_force(&self, now: u64) -> bool {
        now < self.expires_at_ms
    }

    /// The current signing secret (the first one).
    pub fn current_secret(&self) -> Option<&str> {
        self.signing_secrets.first().map(String::as_str)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CacheFile {
    /// SHA-256 of the API key the license was granted to: a cache written for
    /// another key is never used.
    api_key_sha256: String,
    license: License,
}

/// `license.json` in the data dir.
pub struct LicenseCache {
    path: PathBuf,
    api_key_sha256: String,
}

impl LicenseCache {
    pub fn new(data_dir: &Path, api_key: &str) -> Self {
        Self {
            path: data_dir.join("license.json"),
            api_key_sha256: format!("{:x}", Sha256::digest(api_key.as_bytes())),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cached license if it belongs to this API key and is still in force.
    pub fn load(&self) -> Result<Option<License>, CacheError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(FileError::at(FileOp::Read, &self.path)(e).into()),
        };
        let cache: CacheFile =
            serde_json::from_slice(&bytes).map_err(|source| CacheError::Unreadable {
                path: self.path.clone(),
                source,
            })?;
        if cache.api_key_sha256 != self.api_key_sha256 {
            tracing::info!(
                "{} was written for another API key: ignored",
                self.path.display()
            );
            return Ok(None);
        }
        Ok(Some(cache.license).filter(|license| license.in_force(now_ms())))
    }

    pub fn save(&self, license: &License) -> Result<(), CacheError> {
        let cache = CacheFile {
            api_key_sha256: self.api_key_sha256.clone(),
            license: license.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&cache).map_err(CacheError::Encode)?;
        Ok(write_atomically(&self.path, &bytes)?)
    }

    pub fn remove(&self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("cannot remove {}: {e}", self.path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(value: Value) -> LicenseAnswer {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn reads_the_cloud_answer() {
        let license = License::from_answer(
            answer(json!({"valid":true,"tier":"pro","orgId":"org_1",
                "limits":{"checksPerDay":100000,"maxAgents":-1,"auditRetentionDays":90,"features":["pii"]},
                "expiresAt":"2030-01-01T00:00:00Z","tokenSigningSecret":"s2",
                "tokenSigningSecrets":["s2","s1"],"revokedTokenHashes":["ab"],"remaining":5,"resetAt":1714694400})),
            1000,
        )
        .unwrap();
        assert_eq!(license.signing_secrets, ["s2", "s1"]);
        assert_eq!(license.tier, "pro");
        assert_eq!(license.reset_at, Some(1_714_694_400));
        assert!(license.in_force(1_800_000_000_000));
        assert!(!license.in_force(1_900_000_000_000));
    }

    #[test]
    fn a_license_without_limits_is_refused() {
        let result = License::from_answer(answer(json!({"valid":true})), 0);
        assert!(result.is_err());
    }

    #[test]
    fn the_cache_is_bound_to_the_api_key() {
        let dir = crate::fsutil::test_dir("license-cache");
        let license = License::from_answer(
            answer(json!({"valid":true,"limits":{"checksPerDay":1000,"maxAgents":1,"auditRetentionDays":7}})),
            now_ms(),
        )
        .unwrap();
        LicenseCache::new(&dir, "kg_test_a").save(&license).unwrap();
        assert!(LicenseCache::new(&dir, "kg_test_a")
            .load()
            .unwrap()
            .is_some());
        assert!(LicenseCache::new(&dir, "kg_test_b")
            .load()
            .unwrap()
            .is_none());
    }
}
