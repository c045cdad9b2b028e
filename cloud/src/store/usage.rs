//! Usage ingestion (idempotent per batch and per request) and the daily rollup the
//! quota and the dashboard read.

use std::collections::{HashMap, HashSet, VecDeque};

use tokio::sync::oneshot;

use sqlx::Row;

use crate::db::{Backend, Db};
use crate::store::key_usage::KeyUsage;
use crate::store::values_placeholders;
use crate::time_util::{day_of, DAY_SECS};

/// Rows per multi-row `INSERT` (10 parameters each; far below both backends' limits).
const CHUNK: usize = 200;

/// Events deleted per statement by the retention purge.
const PURGE_CHUNK: i64 = 5_000;
/// How far ahead of its receipt an event may be counted (a sidecar clock a
/// little ahead of the Cloud's is normal; a day ahead is not).
pub const AHEAD_MS: i64 = 300_000;

/// One security event, validated.
#[derive(Clone, Debug)]
pub struct Event {
    pub request_id: String,
    pub event_type: String,
    pub agent_id: String,
    pub decision: String,
    /// `""` for allowed checks.
    pub error_code: String,
    pub ts_ms: i64,
    /// [`Phase::Answer`] for an event on a request's answer (metadata `answer: 1`:
    /// a refused or cut answer, tool calls denied in it): its request was counted
    /// already.
    pub phase: Phase,
    /// What the firewall found, when the sidecar said.
    pub signals: Signals,
}

/// The firewall's findings on an event, as the sidecar reported them: kept at
/// ingestion, shown in the audit log and filterable there (`event_tags`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signals {
    /// The risk score in thousandths (0-1000); `None` when none was reported.
    pub risk_milli: Option<i64>,
    /// Category names (`instruction_override`, …), sorted, without repeats.
    pub categories: Vec<String>,
}

/// The risk bands the audit log filters on ("risk at least 0.5"), per mille:
/// an event gets a `risk:<band>` tag for each band its score reaches.
pub const RISK_BANDS: [i64; 3] = [500, 700, 900];

impl Signals {
    /// The `event_tags` rows of an event with these findings.
    pub fn tags(&self) -> Vec<String> {
        let risk = self.risk_milli.unwrap_or(-1);
        RISK_BANDS
            .iter()
            .filter(|&&band| risk >= band)
            .map(|band| risk_tag(*band))
            .chain(self.categories.iter().map(|c| category_tag(c)))
            .collect()
    }
}

/// The tag of events whose risk reaches `band` (per mille).
pub fn risk_tag(band: i64) -> String {
    format!("risk:{band}")
}

/// The tag of events in `category`.
pub fn category_tag(category: &str) -> String {
    format!("category:{category}")
}

/// When in a request's life an event happened: its key is the request ID, the
/// type and the phase, so an answer refused after its request was allowed is a
/// second event of that request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    Request,
    Answer,
}

impl Phase {
    /// As stored (`events.phase`) and written in cursors and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Request => "request",
            Phase::Answer => "answer",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        match s {
            "request" => Some(Phase::Request),
            "answer" => Some(Phase::Answer),
            _ => None,
        }
    }
}

/// What identifies an event (the `events` key within an organisation): the
/// time the sidecar recorded it, its request, type and phase. The time comes
/// first so that new events land at the end of the key's index; a re-sent event
/// carries the time it was recorded with, so it has the same key.
pub type EventKey<'a> = (i64, &'a str, &'a str, Phase);

impl Event {
    pub fn key(&self) -> EventKey<'_> {
        (
            self.ts_ms,
            self.request_id.as_str(),
            self.event_type.as_str(),
            self.phase,
        )
    }

    /// When the event counts (its rollup day and the agent's last sighting),
    /// for a report received at `received_secs`: its own time, but at most five
    /// minutes after the receipt, so a sidecar clock running ahead books no
    /// checks on a future day. Only the count is clamped, never the key: a
    /// time clamped to the receipt would differ at every re-send.
    pub fn counted_ms(&self, received_secs: i64) -> i64 {
        self.ts_ms
            .min(received_secs.saturating_mul(1000).saturating_add(AHEAD_MS))
    }

    /// Whether the event is one of the day's checks, by the filter's rule
    /// (`kalguard_wire::refusal::is_check`): refusals before a sidecar's plan
    /// gate admitted the request (an expired or revoked token, the gate
    /// itself) are audited but not counted, nor is an event on an answer.
    pub fn is_check(&self) -> bool {
        kalguard_wire::refusal::is_check(Some(&self.error_code), self.phase == Phase::Answer)
    }
}

/// One rollup row's increments (`usage_daily`, migration `0005_usage_by_decision`):
/// the checks the plan counts, and every stored event by its decision, so that
/// allowed + denied + approval is the number of audit events.
#[derive(Clone, Copy, Debug, Default)]
struct Rollup {
    checks: i64,
    allowed: i64,
    /// Every refusal: checks, refusals before the check, refused answers.
    denied: i64,
    approval: i64,
    last_seen_ms: i64,
}

impl Rollup {
    fn add(&mut self, e: &Event, counted_ms: i64) {
        self.checks += i64::from(e.is_check());
        match e.decision.as_str() {
            "allow" => self.allowed += 1,
            "require_approval" => self.approval += 1,
            _ => self.denied += 1,
        }
        self.last_seen_ms = self.last_seen_ms.max(counted_ms);
    }
}

/// The result of one report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ingested {
    /// Events acknowledged (the sidecar may drop them from its spool).
    pub accepted: i64,
    /// Checks newly counted by this call against the day's quota (0 for a retried
    /// batch); events that are not checks are stored but not counted.
    pub counted: i64,
}

/// One report waiting for the ingestion turn.
#[derive(Debug)]
struct Waiting {
    org_id: String,
    /// The API key it came with (its `key_usage` row is counted with it).
    key_id: Option<String>,
    batch_id: Option<String>,
    events: Vec<Event>,
    at: i64,
    done: oneshot::Sender<Result<Ingested, sqlx::Error>>,
}

/// Reports waiting for SQLite's single writer. Whichever report gets the writer
/// stores every waiting one with its own in one transaction (up to
/// [`GROUP_EVENTS`] events): a transaction's cost is mostly the index pages it
/// dirties, and reports from many agents dirty one leaf of the per-agent index
/// (`events_org_agent_time`) per agent, so sharing them among several reports
/// is what makes mixed batches fast. Postgres stores each report in its own
/// transaction, concurrently: grouped there, one transaction at a time, the
/// same CPU per event took twice as long (the backends' work no longer ran side
/// by side).
#[derive(Debug, Default)]
pub struct WaitingReports(std::sync::Mutex<VecDeque<Waiting>>);

/// Most events one shared transaction stores.
const GROUP_EVENTS: usize = 20_000;

impl WaitingReports {
    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Waiting>> {
        // The queue holds plain data: a panic elsewhere cannot leave it half-changed.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The oldest waiting reports, up to [`GROUP_EVENTS`] events (always one).
    fn take_group(&self) -> Vec<Waiting> {
        let mut queue = self.queue();
        let mut group = Vec::new();
        let mut events = 0;
        while let Some(next) = queue.front() {
            if !group.is_empty() && events + next.events.len() > GROUP_EVENTS {
                break;
            }
            events += next.events.len();
            group.extend(queue.pop_front());
        }
        group
    }
}

/// Stores a batch. A `batch_id` seen before for this organisation is acknowledged
/// without counting anything again; an event whose key ([`Event::key`]: time,
/// request ID, type, phase) is already stored is not counted again either, and
/// the stored copy is kept whatever else the new one says. On SQLite the batch
/// may be stored in one transaction with other waiting reports ([`WaitingReports`]).
///
/// The key holds the sidecar's timestamp, not only the request: a re-sent event
/// carries the time it was recorded with (the control plane's spool keeps each
/// event as first written, and re-sends it under the same batch ID besides), so
/// it is counted once. An event dated ahead of its receipt keeps its time in the
/// key and is counted at most five minutes after the receipt
/// ([`Event::counted_ms`]), so a re-sent copy, clamped or not, is the same key.
/// What the key does not catch, and why it does no harm: an event sent without
/// a timestamp takes its receipt time (such an event is counted once per batch
/// ID, as one without a request ID is); a sender that does so can as well send
/// new request IDs, and only adds to its own organisation's counts.
pub async fn ingest(
    db: &Db,
    org_id: &str,
    batch_id: Option<&str>,
    events: &[Event],
    at: i64,
) -> Result<Ingested, sqlx::Error> {
    ingest_from_key(db, org_id, None, batch_id, events, at).await
}

/// As [`ingest`], for a report sent with API key `key_id`: the key's usage
/// (`store::key_usage`) is counted in the same transaction.
pub async fn ingest_from_key(
    db: &Db,
    org_id: &str,
    key_id: Option<&str>,
    batch_id: Option<&str>,
    events: &[Event],
    at: i64,
) -> Result<Ingested, sqlx::Error> {
    if !db.is_sqlite() {
        let report = Report {
            org_id,
            key_id,
            batch_id,
            events,
            at,
        };
        return store_alone(db, report).await;
    }
    let (done, mut result) = oneshot::channel();
    db.waiting_reports.queue().push_back(Waiting {
        org_id: org_id.to_string(),
        key_id: key_id.map(str::to_string),
        batch_id: batch_id.map(str::to_string),
        events: events.to_vec(),
        at,
        done,
    });
    let _turn = db.write_turn().await;
    // Stored already by a report that had the writer before this one.
    if let Ok(stored) = result.try_recv() {
        return stored;
    }
    store_group(db, db.waiting_reports.take_group()).await;
    // This report was in the queue, so in this group or an earlier one.
    result.await.unwrap_or(Err(sqlx::Error::WorkerCrashed))
}

/// Stores `group` in one transaction and answers each report; if that fails,
/// stores each alone, so one report's failure is its own.
async fn store_group(db: &Db, group: Vec<Waiting>) {
    let together = async {
        let reports: Vec<Report<'_>> = group.iter().map(Waiting::report).collect();
        let mut tx = db.pool.begin().await?;
        let stored = store_reports(&mut tx, db.backend, &reports).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(stored)
    }
    .await;
    match together {
        Ok(stored) => {
            for (w, ingested) in group.into_iter().zip(stored) {
                // A report whose caller went away is stored all the same.
                let _ = w.done.send(Ok(ingested));
            }
        }
        Err(e) if group.len() == 1 => {
            if let Some(w) = group.into_iter().next() {
                let _ = w.done.send(Err(e));
            }
        }
        Err(_) => {
            for w in group {
                let alone = store_alone(db, w.report()).await;
                let _ = w.done.send(alone);
            }
        }
    }
}

/// Stores one report in a transaction of its own.
async fn store_alone(db: &Db, report: Report<'_>) -> Result<Ingested, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let ingested = store_reports(&mut tx, db.backend, &[report]).await?;
    tx.commit().await?;
    // `store_reports` answers each report it is given.
    ingested.into_iter().next().ok_or(sqlx::Error::RowNotFound)
}

/// One report as the store writes it.
#[derive(Clone, Copy, Debug)]
struct Report<'a> {
    org_id: &'a str,
    /// The API key it came with (its `key_usage` row is counted with it).
    key_id: Option<&'a str>,
    batch_id: Option<&'a str>,
    events: &'a [Event],
    at: i64,
}

impl Waiting {
    fn report(&self) -> Report<'_> {
        Report {
            org_id: &self.org_id,
            key_id: self.key_id.as_deref(),
            batch_id: self.batch_id.as_deref(),
            events: &self.events,
            at: self.at,
        }
    }
}

/// A rollup row's key: organisation, UTC day, agent, error code.
type RollupKey<'a> = (&'a str, i64, &'a str, &'a str);

/// What the reports of one transaction add to the counters, summed in memory
/// and written once at its end: a batch with 50 agents adds to about one
/// rollup row per agent and code, and reports sharing a transaction add to
/// the same rows, so each row is written once per transaction, not once per
/// report.
#[derive(Debug, Default)]
struct Counters<'a> {
    rollup: HashMap<RollupKey<'a>, Rollup>,
    /// Per organisation, key and UTC day of receipt.
    keys: HashMap<(&'a str, &'a str, i64), KeyUsage>,
}

/// Stores `reports` in `tx`, each answered as if alone (in order: a later
/// report's events already stored by an earlier one are not counted again).
async fn store_reports(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    reports: &[Report<'_>],
) -> Result<Vec<Ingested>, sqlx::Error> {
    let mut counters = Counters::default();
    let mut answers = Vec::with_capacity(reports.len());
    for report in reports {
        let ingested = store_events(tx, backend, report, &mut counters.rollup).await?;
        if let Some(key_id) = report.key_id {
            let usage = counters
                .keys
                .entry((report.org_id, key_id, day_of(report.at)))
                .or_default();
            usage.reports += 1;
            usage.events += ingested.accepted;
            usage.checks += ingested.counted;
        }
        answers.push(ingested);
    }
    write_rollup(tx, backend, counters.rollup).await?;
    // Sorted for the same reason as the rollup.
    let mut keys: Vec<_> = counters.keys.into_iter().collect();
    keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for ((org_id, key_id, day), usage) in keys {
        crate::store::key_usage::record(tx, org_id, key_id, day, usage).await?;
    }
    Ok(answers)
}

/// Stores one report's events in `tx` (see [`ingest`]) and adds those stored
/// now to `rollup`.
async fn store_events<'a>(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    report: &Report<'a>,
    rollup: &mut HashMap<RollupKey<'a>, Rollup>,
) -> Result<Ingested, sqlx::Error> {
    let Report {
        org_id,
        batch_id,
        events,
        at,
        ..
    } = *report;
    let accepted = events.len() as i64;
    if let Some(batch_id) = batch_id {
        let r = sqlx::query(
            "INSERT INTO usage_batches (org_id, batch_id, accepted, received_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (org_id, batch_id) DO NOTHING",
        )
        .bind(org_id)
        .bind(batch_id)
        .bind(accepted)
        .bind(at)
        .execute(&mut **tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(Ingested {
                accepted,
                counted: 0,
            });
        }
    }

    // In key order: on Postgres an insert waits for another transaction's
    // uncommitted row with its key, so two reports holding the same new events
    // in opposite orders would each wait for the other (a deadlock, and one of
    // them refused) if each inserted in the order sent. The key starts with the
    // time, so the rows also land at the end of the key's index.
    let mut seen = HashSet::with_capacity(events.len());
    let mut unique: Vec<&Event> = events.iter().filter(|e| seen.insert(e.key())).collect();
    unique.sort_unstable_by(|a, b| a.key().cmp(&b.key()));

    let mut counted = 0;
    // The tags of the events stored now (not of those stored before).
    let mut tagged: Vec<(String, &Event)> = Vec::new();
    for chunk in unique.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO events (org_id, ts_ms, request_id, event_type, phase, agent_id, decision, error_code, risk_milli, categories) \
             VALUES {} ON CONFLICT (org_id, ts_ms, request_id, event_type, phase) DO NOTHING \
             RETURNING ts_ms, request_id, event_type, phase",
            values_placeholders(backend, chunk.len(), 10)
        );
        let mut q = sqlx::query(&sql);
        for e in chunk {
            q = q
                .bind(org_id)
                .bind(e.ts_ms)
                .bind(&e.request_id)
                .bind(&e.event_type)
                .bind(e.phase.as_str())
                .bind(&e.agent_id)
                .bind(&e.decision)
                .bind(&e.error_code)
                .bind(e.signals.risk_milli)
                .bind(e.signals.categories.join(","));
        }
        let inserted = q.fetch_all(&mut **tx).await?;
        let by_key: HashMap<EventKey<'_>, &Event> = chunk.iter().map(|e| (e.key(), *e)).collect();
        for row in inserted {
            let ts_ms: i64 = row.try_get(0)?;
            let request_id: String = row.try_get(1)?;
            let event_type: String = row.try_get(2)?;
            let phase: String = row.try_get(3)?;
            let Some(phase) = Phase::parse(&phase) else {
                continue;
            };
            let key = (ts_ms, request_id.as_str(), event_type.as_str(), phase);
            let Some(e) = by_key.get(&key) else {
                continue;
            };
            counted += i64::from(e.is_check());
            for tag in e.signals.tags() {
                tagged.push((tag, *e));
            }
            let counted_ms = e.counted_ms(at);
            rollup
                .entry((
                    org_id,
                    day_of(counted_ms.div_euclid(1000)),
                    &e.agent_id,
                    &e.error_code,
                ))
                .or_default()
                .add(e, counted_ms);
        }
    }

    for chunk in tagged.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO event_tags (org_id, tag, ts_ms, request_id, event_type, phase, \
             agent_id, decision, error_code, risk_milli) VALUES {} ON CONFLICT DO NOTHING",
            values_placeholders(backend, chunk.len(), 10)
        );
        let mut q = sqlx::query(&sql);
        for (tag, e) in chunk {
            q = q
                .bind(org_id)
                .bind(tag.as_str())
                .bind(e.ts_ms)
                .bind(&e.request_id)
                .bind(&e.event_type)
                .bind(e.phase.as_str())
                .bind(&e.agent_id)
                .bind(&e.decision)
                .bind(&e.error_code)
                // Only events with a score reach a risk band; a category
                // without one is below every band.
                .bind(e.signals.risk_milli.unwrap_or(-1));
        }
        q.execute(&mut **tx).await?;
    }
    Ok(Ingested { accepted, counted })
}

/// Adds a transaction's rollup to `usage_daily`, one upsert per row.
async fn write_rollup(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    rollup: HashMap<RollupKey<'_>, Rollup>,
) -> Result<(), sqlx::Error> {
    // One key order for every transaction, so concurrent reports lock rollup rows
    // in the same order and cannot deadlock on Postgres.
    let mut rollup: Vec<_> = rollup.into_iter().collect();
    rollup.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for chunk in rollup.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO usage_daily (org_id, day, agent_id, error_code, checks, allowed, denied, approval, last_seen_ms) \
             VALUES {} ON CONFLICT (org_id, day, agent_id, error_code) DO UPDATE SET \
             checks = usage_daily.checks + excluded.checks, \
             allowed = usage_daily.allowed + excluded.allowed, \
             denied = usage_daily.denied + excluded.denied, \
             approval = usage_daily.approval + excluded.approval, \
             last_seen_ms = CASE WHEN excluded.last_seen_ms > usage_daily.last_seen_ms \
             THEN excluded.last_seen_ms ELSE usage_daily.last_seen_ms END",
            values_placeholders(backend, chunk.len(), 9)
        );
        let mut q = sqlx::query(&sql);
        for ((org_id, day, agent, code), r) in chunk {
            q = q
                .bind(*org_id)
                .bind(*day)
                .bind(*agent)
                .bind(*code)
                .bind(r.checks)
                .bind(r.allowed)
                .bind(r.denied)
                .bind(r.approval)
                .bind(r.last_seen_ms);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Checks counted for an organisation on one UTC day.
pub async fn checks_on_day(db: &Db, org_id: &str, day: i64) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(checks), 0) AS BIGINT) FROM usage_daily WHERE org_id = $1 AND day = $2",
    )
    .bind(org_id)
    .bind(day)
    .fetch_one(&db.pool)
    .await?;
    Ok(n)
}

/// Agents with at least one check on `day` (at most `limit`), for sidecars to
/// hold the plan's agent limit across the whole organisation.
pub async fn agents_on_day(
    db: &Db,
    org_id: &str,
    day: i64,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT agent_id FROM usage_daily WHERE org_id = $1 AND day = $2 AND checks > 0          ORDER BY agent_id LIMIT $3",
    )
    .bind(org_id)
    .bind(day)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(|(a,)| a).collect())
}

/// The agents a license or report answer lists: only for a plan that limits
/// agents (`None` otherwise), and never more than one past the limit.
pub async fn agents_for_limit(
    db: &Db,
    org_id: &str,
    day: i64,
    max_agents: i64,
) -> Result<Option<Vec<String>>, sqlx::Error> {
    if max_agents < 0 {
        return Ok(None);
    }
    agents_on_day(db, org_id, day, max_agents + 1)
        .await
        .map(Some)
}

/// The organisation's plan and its checks on `day`, in one round trip (the usage
/// report answers with both). `None` when the organisation does not exist.
pub async fn plan_and_checks_on_day(
    db: &Db,
    org_id: &str,
    day: i64,
) -> Result<Option<(crate::plan::Plan, i64)>, sqlx::Error> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT o.plan, CAST(COALESCE((SELECT SUM(u.checks) FROM usage_daily u \
         WHERE u.org_id = o.id AND u.day = $2), 0) AS BIGINT) FROM orgs o WHERE o.id = $1",
    )
    .bind(org_id)
    .bind(day)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|(plan, checks)| (crate::plan::stored(&plan), checks)))
}

/// One day of the usage chart and cards.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayUsage {
    pub day: i64,
    /// Requests checked and counted against the plan (allowed, denied or held).
    pub checks: i64,
    /// Audit events allowed.
    pub allowed: i64,
    /// Audit events refused: refused checks, refusals before the check (expired or
    /// revoked token, rate or agent limit) and refused answers.
    pub denied: i64,
    /// Audit events held for approval (`require_approval`).
    pub approval: i64,
}

impl DayUsage {
    /// Audit events of the day: the audit log's rows while retention keeps them.
    pub fn events(&self) -> i64 {
        self.allowed + self.denied + self.approval
    }
}

/// Checks and denials per UTC day for the `days` days ending with `today`
/// (days without traffic included as zeros).
pub async fn daily(
    db: &Db,
    org_id: &str,
    today: i64,
    days: i64,
) -> Result<Vec<DayUsage>, sqlx::Error> {
    daily_of(db, org_id, None, today, days).await
}

/// As [`daily`], for one agent's events only.
pub async fn agent_daily(
    db: &Db,
    org_id: &str,
    agent_id: &str,
    today: i64,
    days: i64,
) -> Result<Vec<DayUsage>, sqlx::Error> {
    daily_of(db, org_id, Some(agent_id), today, days).await
}

async fn daily_of(
    db: &Db,
    org_id: &str,
    agent_id: Option<&str>,
    today: i64,
    days: i64,
) -> Result<Vec<DayUsage>, sqlx::Error> {
    let first = today - days + 1;
    let agent_clause = if agent_id.is_some() {
        " AND agent_id = $4"
    } else {
        ""
    };
    let sql = format!(
        "SELECT day, CAST(SUM(checks) AS BIGINT), CAST(SUM(allowed) AS BIGINT), \
         CAST(SUM(denied) AS BIGINT), CAST(SUM(approval) AS BIGINT) FROM usage_daily \
         WHERE org_id = $1 AND day >= $2 AND day <= $3{agent_clause} GROUP BY day"
    );
    let mut q = sqlx::query_as(&sql).bind(org_id).bind(first).bind(today);
    if let Some(agent_id) = agent_id {
        q = q.bind(agent_id);
    }
    let rows: Vec<(i64, i64, i64, i64, i64)> = q.fetch_all(&db.pool).await?;
    let mut by_day: HashMap<i64, DayUsage> = rows
        .into_iter()
        .map(|(day, checks, allowed, denied, approval)| {
            let usage = DayUsage {
                day,
                checks,
                allowed,
                denied,
                approval,
            };
            (day, usage)
        })
        .collect();
    Ok((first..=today)
        .map(|day| {
            by_day.remove(&day).unwrap_or(DayUsage {
                day,
                ..DayUsage::default()
            })
        })
        .collect())
}

/// Events refused and held for approval under a label (an error code or an agent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breakdown {
    pub label: String,
    pub denied: i64,
    pub approval: i64,
}

/// Refusals observe mode let pass in the window (allowed events that keep the
/// code they would have been refused with: `api::usage`).
pub async fn would_refuse(db: &Db, org_id: &str, first_day: i64) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(allowed), 0) AS BIGINT) FROM usage_daily \
         WHERE org_id = $1 AND day >= $2 AND error_code <> ''",
    )
    .bind(org_id)
    .bind(first_day)
    .fetch_one(&db.pool)
    .await?;
    Ok(count)
}

/// Refused and held events per error code in the window, most frequent first
/// (the 20 most frequent: the filter's codes are fewer).
pub async fn denials_by_code(
    db: &Db,
    org_id: &str,
    first_day: i64,
) -> Result<Vec<Breakdown>, sqlx::Error> {
    breakdown(db, org_id, first_day, "error_code", 20, 0).await
}

/// Refused and held events per agent in the window, most frequent first: `limit`
/// agents after the first `offset` (a fleet has more agents than a page shows).
pub async fn denials_by_agent(
    db: &Db,
    org_id: &str,
    first_day: i64,
    limit: i64,
    offset: i64,
) -> Result<Vec<Breakdown>, sqlx::Error> {
    breakdown(db, org_id, first_day, "agent_id", limit, offset).await
}

/// One agent's refused and held events per error code in the window.
pub async fn agent_denials_by_code(
    db: &Db,
    org_id: &str,
    agent_id: &str,
    first_day: i64,
) -> Result<Vec<Breakdown>, sqlx::Error> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT error_code, CAST(SUM(denied) AS BIGINT), CAST(SUM(approval) AS BIGINT) \
         FROM usage_daily WHERE org_id = $1 AND day >= $2 AND agent_id = $3 \
         AND (denied > 0 OR approval > 0) \
         GROUP BY error_code ORDER BY SUM(denied) + SUM(approval) DESC, error_code",
    )
    .bind(org_id)
    .bind(first_day)
    .bind(agent_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(label, denied, approval)| Breakdown {
            label,
            denied,
            approval,
        })
        .collect())
}

/// When the agent's last event was (unix ms), over the rollup's year.
pub async fn agent_last_seen(
    db: &Db,
    org_id: &str,
    agent_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let (seen,): (Option<i64>,) = sqlx::query_as(
        "SELECT MAX(last_seen_ms) FROM usage_daily WHERE org_id = $1 AND agent_id = $2",
    )
    .bind(org_id)
    .bind(agent_id)
    .fetch_one(&db.pool)
    .await?;
    Ok(seen)
}

/// `column` is one of two fixed names, never input.
async fn breakdown(
    db: &Db,
    org_id: &str,
    first_day: i64,
    column: &'static str,
    limit: i64,
    offset: i64,
) -> Result<Vec<Breakdown>, sqlx::Error> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(&format!(
        "SELECT {column}, CAST(SUM(denied) AS BIGINT), CAST(SUM(approval) AS BIGINT) \
         FROM usage_daily WHERE org_id = $1 AND day >= $2 AND (denied > 0 OR approval > 0) \
         GROUP BY {column} ORDER BY SUM(denied) + SUM(approval) DESC, {column} LIMIT $3 OFFSET $4"
    ))
    .bind(org_id)
    .bind(first_day)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(label, denied, approval)| Breakdown {
            label,
            denied,
            approval,
        })
        .collect())
}

/// An agent seen recently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveAgent {
    pub agent_id: String,
    pub last_seen_ms: i64,
    pub checks: i64,
    /// As in [`DayUsage`]: every refused event, and those held for approval.
    pub denied: i64,
    pub approval: i64,
}

/// Agents seen in the 24 h before `now_secs`, with their checks and denials over
/// the UTC days that window touches (the rollup is per day).
pub async fn active_agents(
    db: &Db,
    org_id: &str,
    now_secs: i64,
) -> Result<Vec<ActiveAgent>, sqlx::Error> {
    let since_ms = (now_secs - DAY_SECS) * 1000;
    let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT agent_id, MAX(last_seen_ms) AS seen, CAST(SUM(checks) AS BIGINT), \
         CAST(SUM(denied) AS BIGINT), CAST(SUM(approval) AS BIGINT) \
         FROM usage_daily WHERE org_id = $1 AND day >= $2 GROUP BY agent_id \
         HAVING MAX(last_seen_ms) >= $3 ORDER BY seen DESC, agent_id",
    )
    .bind(org_id)
    .bind(day_of(now_secs) - 1)
    .bind(since_ms)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(agent_id, last_seen_ms, checks, denied, approval)| ActiveAgent {
                agent_id,
                last_seen_ms,
                checks,
                denied,
                approval,
            },
        )
        .collect())
}

/// Deletes an organisation's events and batch records older than `retention_days`,
/// and events dated more than `retention_days` ahead (a time is kept as the
/// sidecar sent it, so without this bound a row dated in year 9999 would never
/// go). The daily rollup (counts only, no request IDs) is kept a year for the charts.
pub async fn purge(
    db: &Db,
    org_id: &str,
    retention_days: i64,
    now_secs: i64,
) -> Result<u64, sqlx::Error> {
    let cutoff = now_secs - retention_days * DAY_SECS;
    // SQLite has one writer: delete in chunks, each a short write, so ingestion never
    // waits long behind a purge. Postgres deletes in one statement (MVCC, row locks).
    let ahead = now_secs.saturating_add(retention_days * DAY_SECS);
    let mut purged = 0;
    // Each range apart, so each is one range of the key (`ts_ms` follows `org_id`).
    let ranges = [("<", cutoff), (">", ahead)];
    for ((table, counts), (op, bound)) in [("events", true), ("event_tags", false)]
        .into_iter()
        .flat_map(|t| ranges.map(|r| (t, r)))
    {
        let chunked = format!(
            "DELETE FROM {table} WHERE rowid IN \
             (SELECT rowid FROM {table} WHERE org_id = $1 AND ts_ms {op} $2 LIMIT $3)"
        );
        let whole = format!("DELETE FROM {table} WHERE org_id = $1 AND ts_ms {op} $2");
        loop {
            let _turn = db.write_turn().await;
            let r = sqlx::query(if db.is_sqlite() { &chunked } else { &whole })
                .bind(org_id)
                .bind(bound.saturating_mul(1000));
            let r = if db.is_sqlite() {
                r.bind(PURGE_CHUNK)
            } else {
                r
            };
            let deleted = r.execute(&db.pool).await?.rows_affected();
            if counts {
                purged += deleted;
            }
            if !db.is_sqlite() || deleted < PURGE_CHUNK as u64 {
                break;
            }
        }
    }
    sqlx::query("DELETE FROM usage_batches WHERE org_id = $1 AND received_at < $2")
        .bind(org_id)
        .bind(cutoff)
        .execute(&db.pool)
        .await?;
    sqlx::query("DELETE FROM usage_daily WHERE org_id = $1 AND day < $2")
        .bind(org_id)
        .bind(day_of(now_secs) - 366)
        .execute(&db.pool)
        .await?;
    Ok(purged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(request_id: &str, agent: &str) -> Event {
        Event {
            request_id: request_id.into(),
            event_type: "prompt_check".into(),
            agent_id: agent.into(),
            decision: "allow".into(),
            error_code: String::new(),
            ts_ms: 1_765_000_000_000,
            phase: Phase::Request,
            signals: Signals::default(),
        }
    }

    /// Reports that wait for SQLite's writer are stored by whichever gets it
    /// first, in one transaction, and each gets its own answer.
    #[tokio::test]
    async fn waiting_reports_share_one_transaction_and_keep_their_answers() {
        let dir = std::env::temp_dir().join(format!(
            "kalguard-cloud-group-{}-{}",
            std::process::id(),
            crate::secrets::random_string(8)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::connect(&format!("sqlite://{}?mode=rwc", dir.join("c.db").display()))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let org = crate::store::orgs::create_with_owner(&db, "G", "g@g.test", "x")
            .await
            .unwrap()
            .org_id;
        let turn = db.write_turn().await;
        let report = |batch: &'static str, ids: &'static [&'static str]| {
            let (db, org) = (db.clone(), org.clone());
            tokio::spawn(async move {
                let events: Vec<Event> = ids.iter().map(|id| event(id, batch)).collect();
                ingest(&db, &org, Some(batch), &events, 1_765_000_000).await
            })
        };
        let first = report("b1", &["r1", "r2"]);
        let again = report("b1", &["r1", "r2"]);
        let overlapping = report("b2", &["r2", "r3", "r4"]);
        while db.waiting_reports.queue().len() < 3 {
            tokio::task::yield_now().await;
        }
        drop(turn);
        let answers = [
            first.await.unwrap().unwrap(),
            again.await.unwrap().unwrap(),
            overlapping.await.unwrap().unwrap(),
        ];
        assert!(db.waiting_reports.queue().is_empty());
        assert_eq!(
            answers.map(|a| (a.accepted, a.counted)),
            [(2, 2), (2, 0), (3, 2)],
            "a retried batch and an event stored already are not counted again"
        );
        assert_eq!(
            checks_on_day(&db, &org, day_of(1_765_000_000))
                .await
                .unwrap(),
            4
        );
        // A refusal observe mode let pass is allowed, and counted apart.
        let observed = Event {
            error_code: "PROMPT_BLOCKED".into(),
            ..event("r5", "b3")
        };
        ingest(&db, &org, None, &[observed], 1_765_000_000)
            .await
            .unwrap();
        let first_day = day_of(1_765_000_000);
        assert_eq!(would_refuse(&db, &org, first_day).await.unwrap(), 1);
        assert!(denials_by_code(&db, &org, first_day)
            .await
            .unwrap()
            .is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_group_takes_the_oldest_reports_within_its_event_budget() {
        let reports = WaitingReports::default();
        for n in [GROUP_EVENTS - 10, 5, 6, 1] {
            let (done, _) = oneshot::channel();
            reports.queue().push_back(Waiting {
                org_id: "o".into(),
                key_id: None,
                batch_id: None,
                events: vec![event("r", "a"); n],
                at: 0,
                done,
            });
        }
        let sizes = |g: Vec<Waiting>| g.iter().map(|w| w.events.len()).collect::<Vec<_>>();
        assert_eq!(sizes(reports.take_group()), [GROUP_EVENTS - 10, 5]);
        assert_eq!(sizes(reports.take_group()), [6, 1]);
        assert!(reports.take_group().is_empty());
    }
}
