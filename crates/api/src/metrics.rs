//! The Prometheus text exposition format (version 0.0.4), written by every ashiato service
//! for its `GET /metrics`.
//!
//! A dozen lines of a stable format: [`Exposition`] writes each family's `# HELP` and
//! `# TYPE` once, then its samples, escaping help text and label values as the format
//! requires (backslash, double quote, newline), so no service formats metrics by hand.

use std::fmt::Write;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// A metric family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (restarts at 0 with the process).
    Counter,
    /// Goes up and down.
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// A metrics page being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// Whether `name` is a valid metric or label name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Escapes a label value: backslash, double quote and newline.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

impl Exposition {
    /// An empty page.
    pub fn new() -> Self {
        Exposition {
            out: String::with_capacity(4096),
        }
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. Names are the caller's constants;
    /// an invalid one is a programming error, caught in debug builds.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        debug_assert!(valid_name(name), "bad metric name {name:?}");
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
        self
    }

    /// One sample of the current family, with its labels (values escaped here).
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                debug_assert!(valid_name(k), "bad label name {k:?}");
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", format_value(value));
        self
    }

    /// A family with a single sample.
    pub fn single(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) -> &mut Self {
        self.family(name, kind, help).sample(name, labels, value)
    }

    /// The page.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Values as the format spells them: integers without a fraction, `NaN`, `+Inf`, `-Inf`.
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::{Exposition, Kind, escape_label, valid_name};

    #[test]
    fn families_samples_and_escaping() {
        let mut e = Exposition::new();
        e.single("a_total", Kind::Counter, "A thing.\nSecond line", &[], 3.0);
        e.family("b", Kind::Gauge, "B by reason.")
            .sample("b", &[("probe", "p\"1"), ("reason", "x\\y\nz")], 0.25)
            .sample("b", &[("probe", "p"), ("reason", "w")], f64::INFINITY);
        let page = e.finish();
        assert_eq!(
            page,
            "# HELP a_total A thing.\\nSecond line\n# TYPE a_total counter\na_total 3\n\
             # HELP b B by reason.\n# TYPE b gauge\n\
             b{probe=\"p\\\"1\",reason=\"x\\\\y\\nz\"} 0.25\nb{probe=\"p\",reason=\"w\"} +Inf\n"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("ashiato_probe_frames_seen_total"));
        assert!(valid_name(":x"));
        assert!(!valid_name("1x") && !valid_name("a-b") && !valid_name(""));
        assert_eq!(escape_label("plain"), "plain");
    }
}
