//! Organisations, their members and their token-signing secret.

use sqlx::Row;

use crate::db::Db;
use crate::plan::{self, Plan};
use crate::role::Role;
use crate::secrets::{self, KeyMode};
use crate::store::keys;
use crate::time_util::now;

/// An organisation as the license and the dashboard see it.
#[derive(Clone, Debug)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub plan: Plan,
    pub signing_secret: String,
    pub previous_signing_secret: Option<String>,
    pub previous_secret_valid_until: Option<i64>,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub plan_event_created: i64,
    pub created_at: i64,
}

impl Org {
    /// Secrets a sidecar must accept now: the current one first, then the previous
    /// one while its grace period lasts.
    pub fn valid_signing_secrets(&self, at: i64) -> Vec<String> {
        let mut out = vec![self.signing_secret.clone()];
        if let (Some(prev), Some(until)) = (
            &self.previous_signing_secret,
            self.previous_secret_valid_until,
        ) {
            if until > at {
                out.push(prev.clone());
            }
        }
        out
    }
}

/// A member of an organisation.
#[derive(Clone, Debug)]
pub struct Member {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub created_at: i64,
}

/// What creating an organisation returns: the first API key is shown only here.
pub struct CreatedOrg {
    pub org_id: String,
    pub user_id: String,
    pub api_key: String,
}

/// Why creating an organisation or member failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() || db.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}

fn new_signing_secret() -> String {
    secrets::random_string(48)
}

/// Creates an organisation, its owner and its first live API key, in one transaction.
pub async fn create_with_owner(
    db: &Db,
    name: &str,
    email: &str,
    password_hash: &str,
) -> Result<CreatedOrg, CreateError> {
    let at = now();
    let org_id = secrets::new_id("org");
    let user_id = secrets::new_id("usr");
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "INSERT INTO orgs (id, name, plan, signing_secret, plan_event_created, created_at) \
         VALUES ($1, $2, $3, $4, 0, $5)",
    )
    .bind(&org_id)
    .bind(name)
    .bind(Plan::Free.as_str())
    .bind(new_signing_secret())
    .bind(at)
    .execute(&mut *tx)
    .await?;
    let inserted = sqlx::query(
        "INSERT INTO users (id, org_id, email, password_hash, role, created_at) \
         VALUES ($1, $2, $3, $4, 'owner', $5)",
    )
    .bind(&user_id)
    .bind(&org_id)
    .bind(email)
    .bind(password_hash)
    .bind(at)
    .execute(&mut *tx)
    .await;
    if let Err(e) = inserted {
        return Err(if is_unique_violation(&e) {
            CreateError::EmailTaken
        } else {
            CreateError::Db(e)
        });
    }
    let api_key = keys::insert(&mut tx, &org_id, "Default key", KeyMode::Live, None).await?;
    tx.commit().await?;
    Ok(CreatedOrg {
        org_id,
        user_id,
        api_key,
    })
}

fn org_from_row(row: &sqlx::any::AnyRow) -> Result<Org, sqlx::Error> {
    Ok(Org {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        plan: plan::stored(&row.try_get::<String, _>("plan")?),
        signing_secret: row.try_get("signing_secret")?,
        previous_signing_secret: row.try_get("previous_signing_secret")?,
        previous_secret_valid_until: row.try_get("previous_secret_valid_until")?,
        stripe_customer_id: row.try_get("stripe_customer_id")?,
        stripe_subscription_id: row.try_get("stripe_subscription_id")?,
        plan_event_created: row.try_get("plan_event_created")?,
        created_at: row.try_get("created_at")?,
    })
}

const ORG_COLUMNS: &str = "id, name, plan, signing_secret, previous_signing_secret, \
    previous_secret_valid_until, stripe_customer_id, stripe_subscription_id, \
    plan_event_created, created_at";

pub async fn get(db: &Db, org_id: &str) -> Result<Option<Org>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {ORG_COLUMNS} FROM orgs WHERE id = $1"))
        .bind(org_id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(org_from_row).transpose()
}

pub async fn find_by_stripe_customer(db: &Db, customer: &str) -> Result<Option<Org>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {ORG_COLUMNS} FROM orgs WHERE stripe_customer_id = $1"
    ))
    .bind(customer)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(org_from_row).transpose()
}

/// Replaces the signing secret; the old one stays in the license for `grace_secs`.
pub async fn rotate_signing_secret(
    db: &Db,
    org_id: &str,
    grace_secs: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE orgs SET previous_signing_secret = signing_secret, \
         previous_secret_valid_until = $1, signing_secret = $2 WHERE id = $3",
    )
    .bind(now() + grace_secs)
    .bind(new_signing_secret())
    .bind(org_id)
    .execute(&db.pool)
    .await?;
    license_changed(db, org_id).await?;
    Ok(r.rows_affected() == 1)
}

/// Sets the plan from a Stripe event, unless a newer event already decided it.
/// Returns whether the plan was written.
pub async fn set_plan_from_event(
    db: &Db,
    org_id: &str,
    plan: Plan,
    subscription_id: Option<&str>,
    event_created: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE orgs SET plan = $1, stripe_subscription_id = COALESCE($2, stripe_subscription_id), \
         plan_event_created = $3 WHERE id = $4 AND plan_event_created <= $3",
    )
    .bind(plan.as_str())
    .bind(subscription_id)
    .bind(event_created)
    .bind(org_id)
    .execute(&db.pool)
    .await?;
    if r.rows_affected() == 1 {
        license_changed(db, org_id).await?;
    }
    Ok(r.rows_affected() == 1)
}

/// Links a Stripe customer to an organisation (from Checkout).
pub async fn set_stripe_customer(db: &Db, org_id: &str, customer: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE orgs SET stripe_customer_id = $1 WHERE id = $2")
        .bind(customer)
        .bind(org_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Sets the plan directly (the admin CLI).
pub async fn set_plan(db: &Db, org_id: &str, plan: Plan) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("UPDATE orgs SET plan = $1 WHERE id = $2")
        .bind(plan.as_str())
        .bind(org_id)
        .execute(&db.pool)
        .await?;
    if r.rows_affected() == 1 {
        license_changed(db, org_id).await?;
    }
    Ok(r.rows_affected() == 1)
}

/// Moves the organisation's license version forward after a change sidecars must
/// see at once, and wakes this process's watchers (src/license_changes.rs). Called
/// by every store function that changes what the license says; other processes
/// pick the change up from `license_changed_at`.
pub async fn license_changed(db: &Db, org_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE orgs SET license_version = license_version + 1, license_changed_at = $1 \
         WHERE id = $2",
    )
    .bind(now())
    .bind(org_id)
    .execute(&db.pool)
    .await?;
    let version = license_version(db, org_id).await?;
    db.changes.publish(org_id, version);
    Ok(())
}

/// The organisation's license version (0 for an unknown organisation).
pub async fn license_version(db: &Db, org_id: &str) -> Result<i64, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT license_version FROM orgs WHERE id = $1")
        .bind(org_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map_or(0, |(v,)| v))
}

/// Organisations whose license changed at or after `since` (unix seconds), with
/// their version.
pub async fn license_versions_since(
    db: &Db,
    since: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT id, license_version FROM orgs WHERE license_changed_at >= $1")
        .bind(since)
        .fetch_all(&db.pool)
        .await
}

/// Every organisation's ID and plan (the retention purge walks them).
pub async fn all_plans(db: &Db) -> Result<Vec<(String, Plan)>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, plan FROM orgs")
        .fetch_all(&db.pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, p)| (id, plan::stored(&p)))
        .collect())
}

/// A user record for logging in.
pub struct LoginUser {
    pub id: String,
    pub org_id: String,
    pub password_hash: String,
}

pub async fn user_by_email(db: &Db, email: &str) -> Result<Option<LoginUser>, sqlx::Error> {
    let row: Option<(String, String, String)> =
        sqlx::query_as("SELECT id, org_id, password_hash FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(|(id, org_id, password_hash)| LoginUser {
        id,
        org_id,
        password_hash,
    }))
}

/// Replaces a member's password hash.
pub async fn set_password_hash(db: &Db, user_id: &str, hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(user_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn members(db: &Db, org_id: &str) -> Result<Vec<Member>, sqlx::Error> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT id, email, role, created_at FROM users WHERE org_id = $1 ORDER BY created_at, email",
    )
    .bind(org_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, email, role, created_at)| Member {
            id,
            email,
            role: Role::stored(&role),
            created_at,
        })
        .collect())
}

/// Adds a member to an organisation with a role.
pub async fn add_member(
    db: &Db,
    org_id: &str,
    email: &str,
    password_hash: &str,
    role: Role,
) -> Result<(), CreateError> {
    let r = sqlx::query(
        "INSERT INTO users (id, org_id, email, password_hash, role, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(secrets::new_id("usr"))
    .bind(org_id)
    .bind(email)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(now())
    .execute(&db.pool)
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(CreateError::EmailTaken),
        Err(e) => Err(CreateError::Db(e)),
    }
}

/// Removes a member of this organisation and their sessions; the dashboard lets
/// an owner remove anyone but themselves, so an owner always remains. Returns the
/// removed member's email, `None` when there is no such member here.
pub async fn remove_member(
    db: &Db,
    org_id: &str,
    user_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let email: Option<(String,)> =
        sqlx::query_as("SELECT email FROM users WHERE id = $1 AND org_id = $2")
            .bind(user_id)
            .bind(org_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((email,)) = email else {
        return Ok(None);
    };
    sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND org_id = $2")
        .bind(user_id)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    crate::store::logins::forget_devices(&mut tx, user_id).await?;
    sqlx::query("DELETE FROM users WHERE id = $1 AND org_id = $2")
        .bind(user_id)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(email))
}

/// What [`set_role`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum RoleChange {
    /// The member's email and their role before.
    Changed {
        email: String,
        from: Role,
    },
    NotFound,
    /// The organisation would have no owner left.
    LastOwner,
}

/// Gives a member of this organisation a role, unless that leaves it without an owner.
pub async fn set_role(
    db: &Db,
    org_id: &str,
    user_id: &str,
    role: Role,
) -> Result<RoleChange, sqlx::Error> {
    let _turn = db.write_turn().await;
    let mut tx = db.pool.begin().await?;
    let before: Option<(String, String)> =
        sqlx::query_as("SELECT email, role FROM users WHERE id = $1 AND org_id = $2")
            .bind(user_id)
            .bind(org_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((email, from)) = before else {
        return Ok(RoleChange::NotFound);
    };
    sqlx::query("UPDATE users SET role = $1 WHERE id = $2 AND org_id = $3")
        .bind(role.as_str())
        .bind(user_id)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    let (owners,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM users WHERE org_id = $1 AND role = 'owner'")
            .bind(org_id)
            .fetch_one(&mut *tx)
            .await?;
    if owners == 0 {
        tx.rollback().await?;
        return Ok(RoleChange::LastOwner);
    }
    tx.commit().await?;
    Ok(RoleChange::Changed {
        email,
        from: Role::stored(&from),
    })
}
