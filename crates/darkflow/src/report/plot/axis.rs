//! The plot frame and the tick steps of its axes.

use maud::{Markup, html};

use super::{AXIS, c, svg};
use crate::detector::NS;

/// The plot area inside an SVG of `w` × `h` with the given margins.
pub(super) struct Frame {
    pub(super) w: f64,
    pub(super) h: f64,
    pub(super) left: f64,
    pub(super) right: f64,
    pub(super) top: f64,
    pub(super) bottom: f64,
}

impl Frame {
    /// x of a fraction of the plot width.
    pub(super) fn x(&self, f: f64) -> f64 {
        self.left + f.clamp(0.0, 1.0) * (self.w - self.left - self.right)
    }

    /// y of a fraction of the plot height (0 at the bottom).
    pub(super) fn y(&self, f: f64) -> f64 {
        self.h - self.bottom - f.clamp(0.0, 1.0) * (self.h - self.top - self.bottom)
    }

    /// The whole `<svg>` element of this frame around `body`.
    pub(super) fn svg(&self, title: &str, body: Markup) -> Markup {
        svg(self.w, self.h, title, body)
    }

    /// The plot area's left and bottom axis lines (drawn over the grid).
    pub(super) fn axes(&self) -> Markup {
        let d = format!(
            "M{},{}V{}H{}",
            c(self.x(0.0)),
            c(self.y(1.0)),
            c(self.y(0.0)),
            c(self.x(1.0))
        );
        html! { path d=(d) fill="none" stroke=(AXIS) {} }
    }
}

/// `from`, `from + step`, … up to `to` inclusive, stopping before `u64` overflows.
pub(super) fn ticks(from: u64, to: u64, step: u64) -> impl Iterator<Item = u64> {
    std::iter::successors(Some(from), move |t| t.checked_add(step)).take_while(move |&t| t <= to)
}

/// The smallest 1-2-5 step that covers `max` in at most `ticks` steps (at least 1).
pub(super) fn nice_step(max: u64, ticks: u64) -> u64 {
    let raw = u128::from(max.div_ceil(ticks.max(1)).max(1));
    let mut base: u128 = 1;
    loop {
        for f in [1, 2, 5] {
            if base * f >= raw {
                return u64::try_from(base * f).unwrap_or(u64::MAX);
            }
        }
        base *= 10;
    }
}

/// Number of decades of a log axis from 1 that reaches `max` (at least 1).
pub(super) fn decades(max: u64) -> u32 {
    let mut d = 1;
    let mut p: u128 = 10;
    while p < u128::from(max) {
        p *= 10;
        d += 1;
    }
    d
}

/// Label of 10^k: `1`, `10`, `100`, `1k`, … .
pub(super) fn decade_label(k: u32) -> String {
    const UNITS: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    let unit = UNITS.get((k / 3) as usize).copied().unwrap_or("?");
    format!("{}{unit}", 10u32.pow(k % 3))
}

/// Tick step for a time axis spanning `span` ns: about six ticks at round times.
pub(super) fn time_step(span: u64) -> u64 {
    const MS: u64 = 1_000_000;
    const STEPS: [u64; 30] = [
        MS,
        2 * MS,
        5 * MS,
        10 * MS,
        20 * MS,
        50 * MS,
        100 * MS,
        200 * MS,
        500 * MS,
        NS,
        2 * NS,
        5 * NS,
        10 * NS,
        15 * NS,
        30 * NS,
        60 * NS,
        120 * NS,
        300 * NS,
        600 * NS,
        900 * NS,
        1800 * NS,
        3600 * NS,
        7200 * NS,
        3 * 3600 * NS,
        6 * 3600 * NS,
        12 * 3600 * NS,
        86_400 * NS,
        2 * 86_400 * NS,
        7 * 86_400 * NS,
        30 * 86_400 * NS,
    ];
    STEPS
        .into_iter()
        .find(|&s| span / s <= 6)
        .unwrap_or_else(|| span.div_ceil(6).div_ceil(86_400 * NS).max(1) * 86_400 * NS)
}
