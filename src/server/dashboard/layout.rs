//! The page shell every dashboard page shares (skip link, banner with navigation and the
//! signed-in person, `main` landmark, footer) and small rendering helpers: percentages,
//! points, status labels and badges, score meters and the server-side SVG sparkline.
//!
//! Everything is rendered with maud, which escapes every interpolated string: text from
//! templates, catalogs, payloads and people is never markup.

use chrono::{DateTime, SecondsFormat, Utc};
use maud::{DOCTYPE, Markup, html};

use crate::evaluation::{ImplementationStatus, ScoreSummary, TestStatus};
use crate::model::report::TestingSource;
use crate::server::dashboard::session::Session;

/// The navigation entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// The overview.
    Overview,
    /// Assessments and their pages.
    Assessments,
    /// Alerts.
    Alerts,
    /// Sign-in (no navigation).
    None,
}

/// A whole page: `title` (also the `h1`'s text is up to the page), the active navigation entry,
/// the signed-in session (navigation and sign-out are shown only with one) and the content.
pub fn page(title: &str, nav: Nav, session: Option<&Session>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · postured" }
                link rel="stylesheet" href="/static/dashboard.css";
                link rel="icon" href="data:,";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.banner {
                    span.brand { "postured" }
                    @if let Some(s) = session {
                        nav aria-label="Main" {
                            ul {
                                li { a href="/" aria-current=[(nav == Nav::Overview).then_some("page")] { "Overview" } }
                                li { a href="/assessments" aria-current=[(nav == Nav::Assessments).then_some("page")] { "Assessments" } }
                                li { a href="/alerts" aria-current=[(nav == Nav::Alerts).then_some("page")] { "Alerts" } }
                            }
                        }
                        div.who {
                            span { (s.principal.subject) " (" (s.principal.role.as_str()) ")" }
                            form method="post" action="/sign-out" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" { (content) }
                footer { p { "postured · continuous compliance assessment" } }
            }
        }
    }
}

/// `0.725` -> `72.5%`.
pub fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// Points with at most one decimal (`12`, `7.5`).
pub fn points(p: f64) -> String {
    if (p - p.round()).abs() < 0.05 {
        format!("{:.0}", p)
    } else {
        format!("{p:.1}")
    }
}

/// `12 / 40 points`.
pub fn points_of(s: &ScoreSummary) -> String {
    format!(
        "{} / {} points",
        points(s.points_achieved),
        points(s.points_possible)
    )
}

/// A person's words for a test status.
pub fn test_status_label(s: TestStatus) -> &'static str {
    match s {
        TestStatus::None => "None",
        TestStatus::NotAssessed => "Not assessed",
        TestStatus::InProgress => "In progress",
        TestStatus::ToBeDetected => "To be detected",
        TestStatus::CouldNotBeDetected => "Could not be detected",
        TestStatus::PartiallyTested => "Partially tested",
        TestStatus::Passed => "Passed",
        TestStatus::FailedLowRisk => "Failed (low risk)",
        TestStatus::FailedMediumRisk => "Failed (medium risk)",
        TestStatus::FailedHighRisk => "Failed (high risk)",
        TestStatus::OutOfScope => "Out of scope",
    }
}

/// Every implementation status, in order.
pub const IMPLEMENTATION_STATUSES: [ImplementationStatus; 5] = [
    ImplementationStatus::NotImplemented,
    ImplementationStatus::Planned,
    ImplementationStatus::Implemented,
    ImplementationStatus::AlternativeImplementation,
    ImplementationStatus::OutOfScope,
];

/// A person's words for an implementation status.
pub fn implementation_label(s: ImplementationStatus) -> &'static str {
    match s {
        ImplementationStatus::NotImplemented => "Not implemented",
        ImplementationStatus::Planned => "Planned",
        ImplementationStatus::Implemented => "Implemented",
        ImplementationStatus::AlternativeImplementation => "Alternative implementation",
        ImplementationStatus::OutOfScope => "Out of scope",
    }
}

/// Every testing source, in order.
pub const TESTING_SOURCES: [TestingSource; 3] = [
    TestingSource::Automatic,
    TestingSource::Manual,
    TestingSource::Parent,
];

/// A testing source's stored name.
pub fn source_name(s: TestingSource) -> &'static str {
    match s {
        TestingSource::Automatic => "automatic",
        TestingSource::Manual => "manual",
        TestingSource::Parent => "parent",
    }
}

/// A test status as a badge (its colour class follows passed / failed / other; the text says
/// it, so colour is never the only cue).
pub fn status_badge(s: TestStatus) -> Markup {
    let class = if s == TestStatus::Passed {
        "badge ok"
    } else if s.is_failed() {
        "badge bad"
    } else {
        "badge"
    };
    html! { span class=(class) { (test_status_label(s)) } }
}

/// A score as a labelled meter with its percentage (`label` names the meter for assistive
/// technology).
pub fn meter(label: &str, s: &ScoreSummary) -> Markup {
    html! {
        meter min="0" max="1" low="0.5" high="0.8" optimum="1" value=(format!("{:.4}", s.ratio))
            aria-label=(format!("{label}: {}", percent(s.ratio))) {}
    }
}

/// An instant as `2026-11-29 09:30 UTC`, in a `time` element.
pub fn time(t: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(t.to_rfc3339_opts(SecondsFormat::Secs, true)) {
            (t.format("%Y-%m-%d %H:%M UTC").to_string())
        }
    }
}

/// Most points a sparkline draws (the newest are kept).
pub const MAX_SPARKLINE_POINTS: usize = 200;

/// A score's trend as an inline SVG sparkline, rendered on the server: `series` holds
/// `(instant, ratio)` oldest first (a step function: each value holds until the next). The
/// SVG has `role="img"` and an accessible name saying the first and last values; with fewer
/// than two points it is a sentence instead.
pub fn sparkline(label: &str, series: &[(DateTime<Utc>, f64)], now: DateTime<Utc>) -> Markup {
    let series = &series[series.len().saturating_sub(MAX_SPARKLINE_POINTS)..];
    let (Some(first), Some(last)) = (series.first(), series.last()) else {
        return html! { p.muted { "No stored history yet." } };
    };
    let description = format!(
        "{label}: {} on {} to {} now ({} changes)",
        percent(first.1),
        first.0.format("%Y-%m-%d"),
        percent(last.1),
        series.len().saturating_sub(1)
    );
    let (w, h, pad) = (240.0_f64, 48.0_f64, 3.0_f64);
    let start = first.0;
    let end = now.max(last.0);
    let span = (end - start).num_seconds().max(1) as f64;
    let x = |t: DateTime<Utc>| pad + (t - start).num_seconds() as f64 / span * (w - 2.0 * pad);
    let y = |r: f64| pad + (1.0 - r.clamp(0.0, 1.0)) * (h - 2.0 * pad);
    let mut d = format!("M{:.1},{:.1}", x(first.0), y(first.1));
    for pair in series.windows(2) {
        d.push_str(&format!(" H{:.1} V{:.1}", x(pair[1].0), y(pair[1].1)));
    }
    d.push_str(&format!(" H{:.1}", x(end)));
    html! {
        svg.sparkline role="img" aria-label=(description) viewBox=(format!("0 0 {w} {h}"))
            width=(w) height=(h) xmlns="http://www.w3.org/2000/svg" {
            title { (description) }
            line x1=(pad) x2=(w - pad) y1=(y(1.0)) y2=(y(1.0)) class="grid" {}
            line x1=(pad) x2=(w - pad) y1=(y(0.0)) y2=(y(0.0)) class="grid" {}
            path d=(d) class="trend" {}
            circle cx=(format!("{:.1}", x(end))) cy=(format!("{:.1}", y(last.1))) r="2.5" class="dot" {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_sparklines() {
        assert_eq!(percent(0.725), "72.5%");
        assert_eq!(points(12.0), "12");
        assert_eq!(points(7.5), "7.5");
        let t0 = DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let t1 = t0 + chrono::Duration::days(1);
        let svg = sparkline(
            "Score",
            &[(t0, 0.5), (t1, 1.0)],
            t1 + chrono::Duration::days(1),
        )
        .into_string();
        assert!(svg.contains("role=\"img\""), "{svg}");
        assert!(
            svg.contains("Score: 50.0% on 2026-11-01 to 100.0% now (1 changes)"),
            "{svg}"
        );
        // Step path: from (x0, 50%) horizontally to day 1, up to 100%, on to now.
        assert!(svg.contains("d=\"M3.0,24.0 H120.0 V3.0 H237.0\""), "{svg}");
        assert!(
            sparkline("Score", &[], t0)
                .into_string()
                .contains("No stored history")
        );
    }
}
