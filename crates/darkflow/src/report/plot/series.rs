//! Counts per time interval as step lines.

use maud::{Markup, html};

use super::axis::{Frame, nice_step, ticks, time_step};
use super::{AXIS, COLOURS, GRID, PLOT_W, SERIES_POINTS, c, no_data, ratio};
use crate::report::format::{compact, time_label};
use crate::summary::Interval;

/// The delay-queue series (adds, forwards, deletes per interval) as three step lines with a
/// legend and time axis. Series longer than [`SERIES_POINTS`] show the maximum of each run
/// of consecutive intervals. "no data" without intervals.
pub(in crate::report) fn series_plot(
    title: &str,
    intervals: &[Interval],
    interval_ns: u64,
) -> Markup {
    if intervals.is_empty() {
        return no_data(title);
    }
    let width = interval_ns.max(1);
    let k = intervals.len().div_ceil(SERIES_POINTS);
    // (start, end, [adds, forwards, deletes]) per bucket of k intervals.
    let buckets: Vec<(u64, u64, [u64; 3])> = intervals
        .chunks(k)
        .map(|chunk| {
            let mut m = [0u64; 3];
            for i in chunk {
                m[0] = m[0].max(i.adds);
                m[1] = m[1].max(i.forwards);
                m[2] = m[2].max(i.deletes);
            }
            let start = chunk[0].start;
            (start, chunk[chunk.len() - 1].start.saturating_add(width), m)
        })
        .collect();
    let x0 = buckets[0].0;
    let x1 = buckets[buckets.len() - 1].1.max(x0.saturating_add(1));
    let span = x1 - x0;
    let xf = |t: u64| ratio(t.saturating_sub(x0) as f64, span as f64);
    let ymax = buckets.iter().flat_map(|b| b.2).max().unwrap_or(0);
    let ystep = nice_step(ymax, 5);
    let ytop = ymax.div_ceil(ystep).max(1).saturating_mul(ystep);

    let f = Frame {
        w: PLOT_W,
        h: 300.0,
        left: 56.0,
        right: 20.0,
        top: 30.0,
        bottom: 30.0,
    };
    // x ticks at round UTC times.
    let step = time_step(span);
    let lines = COLOURS.iter().enumerate().map(|(series, colour)| {
        let points: Vec<String> = buckets
            .iter()
            .flat_map(|&(a, b, m)| {
                let y = c(f.y(ratio(m[series] as f64, ytop as f64)));
                [
                    format!("{},{y}", c(f.x(xf(a)))),
                    format!("{},{y}", c(f.x(xf(b)))),
                ]
            })
            .collect();
        (points.join(" "), colour)
    });
    // Legend entries, left to right above the plot area.
    let names = ["adds (queued)", "forwards (DarkFlow)", "deletes (answered)"];
    let legend = names.iter().zip(COLOURS).scan(f.left, |x, (name, colour)| {
        let at = *x;
        *x += 28.0 + name.len() as f64 * 6.0;
        Some((at, name, colour))
    });
    f.svg(
        title,
        html! {
            @for t in ticks(0, ytop, ystep) {
                @let y = c(f.y(ratio(t as f64, ytop as f64)));
                line x1=(c(f.x(0.0))) y1=(y) x2=(c(f.x(1.0))) y2=(y) stroke=(GRID) {}
                text x=(c(f.x(0.0) - 6.0)) y=(c(f.y(ratio(t as f64, ytop as f64)) + 4.0))
                    text-anchor="end" fill=(AXIS) { (compact(t)) }
            }
            (f.axes())
            @for t in ticks(x0.div_ceil(step).saturating_mul(step), x1, step) {
                @let x = c(f.x(xf(t)));
                line x1=(x) y1=(c(f.y(1.0))) x2=(x) y2=(c(f.y(0.0) + 4.0)) stroke=(GRID) {}
                text x=(x) y=(c(f.y(0.0) + 16.0)) text-anchor="middle" fill=(AXIS) {
                    (time_label(t, step, span))
                }
            }
            @for (points, colour) in lines {
                polyline points=(points) fill="none" stroke=(colour) stroke-width="1.5" {}
            }
            @for (x, name, colour) in legend {
                line x1=(c(x)) y1="14" x2=(c(x + 18.0)) y2="14" stroke=(colour)
                    stroke-width="3" {}
                text x=(c(x + 22.0)) y="18" { (name) }
            }
        },
    )
}
