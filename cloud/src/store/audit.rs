//! Audit-log search with keyset pagination: each page starts strictly after the
//! last row of the previous one on `(ts_ms, request_id, event_type, phase)`, so a
//! page costs the same on row 10 as on row 10 million.
//!
//! Every filter reads an index range in the page order, so a page reads about as
//! many index entries as it shows however rare the match: time alone (the
//! events' key, which is the page order), by agent, code or decision (the
//! `events_org_*_time` indexes), by category or risk band (`event_tags`, joined
//! to its events on the whole key). Agent and code filters match prefixes
//! in any case: the typed text is first resolved to the stored values that
//! start with it ([`matching_values`]: one index seek per distinct value, and
//! the match made in Rust, so no database collation decides what "starts with"
//! means); a page with several values then merges one ordered range per value
//! (`UNION ALL`, each arm limited to the page) within [`MERGE_BUDGET`].

use crate::db::Db;
use crate::store::usage::{category_tag, risk_tag, Event, Phase, Signals, RISK_BANDS};

/// Search filters; every field is optional. Agents and codes are the stored
/// values to match exactly: a typed prefix is first resolved to them
/// ([`matching_values`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// One of these agents; `Some(empty)` matches nothing.
    pub agents: Option<Vec<String>>,
    pub decision: Option<String>,
    /// One of these error codes; `Some(empty)` matches nothing.
    pub error_codes: Option<Vec<String>>,
    /// Inclusive lower bound, unix ms.
    pub from_ms: Option<i64>,
    /// Exclusive upper bound, unix ms (the dashboard's inclusive "To" date is the
    /// start of the next day).
    pub to_ms: Option<i64>,
    /// Events in this category (stored lowercase).
    pub category: Option<String>,
    /// Events whose risk reaches this band (one of [`RISK_BANDS`], per mille).
    pub min_risk: Option<i64>,
}

impl Filter {
    /// Whether a value list rules every event out before any query.
    fn matches_nothing(&self) -> bool {
        self.agents.as_ref().is_some_and(Vec::is_empty)
            || self.error_codes.as_ref().is_some_and(Vec::is_empty)
    }

    /// The `event_tags` tag that drives the query, if a tag filter is set: the
    /// category, else the risk band.
    fn tag(&self) -> Option<String> {
        match (&self.category, self.min_risk) {
            (Some(c), _) => Some(category_tag(c)),
            (None, Some(band)) if RISK_BANDS.contains(&band) => Some(risk_tag(band)),
            (None, _) => None,
        }
    }
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

    /// `ts.eventType.requestId`, or `ts.eventType:phase.requestId` for an
    /// answer's event and for an event type holding a colon (the API accepts
    /// `mcp:call`): request IDs may contain dots, event types contain no dot, and
    /// the phase is what follows the last colon.
    pub fn encode(&self) -> String {
        let phase = match self.phase {
            Phase::Request if !self.event_type.contains(':') => String::new(),
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
        let (event_type, phase) = match typed.rsplit_once(':') {
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

/// A page merges one ordered range per matched value while values × rows per
/// page stays within this many index entries (the audit page's 51 rows: up to
/// 196 values; the CSV's 1,001: 9); beyond, it scans the time index for any of them.
pub const MERGE_BUDGET: i64 = 10_000;

/// Most distinct stored values read to resolve a typed prefix.
pub const RESOLVE_SCAN_CAP: i64 = 10_000;

/// A text column the audit log matches by prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Agent,
    ErrorCode,
}

impl Column {
    fn name(self) -> &'static str {
        match self {
            Column::Agent => "agent_id",
            Column::ErrorCode => "error_code",
        }
    }
}

/// The stored values a typed prefix matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matched {
    /// Sorted as the database sorts them.
    pub values: Vec<String>,
    /// False when the organisation holds more than [`RESOLVE_SCAN_CAP`] distinct
    /// values and only the first were read.
    pub complete: bool,
}

/// Whether `value` starts with `typed`, ignoring case (Unicode lowercase).
pub fn starts_with_any_case(value: &str, typed: &str) -> bool {
    value.to_lowercase().starts_with(&typed.to_lowercase())
}

/// The distinct values of `column` in the organisation's audit log, read by a
/// loose index scan: each step seeks the next value in the column's index
/// (`events_org_agent_time`, `events_org_code_time`), so it costs one seek per
/// distinct value, not one per event.
async fn distinct_values(
    db: &Db,
    org_id: &str,
    table: &str,
    column: &str,
    cap: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = format!(
        "WITH RECURSIVE v(val) AS ( \
           SELECT MIN({column}) FROM {table} WHERE org_id = $1 \
           UNION ALL \
           SELECT (SELECT MIN({column}) FROM {table} WHERE org_id = $1 AND {column} > v.val) \
           FROM v WHERE v.val IS NOT NULL \
         ) SELECT val FROM v WHERE val IS NOT NULL LIMIT $2"
    );
    let rows: Vec<(String,)> = sqlx::query_as(&sql)
        .bind(org_id)
        .bind(cap)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.into_iter().map(|(v,)| v).collect())
}

/// The stored values of `column` that start with `typed` in any case.
pub async fn matching_values(
    db: &Db,
    org_id: &str,
    column: Column,
    typed: &str,
) -> Result<Matched, sqlx::Error> {
    let all = distinct_values(db, org_id, "events", column.name(), RESOLVE_SCAN_CAP + 1).await?;
    let complete = all.len() as i64 <= RESOLVE_SCAN_CAP;
    let values = all
        .into_iter()
        .take(RESOLVE_SCAN_CAP as usize)
        .filter(|v| starts_with_any_case(v, typed))
        .collect();
    Ok(Matched { values, complete })
}

/// The categories of the organisation's events still in the audit log, sorted.
pub async fn categories(db: &Db, org_id: &str) -> Result<Vec<String>, sqlx::Error> {
    let tags = distinct_values(db, org_id, "event_tags", "tag", RESOLVE_SCAN_CAP).await?;
    Ok(tags
        .into_iter()
        .filter_map(|t| t.strip_prefix("category:").map(str::to_string))
        .collect())
}

/// One value bound to a statement.
enum Bound {
    Text(String),
    Int(i64),
}

/// A statement and its values, numbered `$1…` in the order they are added.
#[derive(Default)]
struct Sql {
    text: String,
    values: Vec<Bound>,
}

impl Sql {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn placeholder(&mut self, v: Bound) {
        self.values.push(v);
        self.text.push('$');
        self.text.push_str(&self.values.len().to_string());
    }

    fn text(&mut self, v: &str) {
        self.placeholder(Bound::Text(v.to_string()));
    }

    fn int(&mut self, v: i64) {
        self.placeholder(Bound::Int(v));
    }

    /// ` = $n` for one value, ` IN ($n, …)` for several.
    fn one_of(&mut self, values: &[String]) {
        if let [one] = values {
            self.push(" = ");
            self.text(one);
            return;
        }
        self.push(" IN (");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.text(v);
        }
        self.push(")");
    }

    fn query_as<O>(&self) -> sqlx::query::QueryAs<'_, sqlx::Any, O, sqlx::any::AnyArguments<'_>>
    where
        O: Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let mut q = sqlx::query_as(&self.text);
        for v in &self.values {
            q = match v {
                Bound::Text(t) => q.bind(t.as_str()),
                Bound::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

/// Which way a page reads from its cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// Newest first, rows before the cursor.
    Older,
    /// Oldest first, rows after the cursor (the previous page).
    Newer,
}

impl Direction {
    fn order_by(self, key: &str) -> String {
        let dir = match self {
            Direction::Older => " DESC",
            Direction::Newer => "",
        };
        format!(
            " ORDER BY {key}ts_ms{dir}, {key}request_id{dir}, {key}event_type{dir}, {key}phase{dir}"
        )
    }

    fn beyond(self) -> &'static str {
        match self {
            Direction::Older => "<",
            Direction::Newer => ">",
        }
    }
}

const COLUMNS: &str = "SELECT e.request_id AS request_id, e.event_type AS event_type, \
    e.phase AS phase, e.agent_id AS agent_id, e.decision AS decision, \
    e.error_code AS error_code, e.ts_ms AS ts_ms, e.risk_milli AS risk_milli, \
    e.categories AS categories";

/// Pushes `{head} FROM … WHERE …` with every condition of `filter` (`arm` fixes
/// one value of a merged column); returns the alias whose key columns hold the
/// page order. When a tag drives the query the conditions are checked on
/// `event_tags`' key (`t.`), which carries every filterable column.
fn from_where(
    sql: &mut Sql,
    org_id: &str,
    filter: &Filter,
    arm: Option<(Column, &String)>,
    head: &str,
) -> &'static str {
    sql.push(head);
    let key = match filter.tag() {
        Some(tag) => {
            sql.push(" FROM event_tags t WHERE t.org_id = ");
            sql.text(org_id);
            sql.push(" AND t.tag = ");
            sql.text(&tag);
            "t."
        }
        None => {
            sql.push(" FROM events e WHERE e.org_id = ");
            sql.text(org_id);
            "e."
        }
    };
    for (column, values) in [
        (Column::Agent, &filter.agents),
        (Column::ErrorCode, &filter.error_codes),
    ] {
        let fixed = arm.filter(|(c, _)| *c == column).map(|(_, v)| v);
        let values = match (fixed, values) {
            (Some(v), _) => std::slice::from_ref(v),
            (None, Some(values)) => values.as_slice(),
            (None, None) => continue,
        };
        sql.push(&format!(" AND {key}{}", column.name()));
        sql.one_of(values);
    }
    if let Some(d) = &filter.decision {
        sql.push(&format!(" AND {key}decision = "));
        sql.text(d);
    }
    // A risk band that drives the query needs no check; with a category it is
    // checked on the category's rows.
    if let Some(band) = filter.min_risk.filter(|_| filter.category.is_some()) {
        sql.push(&format!(" AND {key}risk_milli >= "));
        sql.int(band);
    }
    if let Some(from) = filter.from_ms {
        sql.push(&format!(" AND {key}ts_ms >= "));
        sql.int(from);
    }
    if let Some(to) = filter.to_ms {
        sql.push(&format!(" AND {key}ts_ms < "));
        sql.int(to);
    }
    key
}

/// One ordered, limited `SELECT` of matching events beyond `cursor`. When a
/// tag drives the query, the page's keys are read from `event_tags` alone
/// (ordered and limited there) and only those rows are joined to their events
/// on the whole key: joined first, Postgres's planner, which cannot tell how
/// few events a tag's rows match, hashed the organisation's whole table
/// (0.8 s at a million events).
fn select(
    sql: &mut Sql,
    org_id: &str,
    filter: &Filter,
    arm: Option<(Column, &String)>,
    cursor: Option<&Cursor>,
    direction: Direction,
    limit: i64,
) {
    let tagged = filter.tag().is_some();
    let head = if tagged {
        sql.push(COLUMNS);
        sql.push(" FROM (");
        "SELECT t.org_id AS org_id, t.ts_ms AS ts_ms, t.request_id AS request_id, \
         t.event_type AS event_type, t.phase AS phase"
    } else {
        COLUMNS
    };
    let key = from_where(sql, org_id, filter, arm, head);
    if let Some(c) = cursor {
        sql.push(&format!(
            " AND ({key}ts_ms, {key}request_id, {key}event_type, {key}phase) {} (",
            direction.beyond()
        ));
        sql.int(c.ts_ms);
        sql.push(", ");
        sql.text(&c.request_id);
        sql.push(", ");
        sql.text(&c.event_type);
        sql.push(", ");
        sql.text(c.phase.as_str());
        sql.push(")");
    }
    sql.push(&direction.order_by(key));
    sql.push(" LIMIT ");
    sql.int(limit);
    if tagged {
        sql.push(
            ") AS t JOIN events e ON e.org_id = t.org_id AND e.ts_ms = t.ts_ms \
             AND e.request_id = t.request_id AND e.event_type = t.event_type \
             AND e.phase = t.phase",
        );
        sql.push(&direction.order_by("t."));
    }
}

/// The column whose values a page reads as one ordered range each and merges:
/// several agents (else several codes), when no tag drives the query and the
/// ranges stay within [`MERGE_BUDGET`].
fn merged(filter: &Filter, limit: i64) -> Option<(Column, &[String])> {
    if filter.tag().is_some() {
        return None;
    }
    [
        (Column::Agent, &filter.agents),
        (Column::ErrorCode, &filter.error_codes),
    ]
    .into_iter()
    .find_map(|(column, values)| {
        let values = values.as_deref()?;
        (values.len() >= 2 && values.len() as i64 * limit <= MERGE_BUDGET)
            .then_some((column, values))
    })
}

/// Up to `limit` matching events beyond `cursor` in `direction`'s order.
async fn fetch(
    db: &Db,
    org_id: &str,
    filter: &Filter,
    cursor: Option<&Cursor>,
    direction: Direction,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    if filter.matches_nothing() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::default();
    match merged(filter, limit) {
        Some((column, values)) => {
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    sql.push(" UNION ALL ");
                }
                sql.push("SELECT * FROM (");
                select(
                    &mut sql,
                    org_id,
                    filter,
                    Some((column, v)),
                    cursor,
                    direction,
                    limit,
                );
                sql.push(&format!(") AS arm{i}"));
            }
            sql.push(&direction.order_by(""));
            sql.push(" LIMIT ");
            sql.int(limit);
        }
        None => select(&mut sql, org_id, filter, None, cursor, direction, limit),
    }
    let rows = sql.query_as::<Row>().fetch_all(&db.pool).await?;
    Ok(rows.into_iter().map(event_of).collect())
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
    if filter.matches_nothing() {
        return Ok(Some(0));
    }
    let mut sql = Sql::default();
    sql.push("SELECT CAST(COUNT(*) AS BIGINT) FROM (");
    from_where(&mut sql, org_id, filter, None, "SELECT 1");
    sql.push(" LIMIT ");
    sql.int(cap + 1);
    sql.push(") AS capped");
    let (counted,): (i64,) = sql.query_as().fetch_one(&db.pool).await?;
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
    let mut events = fetch(db, org_id, filter, cursor, Direction::Older, limit + 1).await?;
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
    let mut events = fetch(
        db,
        org_id,
        filter,
        Some(cursor),
        Direction::Newer,
        limit + 1,
    )
    .await?;
    let more = events.len() as i64 > limit;
    events.truncate(limit.max(0) as usize);
    events.reverse();
    Ok((events, more))
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    String,
);

fn event_of(row: Row) -> Event {
    let (
        request_id,
        event_type,
        phase,
        agent_id,
        decision,
        error_code,
        ts_ms,
        risk_milli,
        categories,
    ) = row;
    Event {
        request_id,
        event_type,
        agent_id,
        decision,
        error_code,
        ts_ms,
        // The column only ever holds `Phase::as_str` values.
        phase: Phase::parse(&phase).unwrap_or(Phase::Request),
        signals: Signals {
            risk_milli,
            categories: categories
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
        },
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
