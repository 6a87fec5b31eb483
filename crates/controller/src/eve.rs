//! Suricata EVE alerts as trace triggers: posted to `/v1/eve`, or followed in a file.
//!
//! An alert record carries the packet that fired it when Suricata's `eve-log` has
//! `packet: yes` (`"packet"`: base64, `"packet_info": {"linktype": N}`). That packet is
//! digested with the federation key and traced; a record without one, or whose packet has
//! no digest (not IP, truncated), is counted and skipped with its reason. Records toward the
//! same victim (`dest_ip`) that arrive together — in one post, or within [`BATCH_WINDOW`] in
//! a followed file — become one trace of many packets: one incident.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ashiato_api::federation::{TracePacket, TraceStart};
use ashiato_digest::Key;
use ashiato_wire::LinkType;
use base64::Engine;
use serde::Serialize;

use crate::Controller;

/// Records toward one victim arriving within this window of the first become one trace.
pub const BATCH_WINDOW: Duration = Duration::from_millis(200);

/// Longest EVE line read from a file; longer ones are skipped whole.
pub const MAX_LINE: usize = 1 << 20;

/// Most skipped records listed in one answer (all are counted).
const MAX_LISTED: usize = 100;

/// One alert turned into a packet to trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EveTrigger {
    /// The alert's destination address: packets toward one victim are traced together.
    pub victim: String,
    /// The packet's digest and time.
    pub packet: TracePacket,
}

/// Turns one EVE line into a trigger, or says why it cannot be one.
pub fn parse_record(line: &str, key: &Key, uncertainty_ns: u64) -> Result<EveTrigger, String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let kind = v["event_type"].as_str().unwrap_or("");
    if kind != "alert" {
        return Err(format!("event_type {kind:?}, not alert"));
    }
    let Some(b64) = v["packet"].as_str() else {
        return Err("no packet field (enable `packet: yes` in eve-log's alert output)".into());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("packet is not base64: {e}"))?;
    let link = v["packet_info"]["linktype"]
        .as_u64()
        .and_then(|l| u32::try_from(l).ok())
        .map(LinkType::from_pcap)
        .unwrap_or(LinkType::Ethernet);
    let digest = key
        .digest_frame(link, &bytes)
        .map_err(|e| format!("packet has no digest: {e}"))?;
    let ts = v["timestamp"].as_str().ok_or("no timestamp")?;
    let time_ns = parse_eve_time(ts).ok_or_else(|| format!("timestamp {ts:?} not understood"))?;
    Ok(EveTrigger {
        victim: v["dest_ip"].as_str().unwrap_or("?").to_string(),
        packet: TracePacket {
            digest: digest.to_string(),
            time_ns,
            uncertainty_ns,
        },
    })
}

/// Turns one `ashiato darkflow --json --key-file F` line into a trigger: a `darkflow`
/// event's first-SYN `digest`, at its `first_syn` time, toward its `dst`.
pub fn parse_darkflow_line(line: &str, uncertainty_ns: u64) -> Result<EveTrigger, String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let kind = v["event"].as_str().unwrap_or("");
    if kind != "darkflow" {
        return Err(format!("event {kind:?}, not darkflow"));
    }
    let Some(digest) = v["digest"].as_str() else {
        return Err("no digest (run ashiato darkflow with --key-file, the federation key)".into());
    };
    if !crate::is_hex32(digest) {
        return Err(format!("digest {digest:?} is not 32 hex digits"));
    }
    let ts = v["first_syn"].as_str().ok_or("no first_syn")?;
    let time_ns = parse_eve_time(ts).ok_or_else(|| format!("first_syn {ts:?} not understood"))?;
    Ok(EveTrigger {
        victim: v["dst"].as_str().unwrap_or("?").to_string(),
        packet: TracePacket {
            digest: digest.to_ascii_lowercase(),
            time_ns,
            uncertainty_ns,
        },
    })
}

/// What a followed file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// Suricata EVE JSON alerts carrying their packet.
    Eve,
    /// `ashiato darkflow --json --key-file F` events.
    DarkFlow,
}

impl Feed {
    fn source(self) -> &'static str {
        match self {
            Feed::Eve => "eve",
            Feed::DarkFlow => "darkflow",
        }
    }
}

/// Suricata's `2026-11-30T07:17:50.123456+0000` (also `Z` and `+00:00`), as ns since 1970.
pub fn parse_eve_time(s: &str) -> Option<u64> {
    let (date, rest) = s.split_once('T')?;
    let mut d = date.split('-');
    let (y, m, day) = (
        d.next()?.parse::<i32>().ok()?,
        d.next()?.parse::<u8>().ok()?,
        d.next()?.parse::<u8>().ok()?,
    );
    let split = rest.find(['+', '-', 'Z'])?;
    let (clock, off) = rest.split_at(split);
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut t = hms.split(':');
    let (h, mi, sec) = (
        t.next()?.parse::<u64>().ok()?,
        t.next()?.parse::<u64>().ok()?,
        t.next()?.parse::<u64>().ok()?,
    );
    if h > 23 || mi > 59 || sec > 60 || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let frac_ns = if frac.is_empty() {
        0
    } else {
        frac.parse::<u64>().ok()? * 10u64.pow(9 - frac.len() as u32)
    };
    let off_s: i64 = if off == "Z" {
        0
    } else {
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let digits: String = off[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 {
            return None;
        }
        let hh: i64 = digits[..2].parse().ok()?;
        let mm: i64 = digits[2..].parse().ok()?;
        sign * (hh * 3600 + mm * 60)
    };
    let date = time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, day).ok()?;
    let days = i64::from(
        date.to_julian_day()
            - time::Date::from_calendar_date(1970, time::Month::January, 1)
                .ok()?
                .to_julian_day(),
    );
    let secs = days * 86_400 + (h * 3600 + mi * 60 + sec) as i64 - off_s;
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(frac_ns)
}

/// A record that was not traced.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line in the post.
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// One trace started from EVE records.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EveTrace {
    /// The victim address the packets were sent to.
    pub victim: String,
    /// The trace, or why it did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Packets in it.
    pub packets: usize,
    /// Origin domains found.
    pub origins: Vec<u32>,
    /// Why the trace did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer to `POST /v1/eve`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct EveSummary {
    /// Non-empty lines read.
    pub records: usize,
    /// Records traced.
    pub traced: usize,
    /// Records skipped (all counted; at most 100 listed in `skipped`).
    pub skipped_count: usize,
    /// Skipped records with their reasons.
    pub skipped: Vec<Skipped>,
    /// The traces run, one per victim.
    pub traces: Vec<EveTrace>,
}

/// Traces the alerts in `text` (EVE JSON lines): one trace per victim.
pub async fn handle_lines(c: &Arc<Controller>, text: &str) -> EveSummary {
    let mut sum = EveSummary::default();
    let unc = c.cfg.trace.uncertainty_ms * 1_000_000;
    let mut by_victim: BTreeMap<String, Vec<TracePacket>> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        sum.records += 1;
        match parse_record(line, &c.deps.key, unc) {
            Ok(t) => {
                c.metrics.eve("traced");
                by_victim.entry(t.victim).or_default().push(t.packet);
            }
            Err(reason) => {
                c.metrics.eve("skipped");
                sum.skipped_count += 1;
                if sum.skipped.len() < MAX_LISTED {
                    sum.skipped.push(Skipped {
                        line: i + 1,
                        reason,
                    });
                }
            }
        }
    }
    for (victim, packets) in by_victim {
        sum.traced += packets.len();
        sum.traces
            .extend(trace_batch(c, victim, packets, "eve").await);
    }
    sum
}

/// One incident per batch, split into traces of at most `max_packets_per_trace` packets.
async fn trace_batch(
    c: &Arc<Controller>,
    victim: String,
    mut packets: Vec<TracePacket>,
    source: &str,
) -> Vec<EveTrace> {
    packets.sort_by(|a, b| a.digest.cmp(&b.digest).then(a.time_ns.cmp(&b.time_ns)));
    packets.dedup_by(|a, b| a.digest == b.digest);
    let incident = crate::new_id();
    let mut out = Vec::new();
    for chunk in packets.chunks(c.cfg.limits.max_packets_per_trace) {
        let start = TraceStart {
            packets: chunk.to_vec(),
            mode: None,
            deadline_ms: None,
            incident: Some(incident.clone()),
            source: Some(source.into()),
            table_id: c.table_hex.clone(),
        };
        out.push(match c.trace(start).await {
            Ok(r) => EveTrace {
                victim: victim.clone(),
                trace_id: Some(r.trace_id),
                packets: chunk.len(),
                origins: r.graph.origins.iter().map(|o| o.domain).collect(),
                error: None,
            },
            Err(e) => {
                tracing::warn!(victim = %victim, error = %e, "EVE trace not run");
                EveTrace {
                    victim: victim.clone(),
                    trace_id: None,
                    packets: chunk.len(),
                    origins: Vec::new(),
                    error: Some(e.to_string()),
                }
            }
        });
    }
    out
}

/// Where a followed file stands.
struct Tail {
    path: PathBuf,
    file: Option<std::fs::File>,
    ino: u64,
    offset: u64,
    partial: Vec<u8>,
    /// Skipping the rest of an over-long line.
    skipping: bool,
}

impl Tail {
    /// Starts at the end of the file (old alerts were dealt with before).
    fn new(path: &Path) -> Tail {
        let mut t = Tail {
            path: path.to_owned(),
            file: None,
            ino: 0,
            offset: 0,
            partial: Vec::new(),
            skipping: false,
        };
        if t.reopen() {
            t.offset = t
                .file
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .map_or(0, |m| m.len());
        }
        t
    }

    fn reopen(&mut self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match std::fs::File::open(&self.path) {
            Ok(f) => {
                self.ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
                self.file = Some(f);
                self.offset = 0;
                self.partial.clear();
                self.skipping = false;
                true
            }
            Err(_) => {
                self.file = None;
                false
            }
        }
    }

    /// New complete lines since the last call (tail -F: a replaced or truncated file is
    /// read again from its start). Over-long lines are counted in `too_long`.
    fn poll(&mut self, too_long: &mut usize) -> Vec<String> {
        use std::os::unix::fs::MetadataExt;
        let on_disk = std::fs::metadata(&self.path).ok();
        match (&self.file, &on_disk) {
            (None, Some(_)) => {
                self.reopen();
            }
            (Some(_), Some(m)) if m.ino() != self.ino => {
                tracing::info!(file = %self.path.display(), "EVE file replaced (rotated); reading the new one");
                self.reopen();
            }
            (Some(_), Some(m)) if m.len() < self.offset => {
                tracing::info!(file = %self.path.display(), "EVE file truncated; reading from its start");
                self.reopen();
            }
            _ => {}
        }
        let Some(f) = &mut self.file else {
            return Vec::new();
        };
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let n = f.take(4 << 20).read_to_end(&mut buf).unwrap_or(0);
        self.offset += n as u64;
        let mut lines = Vec::new();
        for &b in &buf {
            if b == b'\n' {
                if !self.skipping {
                    lines.push(String::from_utf8_lossy(&self.partial).into_owned());
                }
                self.partial.clear();
                self.skipping = false;
            } else if !self.skipping {
                self.partial.push(b);
                if self.partial.len() > MAX_LINE {
                    *too_long += 1;
                    self.partial.clear();
                    self.skipping = true;
                }
            }
        }
        lines
    }
}

/// Follows an EVE file until `shutdown`: new alerts are batched per victim for
/// [`BATCH_WINDOW`] and traced. Malformed lines are counted and logged, never fatal.
pub async fn follow_file(
    c: Arc<Controller>,
    path: PathBuf,
    shutdown: impl std::future::Future<Output = ()>,
) {
    follow(c, path, Feed::Eve, shutdown).await
}

/// Follows a file of `feed` records until `shutdown`, like [`follow_file`].
pub async fn follow(
    c: Arc<Controller>,
    path: PathBuf,
    feed: Feed,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut tail = Tail::new(&path);
    let unc = c.cfg.trace.uncertainty_ms * 1_000_000;
    let mut pending: BTreeMap<String, (Instant, Vec<TracePacket>)> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        let mut too_long = 0;
        for line in tail.poll(&mut too_long) {
            if line.trim().is_empty() {
                continue;
            }
            let parsed = match feed {
                Feed::Eve => parse_record(&line, &c.deps.key, unc),
                Feed::DarkFlow => parse_darkflow_line(&line, unc),
            };
            match parsed {
                Ok(t) => {
                    c.metrics.eve("traced");
                    pending
                        .entry(t.victim)
                        .or_insert_with(|| (Instant::now(), Vec::new()))
                        .1
                        .push(t.packet);
                }
                Err(reason) => {
                    c.metrics.eve("skipped");
                    tracing::debug!(file = %path.display(), %reason, feed = feed.source(), "record skipped");
                }
            }
        }
        if too_long > 0 {
            c.metrics.eve("too_long");
            tracing::warn!(file = %path.display(), lines = too_long, "lines over {MAX_LINE} bytes skipped");
        }
        let due: Vec<String> = pending
            .iter()
            .filter(|(_, (t, _))| t.elapsed() >= BATCH_WINDOW)
            .map(|(v, _)| v.clone())
            .collect();
        for v in due {
            if let Some((_, packets)) = pending.remove(&v) {
                let c = c.clone();
                tokio::spawn(async move {
                    trace_batch(&c, v, packets, feed.source()).await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_eve_time, parse_record};
    use ashiato_digest::DEMO_KEY;
    use base64::Engine;

    #[test]
    fn suricata_times_are_read_with_their_offset() {
        assert_eq!(
            parse_eve_time("1970-01-01T00:00:01.5+0000"),
            Some(1_500_000_000)
        );
        assert_eq!(parse_eve_time("1970-01-01T01:00:00.000000+0100"), Some(0));
        assert_eq!(
            parse_eve_time("2009-06-01T12:00:00Z"),
            Some(1_243_857_600_000_000_000)
        );
        assert_eq!(parse_eve_time("2009-02-30T12:00:00Z"), None);
        assert_eq!(parse_eve_time("yesterday"), None);
    }

    #[test]
    fn a_darkflow_line_with_its_digest_becomes_a_trigger() {
        use super::parse_darkflow_line;
        let line = r#"{"complete":true,"digest":"00112233445566778899AABBCCDDEEFF","dport":80,"dst":"198.51.100.7","event":"darkflow","first_syn":"2010-07-04T20:24:20.006492000Z","sport":4242,"src":"192.0.2.9","ts_ns":1278275065006492000}"#;
        let t = parse_darkflow_line(line, 7).unwrap();
        assert_eq!(t.victim, "198.51.100.7");
        assert_eq!(t.packet.digest, "00112233445566778899aabbccddeeff");
        assert_eq!(t.packet.time_ns, 1_278_275_060_006_492_000);
        assert_eq!(t.packet.uncertainty_ns, 7);
        let no_key = line.replace(r#""digest":"00112233445566778899AABBCCDDEEFF","#, "");
        assert!(
            parse_darkflow_line(&no_key, 7)
                .unwrap_err()
                .contains("--key-file")
        );
        let closed = line.replace(r#""event":"darkflow""#, r#""event":"closed""#);
        assert!(
            parse_darkflow_line(&closed, 7)
                .unwrap_err()
                .contains("not darkflow")
        );
        let bad = line.replace("00112233445566778899AABBCCDDEEFF", "zz");
        assert!(parse_darkflow_line(&bad, 7).unwrap_err().contains("32 hex"));
        assert!(parse_darkflow_line("{", 7).is_err());
    }

    #[test]
    fn an_alert_with_its_packet_becomes_a_digest_and_others_say_why_not() {
        let frame = ashiato_wire::build::ipv4_tcp_frame(
            "10.1.2.3".parse().unwrap(),
            "192.0.2.1".parse().unwrap(),
            40000,
            445,
            1,
            0,
            ashiato_wire::packet::TcpFlags::SYN,
            7,
            &[],
        );
        let want = DEMO_KEY
            .digest_frame(ashiato_wire::LinkType::Ethernet, &frame)
            .unwrap()
            .to_string();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&frame);
        let line = format!(
            r#"{{"timestamp":"2026-11-30T07:17:50.000001+0000","event_type":"alert","dest_ip":"192.0.2.1","packet":"{b64}","packet_info":{{"linktype":1}}}}"#
        );
        let t = parse_record(&line, &DEMO_KEY, 5).unwrap();
        assert_eq!(t.packet.digest, want);
        assert_eq!(t.victim, "192.0.2.1");
        assert_eq!(t.packet.uncertainty_ns, 5);
        let e = parse_record(
            r#"{"event_type":"alert","timestamp":"2026-11-30T07:17:50+0000"}"#,
            &DEMO_KEY,
            0,
        )
        .unwrap_err();
        assert!(e.contains("no packet"), "{e}");
        let e = parse_record(r#"{"event_type":"flow"}"#, &DEMO_KEY, 0).unwrap_err();
        assert!(e.contains("not alert"), "{e}");
        let e = parse_record("{", &DEMO_KEY, 0).unwrap_err();
        assert!(e.contains("not JSON"), "{e}");
    }

    #[test]
    fn a_followed_file_is_read_like_tail_minus_f() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eve.json");
        std::fs::write(&path, "old line, dealt with before\n").unwrap();
        let mut t = super::Tail::new(&path);
        let mut long = 0;
        assert!(t.poll(&mut long).is_empty(), "starts at the end");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"one\ntw").unwrap();
        assert_eq!(t.poll(&mut long), vec!["one"]);
        f.write_all(b"o\n").unwrap();
        assert_eq!(
            t.poll(&mut long),
            vec!["two"],
            "a partial line waits for its end"
        );
        // Truncated in place: read again from the start.
        std::fs::write(&path, "").unwrap();
        assert!(t.poll(&mut long).is_empty());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"three\n")
            .unwrap();
        assert_eq!(t.poll(&mut long), vec!["three"]);
        // Rotated: renamed away, a new file in its place.
        std::fs::rename(&path, dir.path().join("eve.json.1")).unwrap();
        std::fs::write(&path, "four\n").unwrap();
        assert_eq!(t.poll(&mut long), vec!["four"]);
        // An over-long line is skipped whole and counted.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&vec![b'x'; super::MAX_LINE + 10]).unwrap();
        f.write_all(b"\nfive\n").unwrap();
        let mut got = Vec::new();
        for _ in 0..2 {
            got.extend(t.poll(&mut long));
        }
        assert_eq!(got, vec!["five"]);
        assert_eq!(long, 1);
    }
}
