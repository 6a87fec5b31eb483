//! Empirical CDF on a log x axis.

use maud::{Markup, html};

use super::axis::{Frame, decade_label, decades};
use super::{AXIS, CDF_BUCKETS, COLOURS, GRID, PLOT_W, c, no_data};

/// Empirical CDF of `values` as a step line: log-scale x from 1 (values of 0 sit at 1),
/// y from 0 to 100 %. At most [`CDF_BUCKETS`] steps; "no data" when `values` is empty.
pub(in crate::report) fn cdf_plot(title: &str, values: &[u64], x_label: &str) -> Markup {
    if values.is_empty() {
        return no_data(title);
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let n = v.len() as f64;
    let d = decades(v[v.len() - 1].max(1));
    let xpos = |x: u64| (x.max(1) as f64).log10() / f64::from(d);
    // (x, y) fractions of each distinct value, the last of each x bucket.
    let mut pts: Vec<(f64, f64)> = Vec::new();
    let mut last_bucket = usize::MAX;
    for (i, &x) in v.iter().enumerate() {
        if v.get(i + 1) == Some(&x) {
            continue;
        }
        let p = (xpos(x), (i + 1) as f64 / n);
        let bucket = ((p.0 * CDF_BUCKETS as f64) as usize).min(CDF_BUCKETS);
        match pts.last_mut() {
            Some(last) if bucket == last_bucket => *last = p,
            _ => pts.push(p),
        }
        last_bucket = bucket;
    }
    let f = Frame {
        w: PLOT_W,
        h: 300.0,
        left: 52.0,
        right: 20.0,
        top: 14.0,
        bottom: 42.0,
    };
    // The step line.
    let mut line = vec![(0.0, 0.0)];
    let mut prev_y = 0.0;
    for &(x, y) in &pts {
        line.push((x, prev_y));
        line.push((x, y));
        prev_y = y;
    }
    line.push((1.0, prev_y));
    let points: Vec<String> = line
        .iter()
        .map(|&(x, y)| format!("{},{}", c(f.x(x)), c(f.y(y))))
        .collect();
    // x grid: decades, labelled at most ten times.
    let every = d.div_ceil(10);
    f.svg(
        title,
        html! {
            // y grid: 0–100 %.
            @for k in 0..=5 {
                @let y = c(f.y(f64::from(k) / 5.0));
                line x1=(c(f.x(0.0))) y1=(y) x2=(c(f.x(1.0))) y2=(y) stroke=(GRID) {}
                text x=(c(f.x(0.0) - 6.0)) y=(c(f.y(f64::from(k) / 5.0) + 4.0))
                    text-anchor="end" fill=(AXIS) { (k * 20) " %" }
            }
            @for k in 0..=d {
                @let x = c(f.x(f64::from(k) / f64::from(d)));
                line x1=(x) y1=(c(f.y(1.0))) x2=(x) y2=(c(f.y(0.0) + 4.0)) stroke=(GRID) {}
                @if k.is_multiple_of(every) {
                    text x=(x) y=(c(f.y(0.0) + 16.0)) text-anchor="middle" fill=(AXIS) {
                        (decade_label(k))
                    }
                }
            }
            text x=(c(f.x(0.5))) y=(c(f.h - 6.0)) text-anchor="middle" fill=(AXIS) {
                (x_label)
            }
            (f.axes())
            polyline points=(points.join(" ")) fill="none" stroke=(COLOURS[0])
                stroke-width="1.8" {}
        },
    )
}
