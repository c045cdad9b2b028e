//! Audit-log search with keyset pagination: each page starts strictly after the
//! last row of the previous one on `(ts_ms, request_id, event_type, phase)`, so a
//! page costs the same on row 10 as on row 10 million.

use crate::db::Db;
use crate::store::usage::{Event, Phase};

/// Search filters; every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub agent_id: Option<String>,
    pub decision: Option<String>,
    pub error_code: Option<String>,
    /// Inclusive lower bound, unix ms.
    pub from_ms: Option<i64>,
    /// Exclusive upper bound, unix ms (the dashboard's inclusive "To" date is the
    /// start of the next day).
    pub to_ms: Option<i64>,
}

/// Where a page starts: the last row of the previous page (newest first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub ts_ms: i64,
    pub request_id: String,
    pub event_type: String,
    pub phase: Phase,
}

impl Cursor {
    /// The cursor of an event: a page starts just after (or before) it.
    pub fn of(e: &Event) -> Cursor {
        Cursor {
            ts_ms: e.ts_ms,
            request_id: e.request_id.clone(),
            event_type: e.event_type.clone(),
            phase: e.phase,
        }
    }

    /// `ts.eventType.requestId`, or `ts.eventType:answer.requestId` for an answer's
    /// event: request IDs may contain dots, event types contain neither a dot nor a
    /// colon.
    pub fn encode(&self) -> String {
        let phase = match self.phase {
            Phase::Request => String::new(),
            phase => format!(":{}", phase.as_str()),
        };
        format!(
            "{}.{}{phase}.{}",
            self.ts_ms, self.event_type, self.request_id
        )
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let mut parts = s.splitn(3, '.');
        let ts_ms = parts.next()?.parse().ok()?;
        let typed = parts.next()?;
        let (event_type, phase) = match typed.split_once(':') {
            Some((event_type, phase)) => (event_type, Phase::parse(phase)?),
            None => (typed, Phase::Request),
        };
        let request_id = parts.next()?.to_string();
        Some(Cursor {
            ts_ms,
            request_id,
            event_type: event_type.to_string(),
            phase,
        })
    }
}

/// One page, newest first, and the cursor of the next page if there is one.
pub struct Page {
    pub events: Vec<Event>,
    pub next: Option<Cursor>,
}

/// Appends `filter`'s conditions to `sql`, numbered after `$1` (the organisation);
/// returns the last parameter number used.
fn filter_sql(filter: &Filter, sql: &mut String) -> usize {
    let mut n = 1;
    let mut add = |clause: &str| {
        n += 1;
        sql.push_str(&clause.replace("$?", &format!("${n}")));
    };
    if filter.agent_id.is_some() {
        add(" AND agent_id = $?");
    }
    if filter.decision.is_some() {
        add(" AND decision = $?");
    }
    if filter.error_code.is_some() {
        add(" AND error_code = $?");
    }
    if filter.from_ms.is_some() {
        add(" AND ts_ms >= $?");
    }
    if filter.to_ms.is_some() {
        add(" AND ts_ms < $?");
    }
    n
}

type Query<'q, O> = sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>;

/// Binds `filter`'s values in the order [`filter_sql`] numbered them.
fn bind_filter<'q, O>(mut q: Query<'q, O>, filter: &'q Filter) -> Query<'q, O> {
    if let Some(v) = &filter.agent_id {
        q = q.bind(v);
    }
    if let Some(v) = &filter.decision {
        q = q.bind(v);
    }
    if let Some(v) = &filter.error_code {
        q = q.bind(v);
    }
    if let Some(v) = filter.from_ms {
        q = q.bind(v);
    }
    if let Some(v) = filter.to_ms {
        q = q.bind(v);
    }
    q
}

/// How many events match: exact up to `cap`, else `None` ("more than `cap`"). The
/// count stops at `cap + 1` rows, so it costs at most that many index entries
/// however large the log is.
pub async fn count(
    db: &Db,
    org_id: &str,
    filter: &Filter,
    cap: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let mut inner = String::from("SELECT 1 FROM events WHERE org_id = $1");
    let n = filter_sql(filter, &mut inner);
    let sql = format!(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM ({inner} LIMIT ${}) AS capped",
        n + 1
    );
    let (counted,): (i64,) = bind_filter(sqlx::query_as(&sql).bind(org_id), filter)
        .bind(cap + 1)
        .fetch_one(&db.pool)
        .await?;
    Ok((counted <= cap).then_some(counted))
}

/// Returns up to `limit` events of `org_id` matching `filter`, after `cursor`.
pub async fn search(
    db: &Db,
    org_id: &str,
    filter: &Filter,
    cursor: Option<&Cursor>,
    limit: i64,
) -> Result<Page, sqlx::Error> {
    let mut sql = String::from(
        "SELECT request_id, event_type, phase, agent_id, decision, error_code, ts_ms FROM events WHERE org_id = $1",
    );
    let mut n = filter_sql(filter, &mut sql);
    let mut next = |sql: &mut String, clause: &str| {
        n += 1;
        sql.push_str(&clause.replace("$?", &format!("${n}")));
    };
    if cursor.is_some() {
        next(
            &mut sql,
            " AND (ts_ms, request_id, event_type, phase) < ($?",
        );
        next(&mut sql, ", $?");
        next(&mut sql, ", $?");
        next(&mut sql, ", $?)");
    }
    next(
        &mut sql,
        " ORDER BY ts_ms DESC, request_id DESC, event_type DESC, phase DESC LIMIT $?",
    );

    let mut q = bind_filter(sqlx::query_as::<_, Row>(&sql).bind(org_id), filter);
    if let Some(c) = cursor {
        q = q
            .bind(c.ts_ms)
            .bind(&c.request_id)
            .bind(&c.event_type)
            .bind(c.phase.as_str());
    }
    let rows = q.bind(limit + 1).fetch_all(&db.pool).await?;
    let mut events: Vec<Event> = rows.into_iter().map(event_of).collect();
    let next = if events.len() as i64 > limit {
        events.truncate(limit.max(0) as usize);
        events.last().map(Cursor::of)
    } else {
        None
    };
    Ok(Page { events, next })
}

/// The page before a cursor: up to `limit` events newer than `cursor`, the ones
/// just above it, newest first as every page is; and whether still newer ones exist.
pub async fn search_newer(
    db: &Db,
    org_id: &str,
    filter: &Filter,
    cursor: &Cursor,
    limit: i64,
) -> Result<(Vec<Event>, bool), sqlx::Error> {
    let mut sql = String::from(
        "SELECT request_id, event_type, phase, agent_id, decision, error_code, ts_ms FROM events WHERE org_id = $1",
    );
    let n = filter_sql(filter, &mut sql);
    sql.push_str(&format!(
        " AND (ts_ms, request_id, event_type, phase) > (${}, ${}, ${}, ${}) \
         ORDER BY ts_ms, request_id, event_type, phase LIMIT ${}",
        n + 1,
        n + 2,
        n + 3,
        n + 4,
        n + 5
    ));
    let rows = bind_filter(sqlx::query_as::<_, Row>(&sql).bind(org_id), filter)
        .bind(cursor.ts_ms)
        .bind(&cursor.request_id)
        .bind(&cursor.event_type)
        .bind(cursor.phase.as_str())
        .bind(limit + 1)
        .fetch_all(&db.pool)
        .await?;
    let mut events: Vec<Event> = rows.into_iter().map(event_of).collect();
    let more = events.len() as i64 > limit;
    events.truncate(limit.max(0) as usize);
    events.reverse();
    Ok((events, more))
}

type Row = (String, String, String, String, String, String, i64);

fn event_of(row: Row) -> Event {
    let (request_id, event_type, phase, agent_id, decision, error_code, ts_ms) = row;
    Event {
        request_id,
        event_type,
        agent_id,
        decision,
        error_code,
        ts_ms,
        // The column only ever holds `Phase::as_str` values.
        phase: Phase::parse(&phase).unwrap_or(Phase::Request),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_with_dots_in_request_ids() {
        for phase in [Phase::Request, Phase::Answer] {
            let c = Cursor {
                ts_ms: 1_714_694_400_250,
                request_id: "req.a.b".into(),
                event_type: "prompt_check".into(),
                phase,
            };
            assert_eq!(Cursor::decode(&c.encode()), Some(c));
        }
        // A request's cursor reads as it did before phases.
        assert_eq!(
            Cursor::decode("5.prompt_check.r.1").map(|c| c.phase),
            Some(Phase::Request)
        );
        assert_eq!(Cursor::decode("garbage"), None);
        assert_eq!(Cursor::decode("5.prompt_check:later.r"), None);
    }
}
