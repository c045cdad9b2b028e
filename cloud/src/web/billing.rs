//! The Billing page: plan and limits, Stripe Checkout and the Billing Portal.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::app::AppState;
use crate::plan::Plan;
use crate::role::Permission;
use crate::store::admin_log::Action;
use crate::store::{orgs, usage};
use crate::time_util::{day_of, now};
use crate::web::admin_log::record;
use crate::web::auth::{CurrentUser, SessionForm};
use crate::web::nav::Nav;
use crate::web::{render, OrNotFound, WebError};

struct PlanRow {
    name: &'static str,
    checks: String,
    agents: String,
    retention: i64,
    features: String,
    current: bool,
    /// A Stripe price is configured for this plan.
    purchasable: bool,
}

#[derive(askama::Template)]
#[template(path = "billing.html")]
struct BillingPage {
    nav: Nav,
    today_checks: i64,
    limit_text: String,
    percent: i64,
    active_agents: usize,
    agents_limit_text: String,
    plans: Vec<PlanRow>,
    stripe_customer: String,
    stripe_enabled: bool,
    notice_text: String,
}

pub async fn billing(
    State(state): State<AppState>,
    CurrentUser(s): CurrentUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let nav = Nav::load(&state, &s, "billing").await?;
    let prices = crate::stripe::price_plans(&state.config.stripe_prices);
    let org = orgs::get(&state.db, &s.org_id)
        .await?
        .or_not_found("organisation")?;
    let today_checks = usage::checks_on_day(&state.db, &s.org_id, day_of(now())).await?;
    let active_agents = usage::active_agents(&state.db, &s.org_id, now())
        .await?
        .len();
    let limit = org.plan.limits().checks_per_day;
    let unlimited = |n: i64| {
        if n < 0 {
            "unlimited".to_string()
        } else {
            n.to_string()
        }
    };
    render(&BillingPage {
        today_checks,
        active_agents,
        agents_limit_text: unlimited(org.plan.limits().max_agents),
        limit_text: unlimited(limit),
        percent: if limit > 0 {
            (today_checks * 100 / limit).min(100)
        } else {
            0
        },
        plans: Plan::ALL
            .iter()
            .map(|p| {
                let l = p.limits();
                PlanRow {
                    name: p.as_str(),
                    checks: unlimited(l.checks_per_day),
                    agents: unlimited(l.max_agents),
                    retention: l.audit_retention_days,
                    features: l.features.join(", "),
                    current: *p == org.plan,
                    purchasable: prices.iter().any(|(_, plan)| plan == p),
                }
            })
            .collect(),
        stripe_customer: org.stripe_customer_id.unwrap_or_default(),
        stripe_enabled: state.config.stripe_secret_key.is_some(),
        notice_text: match q.get("notice").map(String::as_str) {
            Some("checkout_done") => "Thank you. Your plan changes as soon as Stripe confirms the payment; sidecars pick it up within seconds.".into(),
            _ => String::new(),
        },
        nav,
    })
}

/// `POST /billing/checkout`: a Stripe Checkout session for the chosen plan.
pub async fn checkout(
    State(state): State<AppState>,
    SessionForm(user, form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Administer)?;
    let plan: Plan = form.get("plan").parse().map_err(|_| {
        WebError::new(
            StatusCode::BAD_REQUEST,
            "Choose the pro or enterprise plan.",
        )
    })?;
    let prices = crate::stripe::price_plans(&state.config.stripe_prices);
    let Some((price, _)) = prices.iter().find(|(_, p)| *p == plan) else {
        return Err(WebError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "No Stripe price is configured for the {plan} plan (KALGUARD_CLOUD_STRIPE_PRICES)."
            ),
        ));
    };
    let org = orgs::get(&state.db, &user.0.org_id)
        .await?
        .or_not_found("organisation")?;
    let public = state.config.public_url.trim_end_matches('/');
    let mut params = vec![
        ("mode", "subscription".to_string()),
        ("line_items[0][price]", price.clone()),
        ("line_items[0][quantity]", "1".to_string()),
        ("client_reference_id", org.id.clone()),
        ("metadata[plan]", plan.as_str().to_string()),
        ("subscription_data[metadata][org_id]", org.id.clone()),
        (
            "success_url",
            format!("{public}/billing?notice=checkout_done"),
        ),
        ("cancel_url", format!("{public}/billing")),
    ];
    match &org.stripe_customer_id {
        Some(c) => params.push(("customer", c.clone())),
        None => params.push(("customer_email", user.0.email.clone())),
    }
    let url = crate::stripe::create_session_url(&state, "checkout/sessions", &params)
        .await
        .map_err(stripe_error)?;
    record(&state, &user.0, Action::CheckoutStarted, plan.as_str(), "").await?;
    Ok(Redirect::to(&url).into_response())
}

/// `POST /billing/portal`: the Stripe Billing Portal for the org's customer.
pub async fn portal(
    State(state): State<AppState>,
    SessionForm(user, _form): SessionForm,
) -> Result<Response, WebError> {
    user.require(Permission::Administer)?;
    let org = orgs::get(&state.db, &user.0.org_id)
        .await?
        .or_not_found("organisation")?;
    let Some(customer) = org.stripe_customer_id else {
        return Err(WebError::new(
            StatusCode::BAD_REQUEST,
            "This organisation has no Stripe subscription yet; upgrade first.",
        ));
    };
    let public = state.config.public_url.trim_end_matches('/');
    let params = [
        ("customer", customer),
        ("return_url", format!("{public}/billing")),
    ];
    let url = crate::stripe::create_session_url(&state, "billing_portal/sessions", &params)
        .await
        .map_err(stripe_error)?;
    record(&state, &user.0, Action::BillingPortalOpened, "", "").await?;
    Ok(Redirect::to(&url).into_response())
}

fn stripe_error(e: crate::stripe::StripeApiError) -> WebError {
    tracing::warn!(error = %e, "Stripe API call failed");
    let status = match e {
        crate::stripe::StripeApiError::NotConfigured => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    WebError::new(status, e.to_string())
}
