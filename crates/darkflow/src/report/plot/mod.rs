//! The SVG plotting kit: each plot is a function from numbers to an `<svg>` element, built
//! with the same escaping template as the page, so text taken from data (titles, axis and
//! bar labels) is escaped where it is written.
//!
//! * [`axis`] — the plot frame (margins, data fractions to coordinates) and tick steps for
//!   count, log and time axes.
//! * [`bar`] — horizontal bar chart of labelled counts.
//! * [`cdf`] — empirical CDF as a step line on a log x axis.
//! * [`series`] — several counts per time interval as step lines with a legend.
//!
//! Every plot has a bounded number of elements whatever the input size (at most
//! [`CDF_BUCKETS`] steps, [`SERIES_POINTS`] points per line, the bars it is given), and
//! says "no data" rather than drawing an empty frame.

mod axis;
mod bar;
mod cdf;
mod series;

use maud::{Markup, html};

pub(super) use bar::bar_chart;
pub(super) use cdf::cdf_plot;
pub(super) use series::series_plot;

/// Most x buckets of a CDF plot (each keeps its last point; a step line has twice as many
/// vertices).
pub(super) const CDF_BUCKETS: usize = 150;
/// Most points of a series plot; longer series are downsampled to the maximum per bucket.
pub(super) const SERIES_POINTS: usize = 150;
/// Width of every plot (SVG user units; the page scales them down on narrow screens).
const PLOT_W: f64 = 640.0;

// Series colours (adds, forwards, deletes) and the bar colour.
const COLOURS: [&str; 3] = ["#1f77b4", "#d62728", "#2ca02c"];
const BAR: &str = "#4c72b0";
const GRID: &str = "#e0e0e0";
const AXIS: &str = "#555";

/// A coordinate with one decimal.
fn c(v: f64) -> String {
    debug_assert!(v.is_finite(), "non-finite SVG coordinate");
    format!("{v:.1}")
}

/// `a / b`, or 0 when `b` is 0.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// An `<svg>` element of `w` × `h` with an accessible title around `body`.
fn svg(w: f64, h: f64, title: &str, body: Markup) -> Markup {
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(c(w)) height=(c(h))
            viewBox=(format!("0 0 {} {}", c(w), c(h))) role="img" aria-label=(title)
            font-family="sans-serif" font-size="11" {
            title { (title) }
            (body)
        }
    }
}

/// A small box saying "no data", in place of a plot.
fn no_data(title: &str) -> Markup {
    svg(
        PLOT_W,
        60.0,
        title,
        html! {
            rect x="0.5" y="0.5" width=(c(PLOT_W - 1.0)) height="59" fill="#fafafa"
                stroke=(GRID) {}
            text x=(c(PLOT_W / 2.0)) y="34" text-anchor="middle" fill="#888" font-size="13" {
                "no data"
            }
        },
    )
}

#[cfg(test)]
mod tests;
