//! The plotting kit on its own: tick steps, size bounds, escaping.

use super::axis::nice_step;
use super::{CDF_BUCKETS, SERIES_POINTS, bar_chart, cdf_plot, series_plot};
use crate::detector::NS;
use crate::summary::Interval;

#[test]
fn nice_steps() {
    assert_eq!(nice_step(0, 5), 1);
    assert_eq!(nice_step(7, 5), 2);
    assert_eq!(nice_step(1234, 5), 500);
    assert_eq!(nice_step(u64::MAX, 5), 5_000_000_000_000_000_000);
}

#[test]
fn plots_stay_small() {
    let values: Vec<u64> = (0..100_000u64).map(|i| i * i % 1_000_003).collect();
    let svg = cdf_plot("t", &values, "x").into_string();
    let pts = svg
        .split("<polyline ")
        .nth(1)
        .unwrap()
        .split('>')
        .next()
        .unwrap()
        .matches(',')
        .count();
    assert!(pts <= 2 * CDF_BUCKETS + 4, "{pts} points");

    let intervals: Vec<Interval> = (0..10_000u64)
        .map(|i| Interval {
            start: i * NS,
            adds: i % 97,
            forwards: i % 13,
            deletes: i % 7,
            ..Interval::default()
        })
        .collect();
    let svg = series_plot("t", &intervals, NS).into_string();
    assert!(!svg.contains("NaN") && !svg.contains("inf"));
    let lines: Vec<&str> = svg.split("<polyline ").skip(1).collect();
    assert_eq!(lines.len(), 3);
    for l in lines {
        let points = l.split('>').next().unwrap();
        assert!(
            points.matches(',').count() <= 2 * SERIES_POINTS,
            "{}",
            l.len()
        );
    }
    // The largest value survives downsampling: 96 adds sets the axis to 100.
    assert!(svg.contains(">100</text>"));
}

/// Titles and labels may come from data; none becomes markup.
#[test]
fn text_from_data_is_escaped() {
    let bars = vec![("<b>\"x\"</b>&".to_owned(), 3)];
    let svg = bar_chart("<script>t</script>", &bars).into_string();
    assert!(!svg.contains("<b>") && !svg.contains("<script>"), "{svg}");
    assert!(
        svg.contains(">&lt;b&gt;&quot;x&quot;&lt;/b&gt;&amp;</text>"),
        "{svg}"
    );
    assert!(
        svg.contains("aria-label=\"&lt;script&gt;t&lt;/script&gt;\""),
        "{svg}"
    );
    let svg = cdf_plot("t", &[1, 2], "a < b").into_string();
    assert!(svg.contains(">a &lt; b</text>"), "{svg}");
}
