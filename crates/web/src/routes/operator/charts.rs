//! `GET /operator/charts/{name}.svg`: the console's charts, drawn on the server as SVG with plotters from
//! one aggregate query over the audit trail each. Every series has its own marker shape and line dash
//! and is named in the legend, so the charts read without colour.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Duration, DurationRound, Utc};
use plotters::prelude::*;
use shared::db::operator::{self, Bucket, CaptureLatency};

use super::access;
use crate::errors::WebError;
use crate::state::AppState;

/// The charts the console shows: (file name, title, hours covered).
pub const CHARTS: [(&str, &str, i64); 5] = [
    (
        "exchanges-24h",
        "Exchanges per hour by outcome, last 24 hours",
        24,
    ),
    (
        "exchanges-7d",
        "Exchanges per hour by outcome, last 7 days",
        168,
    ),
    (
        "work-24h",
        "Work done and failed per hour, last 24 hours",
        24,
    ),
    ("states-7d", "Tenants per state, last 7 days", 168),
    ("latency-7d", "Capture to first ticket, last 7 days", 168),
];

/// Okabe–Ito colours (distinguishable with the common colour-vision deficiencies), used with markers.
const COLOURS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

const WIDTH: u32 = 720;
const HEIGHT: u32 = 300;

/// One line of a chart: its name and its points (hours from now, value).
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A chart's data, ready to draw, with a text summary for its `alt`.
pub struct ChartData {
    pub title: &'static str,
    pub hours: i64,
    pub y_label: &'static str,
    pub series: Vec<Series>,
    /// Points only (no lines): the latency scatter.
    pub scatter: bool,
}

impl ChartData {
    /// What the chart says, in words (for screen readers and the figure caption).
    pub fn summary(&self) -> String {
        if self.series.iter().all(|s| s.points.is_empty()) {
            return "No events in this period.".to_owned();
        }
        let parts: Vec<String> = self
            .series
            .iter()
            .map(|s| {
                if self.scatter {
                    let n = s.points.len();
                    let max = s.points.iter().map(|p| p.1).fold(0.0, f64::max);
                    format!("{n} captures, slowest {max:.0} s")
                } else if self.y_label == "tenants" {
                    let last = s.points.last().map_or(0.0, |p| p.1);
                    format!("{}: {last:.0} now", s.name)
                } else {
                    let total: f64 = s.points.iter().map(|p| p.1).sum();
                    format!("{}: {total:.0}", s.name)
                }
            })
            .collect();
        format!("{}.", parts.join("; "))
    }
}

/// The names in `order`, then those of the other series in `buckets` as they first appear.
fn series_names(buckets: &[Bucket], order: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = order.iter().map(|s| (*s).to_owned()).collect();
    for bucket in buckets {
        if !names.contains(&bucket.series) {
            names.push(bucket.series.clone());
        }
    }
    names
}

/// Counts per hour of each series over the last `hours`, with zero for an hour without events.
fn per_hour(buckets: &[Bucket], order: &[&str], hours: i64, now: DateTime<Utc>) -> Vec<Series> {
    let this_hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    series_names(buckets, order)
        .into_iter()
        .map(|name| {
            let points = (0..hours)
                .map(|back| {
                    let at = this_hour - Duration::hours(back);
                    let count = buckets
                        .iter()
                        .find(|b| b.series == name && b.at == at)
                        .map_or(0, |b| b.count);
                    (-(back as f64), count as f64)
                })
                .rev()
                .collect();
            Series { name, points }
        })
        .collect()
}

/// Running totals per state, carried forward hour by hour over the last `hours`.
fn running_totals(buckets: &[Bucket], hours: i64, now: DateTime<Utc>) -> Vec<Series> {
    let this_hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    series_names(buckets, &[])
        .into_iter()
        .map(|name| {
            let points = (0..hours)
                .rev()
                .map(|back| {
                    let at = this_hour - Duration::hours(back);
                    let value = buckets
                        .iter()
                        .rfind(|b| b.series == name && b.at <= at)
                        .map_or(0, |b| b.count);
                    (-(back as f64), value as f64)
                })
                .collect();
            Series { name, points }
        })
        .filter(|s| s.points.iter().any(|p| p.1 > 0.0))
        .collect()
}

fn latency_points(rows: &[CaptureLatency], now: DateTime<Utc>) -> Vec<Series> {
    let points = rows
        .iter()
        .filter_map(|row| {
            row.seconds.map(|seconds| {
                let hours_ago = (now - row.captured_at).num_seconds() as f64 / 3600.0;
                (-hours_ago, seconds.max(0.0))
            })
        })
        .collect();
    vec![Series {
        name: "capture to first ticket".to_owned(),
        points,
    }]
}

/// Reads a chart's data: one query.
pub async fn load(
    conn: &mut diesel_async::AsyncPgConnection,
    name: &str,
) -> Result<Option<ChartData>, WebError> {
    let Some(&(_, title, hours)) = CHARTS.iter().find(|(n, _, _)| *n == name) else {
        return Ok(None);
    };
    let now = Utc::now();
    let since = now.duration_trunc(Duration::hours(1)).unwrap_or(now) - Duration::hours(hours - 1);
    let (series, y_label, scatter) = match name {
        "exchanges-24h" | "exchanges-7d" => {
            let buckets = operator::exchanges_per_hour(conn, since).await?;
            (
                per_hour(
                    &buckets,
                    &["obtained", "transient", "suspect", "refused"],
                    hours,
                    now,
                ),
                "exchanges",
                false,
            )
        }
        "work-24h" => {
            let buckets = operator::work_per_hour(conn, since).await?;
            (
                per_hour(&buckets, &["done", "failed"], hours, now),
                "requests",
                false,
            )
        }
        "states-7d" => {
            let buckets = operator::tenants_per_state(conn, since).await?;
            (running_totals(&buckets, hours, now), "tenants", false)
        }
        _ => {
            let rows = operator::capture_latency(conn, since).await?;
            (latency_points(&rows, now), "seconds", true)
        }
    };
    Ok(Some(ChartData {
        title,
        hours,
        y_label,
        series,
        scatter,
    }))
}

/// Draws a chart as an SVG document.
pub fn render(chart: &ChartData) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let max_y = chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max);
        let top = if max_y <= 0.0 { 1.0 } else { max_y * 1.15 };
        let mut ctx = ChartBuilder::on(&root)
            .caption(chart.title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(-(chart.hours as f64)..0.5, 0.0..top)
            .map_err(|e| e.to_string())?;
        let days = chart.hours > 48;
        ctx.configure_mesh()
            .x_labels(if days { 8 } else { 13 })
            .x_label_formatter(&|x| {
                if *x >= -0.01 {
                    "now".to_owned()
                } else if days {
                    format!("{:.0} d ago", -x / 24.0)
                } else {
                    format!("{:.0} h ago", -x)
                }
            })
            .y_desc(chart.y_label)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .light_line_style(RGBColor(235, 238, 241))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, series) in chart.series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let style = ShapeStyle::from(&colour).stroke_width(2);
            if !chart.scatter {
                // Solid, dashed and dotted lines in turn, besides the colour and the marker.
                let drawn = match i % 3 {
                    0 => ctx.draw_series(LineSeries::new(series.points.clone(), style)),
                    1 => ctx.draw_series(DashedLineSeries::new(series.points.clone(), 8, 4, style)),
                    _ => ctx.draw_series(DashedLineSeries::new(series.points.clone(), 2, 4, style)),
                };
                drawn.map_err(|e| e.to_string())?;
            }
            // Markers where there is something to mark (every point of a scatter).
            let marked: Vec<(f64, f64)> = series
                .points
                .iter()
                .copied()
                .filter(|p| chart.scatter || p.1 > 0.0)
                .collect();
            let annotation = ctx
                .draw_series(marked.into_iter().map(|p| {
                    EmptyElement::at(p)
                        + Polygon::new(outline(i), ShapeStyle::from(&colour).filled())
                }))
                .map_err(|e| e.to_string())?;
            annotation.label(series.name.clone()).legend(move |(x, y)| {
                Polygon::new(
                    outline(i)
                        .into_iter()
                        .map(|(dx, dy)| (x + 8 + dx, y + dy))
                        .collect::<Vec<_>>(),
                    ShapeStyle::from(&colour).filled(),
                )
            });
        }
        if !chart.series.is_empty() {
            ctx.configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// The outline of series `i`'s marker around (0, 0): octagon (a circle), triangle, diamond, square, in turn.
fn outline(i: usize) -> Vec<(i32, i32)> {
    match i % 4 {
        0 => vec![
            (-2, -5),
            (2, -5),
            (5, -2),
            (5, 2),
            (2, 5),
            (-2, 5),
            (-5, 2),
            (-5, -2),
        ],
        1 => vec![(0, -6), (6, 5), (-6, 5)],
        2 => vec![(0, -6), (6, 0), (0, 6), (-6, 0)],
        _ => vec![(-4, -4), (4, -4), (4, 4), (-4, 4)],
    }
}

/// The chart's title and what it says in words as the SVG's `<title>` and `<desc>`, for assistive technology
/// that opens the image itself.
fn with_description(svg: &str, title: &str, summary: &str) -> String {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    match svg
        .find("<svg")
        .and_then(|at| svg[at..].find('>').map(|end| at + end + 1))
    {
        Some(end) => format!(
            "{}<title>{}</title><desc>{}</desc>{}",
            &svg[..end],
            escape(title),
            escape(summary),
            &svg[end..]
        ),
        None => svg.to_owned(),
    }
}

/// `GET /operator/charts/{name}.svg`.
pub async fn get(
    _operator: access::SignedInOperator,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let name = name.into_inner();
    let Some(name) = name.strip_suffix(".svg") else {
        return Err(access::not_found());
    };
    let mut conn = state.conn().await?;
    let Some(chart) = load(&mut conn, name).await? else {
        return Err(access::not_found());
    };
    let svg =
        render(&chart).map_err(|e| WebError::Unexpected(anyhow::anyhow!("drawing {name}: {e}")))?;
    let svg = with_description(&svg, chart.title, &chart.summary());
    Ok(HttpResponse::Ok().content_type("image/svg+xml").body(svg))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_named_and_marked() {
        let chart = ChartData {
            title: "Exchanges per hour by outcome, last 24 hours",
            hours: 24,
            y_label: "exchanges",
            series: vec![
                Series {
                    name: "obtained".into(),
                    points: vec![(-2.0, 3.0), (-1.0, 5.0), (0.0, 0.0)],
                },
                Series {
                    name: "transient".into(),
                    points: vec![(-2.0, 1.0), (-1.0, 0.0), (0.0, 2.0)],
                },
            ],
            scatter: false,
        };
        let svg = render(&chart).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("obtained") && svg.contains("transient"));
        // Markers: an octagon for the first series, a triangle for the second, in the chart and the legend.
        assert!(svg.matches("<polygon").count() >= 6, "{svg}");
        assert_eq!(chart.summary(), "obtained: 8; transient: 3.");
        let described = with_description(&svg, chart.title, &chart.summary());
        let after_root = &described[described.find("<svg").unwrap()..];
        let root_end = after_root.find('>').unwrap() + 1;
        assert!(after_root[root_end..].starts_with(
            "<title>Exchanges per hour by outcome, last 24 hours</title><desc>obtained: 8; transient: 3.</desc>"
        ));
    }

    #[test]
    fn empty_hours_count_zero() {
        let now = Utc::now();
        let hour = now.duration_trunc(Duration::hours(1)).unwrap();
        let buckets = vec![Bucket {
            at: hour - Duration::hours(1),
            series: "done".into(),
            count: 4,
        }];
        let series = per_hour(&buckets, &["done", "failed"], 3, now);
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].points, vec![(-2.0, 0.0), (-1.0, 4.0), (0.0, 0.0)]);
        assert!(series[1].points.iter().all(|p| p.1 == 0.0));
    }
}
