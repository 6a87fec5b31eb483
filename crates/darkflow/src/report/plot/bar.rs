//! Horizontal bar chart.

use maud::{Markup, html};

use super::axis::{Frame, nice_step, ticks};
use super::{AXIS, BAR, GRID, PLOT_W, c, no_data, ratio};
use crate::report::format::{compact, thousands};

/// Horizontal bar chart of labelled counts, in the given order, values at the bar ends.
/// "no data" when every value is 0.
pub(in crate::report) fn bar_chart(title: &str, bars: &[(String, u64)]) -> Markup {
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0);
    if max == 0 {
        return no_data(title);
    }
    let row = 20.0;
    let longest = bars.iter().map(|b| b.0.chars().count()).max().unwrap_or(0);
    let f = Frame {
        w: PLOT_W,
        h: 12.0 + row * bars.len() as f64 + 26.0,
        left: (longest as f64 * 6.5 + 14.0).clamp(40.0, 220.0),
        right: 70.0,
        top: 12.0,
        bottom: 26.0,
    };
    let step = nice_step(max, 5);
    let top = max.div_ceil(step).saturating_mul(step);
    f.svg(
        title,
        html! {
            @for t in ticks(0, top, step) {
                @let x = c(f.x(ratio(t as f64, top as f64)));
                line x1=(x) y1=(c(f.y(1.0))) x2=(x) y2=(c(f.y(0.0) + 4.0)) stroke=(GRID) {}
                text x=(x) y=(c(f.y(0.0) + 16.0)) text-anchor="middle" fill=(AXIS) {
                    (compact(t))
                }
            }
            (f.axes())
            @for (i, (label, v)) in bars.iter().enumerate() {
                @let y = f.top + row * i as f64;
                @let w = f.x(ratio(*v as f64, top as f64)) - f.left;
                text x=(c(f.left - 6.0)) y=(c(y + 14.0)) text-anchor="end" { (label) }
                rect x=(c(f.left)) y=(c(y + 3.0)) width=(c(w)) height=(c(row - 6.0)) fill=(BAR) {}
                text x=(c(f.left + w + 4.0)) y=(c(y + 14.0)) fill=(AXIS) { (thousands(*v)) }
            }
        },
    )
}
