//! Agent access tokens: HS256 JWTs minted with the organisation's signing secret.
//! Only the token's SHA-256 is kept; revoking puts that hash into the license.

use kalguard_filter::token::{mint, token_hash, Claims, ISSUER};

use crate::db::Db;
use crate::secrets;
use crate::store::orgs::Org;
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
}

/// What to mint.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub name: String,
    pub agent_id: String,
    pub capabilities: Vec<String>,
    pub ttl_secs: i64,
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
        "INSERT INTO agent_tokens (id, org_id, name, agent_id, capabilities, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(&org.id)
    .bind(&new.name)
    .bind(&new.agent_id)
    .bind(serde_json::to_string(&new.capabilities).unwrap_or_else(|_| "[]".into()))
    .bind(token_hash(&token))
    .bind(at)
    .bind(claims.exp)
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
}

pub async fn list(db: &Db, org_id: &str) -> Result<Vec<AgentToken>, sqlx::Error> {
    let rows: Vec<TokenRow> = sqlx::query_as(
        "SELECT id, name, agent_id, capabilities, created_at, expires_at, revoked_at \
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
    Ok(r.rows_affected())
}

/// Hashes of revoked tokens that have not expired yet (expired ones are refused anyway).
pub async fn revoked_hashes(db: &Db, org_id: &str, at: i64) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT token_hash FROM agent_tokens WHERE org_id = $1 AND revoked_at IS NOT NULL \
         AND expires_at > $2 ORDER BY token_hash",
    )
    .bind(org_id)
    .bind(at - kalguard_filter::token::CLOCK_SKEW_SECS)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(|(h,)| h).collect())
}
