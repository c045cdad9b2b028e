//! Clock helpers: unix seconds, UTC days, RFC 3339 rendering.

use std::time::{SystemTime, UNIX_EPOCH};

pub const DAY_SECS: i64 = 86_400;

/// Seconds since the unix epoch.
pub fn now() -> i64 {
    now_ms() / 1000
}

/// Milliseconds since the unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The UTC day number (days since 1970-01-01) of a unix time in seconds.
pub fn day_of(secs: i64) -> i64 {
    secs.div_euclid(DAY_SECS)
}

/// The next UTC midnight after `secs`, unix seconds: when daily quotas reset.
pub fn next_midnight(secs: i64) -> i64 {
    (day_of(secs) + 1) * DAY_SECS
}

/// RFC 3339 in UTC, e.g. `2026-11-24T16:00:00Z`.
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// `2026-11-24 16:00:05` UTC, for tables in the dashboard.
pub fn display(secs: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// `2026-11-24` for a UTC day number.
pub fn day_label(day: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::from_unix_timestamp(day * DAY_SECS)
        .ok()
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_else(|| day.to_string())
}

/// Parses a timestamp a sidecar sent: RFC 3339 text, or a number of unix
/// milliseconds (values below 10^11 are taken as seconds). Returns milliseconds.
pub fn parse_event_time(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => {
            let v = n.as_f64()?;
            if !v.is_finite() || v < 0.0 {
                return None;
            }
            let v = v as i64;
            Some(if v < 100_000_000_000 { v * 1000 } else { v })
        }
        serde_json::Value::String(s) => parse_rfc3339_ms(s),
        _ => None,
    }
}

/// Parses RFC 3339 text to unix milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Parses `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM` (an HTML date or datetime-local input,
/// taken as UTC) to unix seconds.
pub fn parse_form_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let date_fmt = time::macros::format_description!("[year]-[month]-[day]");
    let dt_fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    if let Ok(dt) = time::PrimitiveDateTime::parse(s, dt_fmt) {
        return Some(dt.assume_utc().unix_timestamp());
    }
    time::Date::parse(s, date_fmt)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
}

/// The exclusive end of what a form's "To" field names: the day after a date
/// (`YYYY-MM-DD`), the minute after a time (`YYYY-MM-DDTHH:MM`), so "To" includes
/// its whole day or minute, as people read it.
pub fn parse_form_time_end(s: &str) -> Option<i64> {
    let start = parse_form_time(s)?;
    Some(start + if s.contains('T') { 60 } else { DAY_SECS })
}

/// A wait as people say it: "45 seconds", "1 minute", "15 minutes" (rounded up).
pub fn duration_words(secs: i64) -> String {
    let secs = secs.max(1);
    if secs < 60 {
        return format!("{secs} second{}", if secs == 1 { "" } else { "s" });
    }
    let minutes = (secs + 59) / 60;
    format!("{minutes} minute{}", if minutes == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_in_seconds_then_minutes() {
        assert_eq!(duration_words(0), "1 second");
        assert_eq!(duration_words(30), "30 seconds");
        assert_eq!(duration_words(60), "1 minute");
        assert_eq!(duration_words(61), "2 minutes");
    }

    #[test]
    fn a_to_field_includes_its_day_or_minute() {
        let day = 1_714_694_400;
        assert_eq!(parse_form_time_end("2024-05-03"), Some(day + DAY_SECS));
        assert_eq!(parse_form_time_end(" 2024-05-03 "), Some(day + DAY_SECS));
        assert_eq!(
            parse_form_time_end("2024-05-03T10:15"),
            Some(day + 36_900 + 60)
        );
        assert_eq!(parse_form_time_end("yesterday"), None);
    }

    #[test]
    fn days_and_midnights_are_utc() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(86_399), 0);
        assert_eq!(day_of(86_400), 1);
        assert_eq!(next_midnight(1_714_650_000), 1_714_694_400);
    }

    #[test]
    fn event_times_accept_text_seconds_and_millis() {
        let text = serde_json::json!("2024-05-03T00:00:00.250Z");
        assert_eq!(parse_event_time(&text), Some(1_714_694_400_250));
        assert_eq!(
            parse_event_time(&serde_json::json!(1_714_694_400)),
            Some(1_714_694_400_000)
        );
        assert_eq!(
            parse_event_time(&serde_json::json!(1_714_694_400_250_i64)),
            Some(1_714_694_400_250)
        );
        assert_eq!(parse_event_time(&serde_json::json!("yesterday")), None);
    }

    #[test]
    fn form_times_parse_dates_and_datetimes() {
        assert_eq!(parse_form_time("2024-05-03"), Some(1_714_694_400));
        assert_eq!(parse_form_time("2024-05-03T01:00"), Some(1_714_698_000));
        assert_eq!(parse_form_time(""), None);
    }
}
