//! Agent access tokens: HS256 JWTs minted with the organisation's signing secret.
//! Only the token's SHA-256 is kept; revoking puts that hash into the license.

use kalguard_wire::token::{mint, token_hash, Claims, ISSUER};

use crate::db::Db;
use crate::secrets;
use crate::store::orgs::{self, Org};
use crate::time_util::now;

/// A token as the dashboard lists it.
#[derive(Clone, Debug)]
pub struct AgentToken {
    pub id: String,
    pub name: String,
    pub agent_id: String,
    pub capabilities: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// [`secrets::secret_id`] of the secret that signed it; `None` for tokens
    /// minted before it was recorded.
    pub secret_id: Option<String>,
}

/// Where a token stands, as the dashboard shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenState {
    /// Verifies at sidecars; `Some(until)` when its secret is the previous one,
    /// which leaves the license at `until`.
    Active {
        secret_retires_at: Option<i64>,
    },
    Revoked(i64),
    Expired,
    /// Signed with a secret the license no longer carries: it verifies nowhere.
    SecretRetired,
}

impl AgentToken {
    /// The token's state at `at` for an organisation whose license carries `org`'s
    /// valid secrets. A token of unknown secret is taken as signed by a valid one.
    pub fn state(&self, org: &Org, at: i64) -> TokenState {
        if let Some(r) = self.revoked_at {
            return TokenState::Revoked(r);
        }
        if self.expires_at <= at {
            return TokenState::Expired;
        }
        let Some(id) = &self.secret_id else {
            return TokenState::Active {
                secret_retires_at: None,
            };
        };
        if *id == secrets::secret_id(&org.signing_secret) {
            return TokenState::Active {
                secret_retires_at: None,
            };
        }
        match (
            &org.previous_signing_secret,
            org.previous_secret_valid_until,
        ) {
            (Some(prev), Some(until)) if until > at && *id == secrets::secret_id(prev) => {
                TokenState::Active {
                    secret_retires_at: Some(until),
                }
            }
            _ => TokenState::SecretRetired,
        }
    }
}

/// What to mint.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub name: String,
    pub agent_id: String,
    pub capabilities: Vec<String>,
    pub ttl_secs: i64,
}

/// The longest token lifetime (3 years), dashboard and management API alike.
pub const MAX_TTL_SECS: i64 = 3 * 365 * 86_400;

impl NewToken {
    /// A token request checked as the dashboard and the management API both check
    /// it; the error is a sentence for a person. Capabilities are kept once each.
    pub fn checked(
        name: &str,
        agent_id: &str,
        mut capabilities: Vec<String>,
        ttl_secs: i64,
    ) -> Result<NewToken, String> {
        if name.is_empty() || name.len() > 100 {
            return Err("Token name must be 1-100 characters.".into());
        }
        if agent_id.is_empty() || agent_id.len() > 128 {
            return Err("Agent ID must be 1-128 characters without spaces.".into());
        }
        if let Some(why) = crate::agent_id::problem(agent_id) {
            return Err(format!("Agent ID {why}."));
        }
        if let Some(c) = capabilities
            .iter()
            .find(|c| c.len() > 128 || c.chars().any(char::is_control))
        {
            return Err(format!(
                "Capability {c:?} is too long or has control characters."
            ));
        }
        // A custom capability may repeat a ticked one (or itself): each is granted once.
        let mut seen = std::collections::HashSet::new();
        capabilities.retain(|c| !c.is_empty() && seen.insert(c.clone()));
        if capabilities.is_empty() {
            return Err("Choose at least one capability.".into());
        }
        if !(60..=MAX_TTL_SECS).contains(&ttl_secs) {
            return Err("Expiry must be between 1 minute and 3 years.".into());
        }
        Ok(NewToken {
            name: name.to_string(),
            agent_id: agent_id.to_string(),
            capabilities,
            ttl_secs,
        })
    }
}

/// Mints a token for `org`, records its hash and returns the token (shown once).
pub async fn create(db: &Db, org: &Org, new: &NewToken) -> Result<String, sqlx::Error> {
    let at = now();
    let id = secrets::new_id("tok");
    let mut metadata = serde_json::Map::new();
    metadata.insert("tokenId".into(), serde_json::Value::String(id.clone()));
    metadata.insert("name".into(), serde_json::Value::String(new.name.clone()));
    metadata.insert("orgId".into(), serde_json::Value::String(org.id.clone()));
    let claims = Claims {
        sub: new.agent_id.clone(),
        capabilities: new.capabilities.clone(),
        exp: at + new.ttl_secs,
        iat: Some(at),
        nbf: None,
        iss: Some(ISSUER.to_string()),
        metadata: Some(metadata),
    };
    let token = mint(&claims, &org.signing_secret);
    sqlx::query(
        "INSERT INTO agent_tokens (id, org_id, name, agent_id, capabilities, token_hash, created_at, expires_at, secret_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(&org.id)
    .bind(&new.name)
    .bind(&new.agent_id)
    .bind(serde_json::to_string(&new.capabilities).unwrap_or_else(|_| "[]".into()))
    .bind(token_hash(&token))
    .bind(at)
    .bind(claims.exp)
    .bind(secrets::secret_id(&org.signing_secret))
    .execute(&db.pool)
    .await?;
    Ok(token)
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: String,
    name: String,
    agent_id: String,
    capabilities: String,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    secret_id: Option<String>,
}

pub async fn list(db: &Db, org_id: &str) -> Result<Vec<AgentToken>, sqlx::Error> {
    let rows: Vec<TokenRow> = sqlx::query_as(
        "SELECT id, name, agent_id, capabilities, created_at, expires_at, revoked_at, secret_id \
         FROM agent_tokens WHERE org_id = $1 ORDER BY created_at DESC, id",
    )
    .bind(org_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AgentToken {
            capabilities: serde_json::from_str(&r.capabilities).unwrap_or_default(),
            id: r.id,
            name: r.name,
            agent_id: r.agent_id,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            secret_id: r.secret_id,
        })
        .collect())
}

/// Revokes one token of this organisation; `false` when there is no such live token.
pub async fn revoke(db: &Db, org_id: &str, token_id: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE agent_tokens SET revoked_at = $1 WHERE id = $2 AND org_id = $3 AND revoked_at IS NULL",
    )
    .bind(now())
    .bind(token_id)
    .bind(org_id)
    .execute(&db.pool)
    .await?;
    if r.rows_affected() == 1 {
        orgs::license_changed(db, org_id).await?;
    }
    Ok(r.rows_affected() == 1)
}

/// Quarantines an agent: revokes every live token of it. Returns how many.
pub async fn quarantine_agent(db: &Db, org_id: &str, agent_id: &str) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE agent_tokens SET revoked_at = $1 WHERE org_id = $2 AND agent_id = $3 AND revoked_at IS NULL",
    )
    .bind(now())
    .bind(org_id)
    .bind(agent_id)
    .execute(&db.pool)
    .await?;
    if r.rows_affected() > 0 {
        orgs::license_changed(db, org_id).await?;
    }
    Ok(r.rows_affected())
}

/// Hashes of revoked tokens that have not expired yet (expired ones are refused anyway).
pub async fn revoked_hashes(db: &Db, org_id: &str, at: i64) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT token_hash FROM agent_tokens WHERE org_id = $1 AND revoked_at IS NOT NULL \
         AND expires_at > $2 ORDER BY token_hash",
    )
    .bind(org_id)
    .bind(at - kalguard_wire::token::CLOCK_SKEW_SECS)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(|(h,)| h).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Plan;

    fn org(previous_until: Option<i64>) -> Org {
        Org {
            id: "org_1".into(),
            name: "Acme".into(),
            plan: Plan::Free,
            signing_secret: "new-secret".into(),
            previous_signing_secret: previous_until.map(|_| "old-secret".into()),
            previous_secret_valid_until: previous_until,
            stripe_customer_id: None,
            stripe_subscription_id: None,
            plan_event_created: 0,
            created_at: 0,
        }
    }

    fn token(secret: Option<&str>) -> AgentToken {
        AgentToken {
            id: "tok_1".into(),
            name: "bot".into(),
            agent_id: "a".into(),
            capabilities: vec![],
            created_at: 0,
            expires_at: 1_000,
            revoked_at: None,
            secret_id: secret.map(secrets::secret_id),
        }
    }

    #[test]
    fn a_token_is_active_only_while_the_license_carries_its_secret() {
        let current = Some("new-secret");
        let old = Some("old-secret");
        let none = TokenState::Active {
            secret_retires_at: None,
        };
        assert_eq!(token(current).state(&org(None), 10), none);
        assert_eq!(
            token(old).state(&org(Some(50)), 10),
            TokenState::Active {
                secret_retires_at: Some(50)
            }
        );
        assert_eq!(
            token(old).state(&org(Some(50)), 50),
            TokenState::SecretRetired
        );
        assert_eq!(token(old).state(&org(None), 10), TokenState::SecretRetired);
        // Minted before secrets were recorded: not known to be retired.
        assert_eq!(token(None).state(&org(None), 10), none);
        assert_eq!(token(current).state(&org(None), 1_000), TokenState::Expired);
        let mut revoked = token(old);
        revoked.revoked_at = Some(5);
        assert_eq!(revoked.state(&org(None), 10), TokenState::Revoked(5));
    }
}
