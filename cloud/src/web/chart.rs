//! The usage trend chart as server-rendered SVG: one stacked bar per UTC day of
//! audit events, allowed below denied below held for approval (the bar's height is
//! the day's rows in the audit log). Each bar carries its numbers, and the day's
//! checks, as `data-*` attributes and a `<title>`, so a browser test (and a screen
//! reader) can read them.

use std::fmt::Write;

use crate::store::usage::DayUsage;
use crate::time_util::day_label;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 220.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 24.0;
const LEFT: f64 = 48.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the bars for `days` (oldest first). Each bar links to its day's events
/// in the audit log, narrowed further by `audit_filter` (an encoded query string
/// such as `agent=bot-1`, or empty).
pub fn usage_svg(days: &[DayUsage], audit_filter: &str) -> String {
    let filter = if audit_filter.is_empty() {
        String::new()
    } else {
        format!("{}&amp;", escape(audit_filter))
    };
    let max = days.iter().map(DayUsage::events).max().unwrap_or(0).max(1) as f64;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = (WIDTH - LEFT) / days.len().max(1) as f64;
    let bar_w = (slot * 0.8).max(1.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" id="usage-chart" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="Audit events per day: allowed, denied, held for approval">"#
    );
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{y}" x2="{WIDTH}" y2="{y}" stroke="#999"/><text x="{tx}" y="{ty}" font-size="11" text-anchor="end" fill="#555">{max}</text><text x="{tx}" y="{y}" font-size="11" text-anchor="end" fill="#555">0</text>"##,
        y = HEIGHT - BOTTOM,
        tx = LEFT - 6.0,
        ty = TOP + 10.0,
        max = max as i64,
    );
    for (i, d) in days.iter().enumerate() {
        let x = LEFT + i as f64 * slot + (slot - bar_w) / 2.0;
        let base = HEIGHT - BOTTOM;
        let h_allowed = d.allowed as f64 / max * plot_h;
        let h_denied = d.denied as f64 / max * plot_h;
        let h_approval = d.approval as f64 / max * plot_h;
        let label = escape(&day_label(d.day));
        let _ = write!(
            svg,
            r##"<a class="bar-link" href="/audit?{filter}from={label}&amp;to={label}"><g class="bar" data-day="{label}" data-checks="{checks}" data-allowed="{allowed}" data-denied="{denied}" data-approval="{approval}"><title>{label}: {events} events: {allowed} allowed, {denied} denied, {approval} held for approval; {checks} checks</title><rect class="allowed" x="{x:.1}" y="{ya:.1}" width="{bar_w:.1}" height="{h_allowed:.1}" fill="#3a8f5c"/><rect class="denied" x="{x:.1}" y="{yd:.1}" width="{bar_w:.1}" height="{h_denied:.1}" fill="#c8463d"/><rect class="approval" x="{x:.1}" y="{yp:.1}" width="{bar_w:.1}" height="{h_approval:.1}" fill="#d9a21b"/></g></a>"##,
            checks = d.checks,
            allowed = d.allowed,
            denied = d.denied,
            approval = d.approval,
            events = d.events(),
            ya = base - h_allowed,
            yd = base - h_allowed - h_denied,
            yp = base - h_allowed - h_denied - h_approval,
        );
    }
    // Axis titles: what the height counts, and what a bar is.
    let _ = write!(
        svg,
        r##"<text class="axis-title" x="12" y="{mid}" font-size="11" fill="#555" text-anchor="middle" transform="rotate(-90 12 {mid})">audit events</text><text class="axis-title" x="{cx}" y="{y}" font-size="11" fill="#555" text-anchor="middle">UTC day (click a bar for its events)</text>"##,
        mid = TOP + (HEIGHT - TOP - BOTTOM) / 2.0,
        cx = LEFT + (WIDTH - LEFT) / 2.0,
        y = HEIGHT - 6.0,
    );
    if let (Some(first), Some(last)) = (days.first(), days.last()) {
        let _ = write!(
            svg,
            r##"<text x="{LEFT}" y="{y}" font-size="11" fill="#555">{a}</text><text x="{WIDTH}" y="{y}" font-size="11" text-anchor="end" fill="#555">{b}</text>"##,
            y = HEIGHT - 6.0,
            a = escape(&day_label(first.day)),
            b = escape(&day_label(last.day)),
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_day_gets_a_bar_carrying_its_counts() {
        let days = vec![
            DayUsage {
                day: 19_846,
                checks: 10,
                allowed: 7,
                denied: 4,
                approval: 1,
            },
            DayUsage {
                day: 19_847,
                ..DayUsage::default()
            },
        ];
        let svg = usage_svg(&days, "agent=a&b");
        assert_eq!(svg.matches("class=\"bar\"").count(), 2);
        assert!(svg.contains(
            r#"<a class="bar-link" href="/audit?agent=a&amp;b&amp;from=2024-05-03&amp;to=2024-05-03">"#
        ));
        assert!(svg.contains(">audit events</text>") && svg.contains(">UTC day"));
        assert!(svg.contains(
            r#"data-day="2024-05-03" data-checks="10" data-allowed="7" data-denied="4" data-approval="1""#
        ));
        assert!(svg.contains(r#"data-checks="0""#));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
