//! Wall-clock helpers: unix milliseconds, UTC days and the Cloud's timestamps.

use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const DAY_MS: u64 = 86_400_000;

/// Milliseconds since the unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The UTC day number (days since 1970-01-01) of a unix-millisecond instant.
pub fn day_of(ms: u64) -> u64 {
    ms / DAY_MS
}

/// `YYYY-MM-DD` of a UTC day number.
pub fn date_of_day(day: u64) -> String {
    let secs = i64::try_from(day.saturating_mul(86_400)).unwrap_or(i64::MAX);
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        Err(_) => format!("day-{day}"),
    }
}

/// The UTC day number of a `YYYY-MM-DD` date.
pub fn day_of_date(date: &str) -> Option<u64> {
    let t = OffsetDateTime::parse(&format!("{date}T00:00:00Z"), &Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp()).ok().map(|s| s / 86_400)
}

/// A Cloud timestamp in unix milliseconds: RFC 3339 text, or a number of unix
/// seconds (below 10^11) or milliseconds.
pub fn parse_instant_ms(value: &Value) -> Option<u64> {
    match value {
        Value::String(text) => {
            let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
            u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
        }
        Value::Number(n) => {
            let n = n.as_u64()?;
            Some(if n < 100_000_000_000 { n * 1000 } else { n })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn days_and_dates_round_trip() {
        let day = day_of(1_714_694_400_123);
        assert_eq!(date_of_day(day), "2024-05-03");
        assert_eq!(day_of_date("2024-05-03"), Some(day));
        assert_eq!(day_of_date("garbage"), None);
    }

    #[test]
    fn cloud_instants() {
        assert_eq!(
            parse_instant_ms(&json!("2024-05-03T00:00:00Z")),
            Some(1_714_694_400_000)
        );
        assert_eq!(
            parse_instant_ms(&json!(1_714_694_400)),
            Some(1_714_694_400_000)
        );
        assert_eq!(
            parse_instant_ms(&json!(1_714_694_400_500_u64)),
            Some(1_714_694_400_500)
        );
        assert_eq!(parse_instant_ms(&json!("tomorrow")), None);
    }
}
