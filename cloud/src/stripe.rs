//! Stripe webhooks: `POST /api/v1/stripe/webhook`, verified with the
//! `Stripe-Signature` scheme, each event processed once, plan changes ordered by
//! the event's `created` time so a late, older event cannot undo a newer one.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::api::{ApiBody, ApiError};
use crate::app::AppState;
use crate::plan::Plan;
use crate::secrets::constant_time_eq;
use crate::store::orgs;
use crate::time_util::now;

/// How far a signature's `t=` may be from our clock.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a signature was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing or malformed Stripe-Signature header")]
    Malformed,
    #[error("Stripe-Signature timestamp outside the 300 s tolerance")]
    Stale,
    #[error("no v1 signature matches")]
    Mismatch,
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    s.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some((hex_digit(*hi)? << 4) | hex_digit(*lo)?),
            _ => None,
        })
        .collect()
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Verifies `header` (`t=…,v1=…[,v1=…]`) for `body` with `secret` at time `now`.
pub fn verify(header: &str, body: &[u8], secret: &str, now: i64) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match k {
            "t" => timestamp = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            "v1" => candidates.push(v),
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - t).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| SignatureError::Malformed)?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    let matched = candidates
        .iter()
        .filter_map(|c| hex_decode(c))
        .fold(false, |acc, sig| acc | constant_time_eq(&sig, &expected));
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Signs `body` as Stripe does (tests, tools and the demo use it).
pub fn sign(body: &[u8], secret: &str, t: i64) -> String {
    let mut sig = String::new();
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        for b in mac.finalize().into_bytes() {
            sig.push_str(&format!("{b:02x}"));
        }
    }
    format!("t={t},v1={sig}")
}

/// Price ID → plan, from `price_abc=pro,price_def=enterprise`.
pub fn price_plans(spec: &str) -> Vec<(String, Plan)> {
    spec.split(',')
        .filter_map(|pair| {
            let (price, plan) = pair.trim().split_once('=')?;
            Some((price.trim().to_string(), plan.trim().parse().ok()?))
        })
        .collect()
}

#[derive(Debug, serde::Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    data: EventData,
}

#[derive(Debug, serde::Deserialize)]
struct EventData {
    object: serde_json::Value,
}

fn str_field<'a>(v: &'a serde_json::Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// The plan a subscription object grants: its first item's price, mapped; a
/// subscription that is not active/trialing grants `free`.
fn subscription_plan(sub: &serde_json::Value, prices: &[(String, Plan)]) -> Option<Plan> {
    let status = str_field(sub, &["status"]).unwrap_or("active");
    if !matches!(status, "active" | "trialing" | "past_due") {
        return Some(Plan::Free);
    }
    let items = sub.get("items")?.get("data")?.as_array()?;
    items.iter().find_map(|item| {
        let price = str_field(item, &["price", "id"])?;
        prices
            .iter()
            .find(|(p, _)| p == price)
            .map(|(_, plan)| *plan)
    })
}

/// `POST /api/v1/stripe/webhook`.
pub async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Some(secret) = state.config.stripe_webhook_secret.as_deref() else {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "STRIPE_NOT_CONFIGURED",
            message: "STRIPE_WEBHOOK_SECRET is not set on this Cloud".into(),
        });
    };
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Err(e) = verify(header, &body, secret, now()) {
        return Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "BAD_SIGNATURE",
            message: e.to_string(),
        });
    }
    let event: StripeEvent = crate::api::parse_json(&body)?;
    let fresh = sqlx::query(
        "INSERT INTO stripe_events (id, event_type, created, received_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&event.id)
    .bind(&event.event_type)
    .bind(event.created)
    .bind(now())
    .execute(&state.db.pool)
    .await?
    .rows_affected()
        == 1;
    if !fresh {
        return Ok((
            StatusCode::OK,
            Json(serde_json::json!({"received": true, "duplicate": true})),
        ));
    }
    let outcome = match apply(&state, &event).await {
        Ok(o) => o,
        Err(e) => {
            // Forget the event so Stripe's retry processes it again.
            sqlx::query("DELETE FROM stripe_events WHERE id = $1")
                .bind(&event.id)
                .execute(&state.db.pool)
                .await?;
            return Err(e);
        }
    };
    tracing::info!(event_id = %event.id, event_type = %event.event_type, outcome, "stripe webhook");
    Ok((
        StatusCode::OK,
        Json(serde_json::json!({"received": true, "outcome": outcome})),
    ))
}

/// Puts a plan Stripe set into the organisation's admin log.
async fn record_plan(
    state: &AppState,
    org_id: &str,
    plan: Plan,
    event: &StripeEvent,
) -> Result<(), sqlx::Error> {
    crate::store::admin_log::append(
        &state.db,
        org_id,
        &crate::store::admin_log::Actor::stripe(),
        crate::store::admin_log::Action::PlanChanged,
        plan.as_str(),
        &format!("Stripe event {} ({})", event.id, event.event_type),
    )
    .await
}

/// Applies one event; returns what happened, for the log and the answer.
async fn apply(state: &AppState, event: &StripeEvent) -> Result<&'static str, ApiError> {
    let obj = &event.data.object;
    let prices = price_plans(&state.config.stripe_prices);
    let customer = str_field(obj, &["customer"]);
    match event.event_type.as_str() {
        "checkout.session.completed" => {
            // Our Checkout sessions carry the org as client_reference_id.
            let Some(org_id) = str_field(obj, &["client_reference_id"]) else {
                return Ok("ignored: no client_reference_id");
            };
            if orgs::get(&state.db, org_id).await?.is_none() {
                return Ok("ignored: unknown organisation");
            }
            if let Some(c) = customer {
                match orgs::find_by_stripe_customer(&state.db, c).await? {
                    Some(owner) if owner.id != org_id => {
                        return Ok("ignored: customer belongs to another organisation");
                    }
                    Some(_) => {}
                    None => orgs::set_stripe_customer(&state.db, org_id, c).await?,
                }
            }
            let plan = str_field(obj, &["metadata", "plan"]).and_then(|p| p.parse::<Plan>().ok());
            match plan {
                Some(plan) => {
                    let sub = str_field(obj, &["subscription"]);
                    if orgs::set_plan_from_event(&state.db, org_id, plan, sub, event.created)
                        .await?
                    {
                        record_plan(state, org_id, plan, event).await?;
                    }
                    Ok("plan set from checkout")
                }
                None => Ok("customer linked"),
            }
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => {
            let Some(org) = find_org(state, customer).await? else {
                return Ok("ignored: unknown customer");
            };
            let plan = if event.event_type.ends_with("deleted") {
                Some(Plan::Free)
            } else {
                subscription_plan(obj, &prices)
            };
            let Some(plan) = plan else {
                return Ok("ignored: price not mapped to a plan (KALGUARD_CLOUD_STRIPE_PRICES)");
            };
            let sub = str_field(obj, &["id"]);
            if orgs::set_plan_from_event(&state.db, &org.id, plan, sub, event.created).await? {
                record_plan(state, &org.id, plan, event).await?;
                Ok("plan updated")
            } else {
                Ok("ignored: older than the event that set the plan")
            }
        }
        "invoice.payment_failed" => {
            // Stripe retries the payment and moves the subscription to past_due or
            // canceled; the plan follows those subscription events.
            Ok(if find_org(state, customer).await?.is_some() {
                "payment failure noted"
            } else {
                "ignored: unknown customer"
            })
        }
        "invoice.paid" => Ok(if find_org(state, customer).await?.is_some() {
            "payment noted"
        } else {
            "ignored: unknown customer"
        }),
        _ => Ok("ignored: event type not handled"),
    }
}

async fn find_org(
    state: &AppState,
    customer: Option<&str>,
) -> Result<Option<orgs::Org>, sqlx::Error> {
    match customer {
        Some(c) => orgs::find_by_stripe_customer(&state.db, c).await,
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_made_with_the_secret_verifies() {
        let body = br#"{"id":"evt_1"}"#;
        let header = sign(body, "whsec_test", 1_000);
        assert_eq!(verify(&header, body, "whsec_test", 1_100), Ok(()));
    }

    #[test]
    fn any_of_several_v1_signatures_may_match() {
        let body = b"{}";
        let good = sign(body, "whsec_test", 1_000);
        let v1 = good.split("v1=").nth(1).unwrap();
        let header = format!("t=1000,v1={},v1={v1},v0=abc", "00".repeat(32));
        assert_eq!(verify(&header, body, "whsec_test", 1_000), Ok(()));
    }

    #[test]
    fn wrong_secret_body_or_time_is_refused() {
        let body = b"{}";
        let header = sign(body, "whsec_test", 1_000);
        assert_eq!(
            verify(&header, body, "whsec_other", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&header, b"{ }", "whsec_test", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&header, body, "whsec_test", 1_301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify("v1=abc", body, "whsec_test", 1_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify("t=1000", body, "whsec_test", 1_000),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn prices_map_to_plans() {
        let m = price_plans("price_a=pro, price_b=enterprise,bad,price_c=gold");
        assert_eq!(
            m,
            vec![
                ("price_a".to_string(), Plan::Pro),
                ("price_b".to_string(), Plan::Enterprise)
            ]
        );
    }
}

/// A Stripe API call that did not give us what we asked for.
#[derive(Debug, thiserror::Error)]
pub enum StripeApiError {
    #[error("Stripe is not configured on this Cloud (set STRIPE_SECRET_KEY)")]
    NotConfigured,
    #[error("could not reach Stripe at {base}: {source}")]
    Unreachable {
        base: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Stripe refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
}

/// `POST {base}/v1/{path}` with form parameters, as the Stripe API expects; returns
/// the `url` of the created session (Checkout or Billing Portal).
pub async fn create_session_url(
    state: &AppState,
    path: &str,
    params: &[(&str, String)],
) -> Result<String, StripeApiError> {
    let Some(secret) = state.config.stripe_secret_key.as_deref() else {
        return Err(StripeApiError::NotConfigured);
    };
    let base = state
        .config
        .stripe_api_base
        .trim_end_matches('/')
        .to_string();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let res = state
        .http
        .post(format!("{base}/v1/{path}"))
        .bearer_auth(secret)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|source| StripeApiError::Unreachable {
            base: base.clone(),
            source: source.without_url(),
        })?;
    let status = res.status().as_u16();
    let text = res
        .text()
        .await
        .map_err(|source| StripeApiError::Unreachable {
            base: base.clone(),
            source: source.without_url(),
        })?;
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    match json.get("url").and_then(|u| u.as_str()) {
        Some(url) if (200..300).contains(&status) => Ok(url.to_string()),
        _ => Err(StripeApiError::Refused {
            status,
            message: str_field(&json, &["error", "message"])
                .unwrap_or("no session URL in the answer")
                .to_string(),
        }),
    }
}
