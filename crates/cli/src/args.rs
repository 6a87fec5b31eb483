//! Command-line flags. Subcommands share flag names (`--json`, `--pcap`, `--iface`,
//! `--listen`, `--key-file`, `--tls-dir`). Each value is parsed into its type here, by the
//! parsers of [`crate::units`], so that a bad value is a usage error (exit 2, clap's message
//! naming the flag) before any work starts; checks that involve several flags (retention at
//! least one epoch, a bit rate with its packet size) are left to the command modules.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Trace network attacks back to where they really come from.
#[derive(Parser, Debug)]
#[command(name = "ashiato", version, about, long_about = None)]
pub struct Cli {
    /// Logs as JSON lines on stderr.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// More logging (-v info, -vv debug); ASHIATO_LOG overrides (tracing filter syntax).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the digest of every packet of a capture file.
    Digest(DigestArgs),
    /// Federation keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Certificates for mutual TLS between services.
    #[command(subcommand)]
    Pki(PkiCommand),
    /// The packet-digest probe: run it, query it, size it, measure it.
    #[command(subcommand)]
    Probe(Box<ProbeCommand>),
    /// Run a probe over a bundled capture with mutual TLS and answer demo queries.
    Demo(DemoArgs),
    /// DarkFlow: TCP SYNs that get no SYN/ACK or RST within T, from captures or live traffic.
    Darkflow(Box<DarkflowCli>),
    /// A federation of real controllers and probes in this process: attack, detect, trace,
    /// and score the attack tree against the truth.
    Lab(Box<LabArgs>),
    /// Run this domain's traceback controller (`--config domain.toml`).
    Controller(ControllerArgs),
    /// Ask a domain controller to trace packets back to where they came from.
    Trace(Box<TraceArgs>),
    /// The federation CA: init it, issue per-domain controller and operator certificates.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Federation planning: what each domain's file must say about the others.
    #[command(subcommand)]
    Federation(FederationCommand),
    /// Audit a host's captured history against victims' claims and the five bot features
    /// (exit 3 when a claim matched: this host took part in an attack).
    Hostcheck(HostcheckArgs),
    /// Write a generated day of host history and a claim list (the audit-speed figure).
    Hostsynth(HostsynthArgs),
    /// The host-tracing center: claims with IDS evidence, the signed claim list, bot reports,
    /// the C&C ranking (mutual TLS).
    Center(Box<CenterArgs>),
    /// File claims at the center from Suricata EVE alerts or a capture's SYN floods (shows
    /// them and asks first).
    Report(ReportArgs),
    /// Write this host's socket-to-process snapshot (the `hostcheck --procs` format).
    Procsnap(ProcsnapArgs),
    /// The host agent: bounded traffic history with process attribution, claim polling, audit, consented reports (exit 3 with --once when a claim matched).
    Agent(Box<crate::agent_cmd::AgentArgs>),
    /// Passive TCP fingerprints (p0f 3 signatures) of every SYN and SYN/ACK in a capture.
    Fingerprint(FingerprintArgs),
    /// Stepping stones: is a source the attacker or a relay? (offline: Tp and Fp from a capture)
    Stepstone(Box<StepstoneArgs>),
    /// Host-based bot and C&C tracing end to end in network namespaces (root): bots on an
    /// ngircd C&C, a flood, the victim's claim, the hosts' audits and the center's ranking.
    Hostlab(Box<crate::hostlab::HostlabArgs>),
}

/// `ashiato procsnap`
#[derive(Args, Debug)]
pub struct ProcsnapArgs {
    /// Where to write (standard output without it).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `ashiato report`
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The center, host:port.
    #[arg(long)]
    pub center: String,
    /// Suricata EVE JSON lines with the alerts (DNS records of EVE version 2 or 3).
    #[arg(long, required_unless_present = "pcap", conflicts_with = "pcap")]
    pub eve: Option<PathBuf>,
    /// Instead of --eve: the victim's capture (pcap or pcapng), searched for TCP SYN floods;
    /// each flooded second becomes an EVE alert of ashiato's detector.
    #[arg(long)]
    pub pcap: Option<PathBuf>,
    /// With --pcap: SYNs to one address and port within one second that make a flood.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub min_syns_per_sec: u64,
    /// Only the claim for this attacked address.
    #[arg(long)]
    pub victim: Option<std::net::IpAddr>,
    /// The attacked port, when the alerts disagree or lack one.
    #[arg(long)]
    pub port: Option<u16>,
    /// The victim's name, informational.
    #[arg(long)]
    pub fqdn: Option<String>,
    /// Claim ids are PREFIX-1, PREFIX-2, ...
    #[arg(long, default_value = "claim")]
    pub id_prefix: String,
    /// Directory made by `ashiato pki init`.
    #[arg(long, env = "ASHIATO_TLS_DIR")]
    pub tls_dir: PathBuf,
    /// Which identity in --tls-dir to present.
    #[arg(long, default_value = "victim")]
    pub name: String,
    /// Send without asking (automation).
    #[arg(long)]
    pub yes: bool,
    /// Show the claims and stop.
    #[arg(long)]
    pub dry_run: bool,
}

/// `ashiato center`
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CenterArgs {
    /// Offline work on a center's store.
    #[command(subcommand)]
    pub command: Option<crate::center_cmd::CenterCommand>,
    /// Address to listen on.
    #[arg(long, required = true, value_parser = crate::units::parse_socket_addr)]
    pub listen: Option<SocketAddr>,
    /// Directory made by `ashiato pki init`.
    #[arg(long, required = true, env = "ASHIATO_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,
    /// Which identity in --tls-dir the center presents.
    #[arg(long, default_value = "center")]
    pub name: String,
    /// Where the list key and the signing key live (made on first start).
    #[arg(long, required = true)]
    pub key_dir: Option<PathBuf>,
    /// Claims one reporter may file per hour.
    #[arg(long, default_value_t = 20)]
    pub claims_per_hour: u32,
    /// Append every accept/refuse decision to this file, one line each.
    #[arg(long)]
    pub audit_log: Option<PathBuf>,
    /// Print one line with the bound address once listening (for scripts).
    #[arg(long)]
    pub print_addr: bool,
    /// The claims and reports: a SQLite file or a postgres:// URL [default: center.db in --key-dir].
    #[arg(long)]
    pub store: Option<String>,
    #[command(flatten)]
    pub views: crate::center_cmd::ViewArgs,
}

/// `ashiato hostsynth`
#[derive(Args, Debug)]
pub struct HostsynthArgs {
    /// The history to write (pcap).
    #[arg(long)]
    pub out: PathBuf,
    /// The claim list to write (JSON lines).
    #[arg(long)]
    pub claims_out: PathBuf,
    /// Bytes of history (the seed's upper rate is 600 MB a day), e.g. 600M.
    #[arg(long, default_value = "600M", value_parser = crate::units::parse_bytes)]
    pub bytes: u64,
    /// Claims in the list.
    #[arg(long, default_value_t = 10_000)]
    pub claims: usize,
    /// How many of them the history takes part in.
    #[arg(long, default_value_t = 4)]
    pub matched: usize,
    /// PRNG seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `ashiato hostcheck`
#[derive(Args, Debug)]
pub struct HostcheckArgs {
    /// The host's communication history: pcap or pcapng files (frames numbered per file).
    #[arg(long, num_args = 1.., required = true)]
    pub pcap: Vec<PathBuf>,
    /// The claim list: one JSON object a line, {"id","victim","protocol","port","from","to"}
    /// with RFC 3339 times and optional "reflectors" (docs/host-tracing.md).
    #[arg(long, required_unless_present = "list", conflicts_with = "list")]
    pub claims: Option<PathBuf>,
    /// Instead of --claims: the center's published list (`GET /v1/claims`: one signed delta,
    /// or several, one a line, in order), verified with --list-pub and matched by keyed hash.
    #[arg(long, requires_all = ["list_pub", "list_key"])]
    pub list: Option<PathBuf>,
    /// The center's list signing key: its `sign.pub` (hex).
    #[arg(long)]
    pub list_pub: Option<PathBuf>,
    /// The list key the center issued (its `list.key`, 32 bytes).
    #[arg(long)]
    pub list_key: Option<PathBuf>,
    /// A socket-to-process snapshot, JSON lines (docs/host-tracing.md).
    #[arg(long)]
    pub procs: Option<PathBuf>,
    /// Clock-skew allowance added to both ends of every claim window, in seconds.
    #[arg(long, default_value_t = 300)]
    pub skew: u64,
    /// One JSON object a line: claim_match, finding, summary.
    #[arg(long)]
    pub json: bool,
}

/// `ashiato stepstone lab`
#[derive(Subcommand, Debug)]
pub enum StepstoneLab {
    /// Build relays and direct sources in network namespaces, run the responder against them
    /// and count who is flagged (root; the namespaces are removed afterwards).
    Lab(StepstoneLabArgs),
}

/// `ashiato stepstone lab`
#[derive(Args, Debug)]
pub struct StepstoneLabArgs {
    /// Trials per configuration.
    #[arg(long, default_value_t = 5)]
    pub trials: u32,
    /// Seed of the connection counts and ports.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// One JSON object a line per configuration.
    #[arg(long)]
    pub json: bool,
    /// Delays (ms) the delay line adds between the NAT relay and its attacker, for the
    /// detection-versus-delay curve (empty: no curve).
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,5,10,20")]
    pub delays_ms: Vec<u64>,
    /// Trials per delay of the curve.
    #[arg(long, default_value_t = 2)]
    pub curve_trials: u32,
    /// Delay (ms) the delay line adds to the socat relay's client in the acceptance trials.
    #[arg(long, default_value_t = 5)]
    pub socat_delay_ms: u64,
    /// Delays (ms, fractions allowed) of the hop-hiding relay, one per trial in turn.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub hider_delays_ms: Vec<f64>,
}

/// `ashiato stepstone`
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct StepstoneArgs {
    /// The relay lab instead of a responder.
    #[command(subcommand)]
    pub lab: Option<StepstoneLab>,
    /// Capture file holding both directions (the SYN/ACKs and the sources' ACKs).
    #[arg(long, required_unless_present = "iface", conflicts_with = "iface")]
    pub pcap: Option<PathBuf>,
    /// Answer darknet SYNs live on this interface (AF_PACKET; needs root). The darknet
    /// addresses must not be local addresses (so the host stack sends no RSTs).
    #[arg(long, requires_all = ["darknet", "local"])]
    pub iface: Option<String>,
    /// A darknet prefix to answer (IPv4 or IPv6 CIDR; repeatable).
    #[arg(long)]
    pub darknet: Vec<String>,
    /// This host's IPv4 address on --iface: the source of the active probes.
    #[arg(long)]
    pub local: Option<std::net::Ipv4Addr>,
    /// This host's IPv6 address on --iface: the source of the ICMPv6 echoes and SYN probes to
    /// IPv6 sources (needed with an IPv6 --darknet).
    #[arg(long)]
    pub local6: Option<std::net::Ipv6Addr>,
    /// ICMP echoes per connection (Ta samples).
    #[arg(long, default_value_t = 10)]
    pub pings: u16,
    /// Port of the source the SYN probe goes to (Fa from its SYN/ACK or RST).
    #[arg(long, default_value_t = 80)]
    pub probe_port: u16,
    /// SYN/ACKs per second, all sources together.
    #[arg(long, default_value_t = 1000)]
    pub rate: u32,
    /// SYN/ACKs per second to one source (what a spoofed victim can receive at most).
    #[arg(long, default_value_t = 10)]
    pub per_source_rate: u32,
    /// Stop after this long (live; 0: run until interrupted).
    #[arg(long, default_value = "0s", value_parser = crate::darkflow_cmd::duration_arg)]
    pub duration: u64,
    /// Results store: a SQLite path or a postgres:// URL (live records are written there).
    #[arg(long)]
    pub store: Option<String>,
    /// Live: write Prometheus metrics to this file every second and at exit (for
    /// node_exporter's textfile collector; replaced atomically).
    #[arg(long)]
    pub metrics_file: Option<PathBuf>,
    /// Live: serve Prometheus metrics on `GET /metrics` at this address (mutual TLS from
    /// --tls-dir, or plaintext on a loopback address with --dev-insecure).
    #[arg(long, requires = "iface")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// TLS for --metrics-listen.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// A p0f.fp signature file for Fp labels; default: ashiato's own.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// One JSON object a line per source.
    #[arg(long)]
    pub json: bool,
    /// Also evaluate the original method's rule (mean Tp > mean max Ta).
    #[arg(long)]
    pub seed_rule: bool,
    /// Live: after the handshake on PORT send a greeting and time the source's answer (Tapp,
    /// for relays that end TCP). `PORT` uses the built-in text (21, 22, 23, 25), `PORT=TEXT`
    /// takes \r \n \t escapes, at most 128 bytes. Repeatable.
    #[arg(long, value_name = "PORT[=TEXT]")]
    pub app_banner: Vec<String>,
    /// Live: on PORT answer the source's first request with TEXT and time its next one (built
    /// in for 80 and 8080). Repeatable.
    #[arg(long, value_name = "PORT[=TEXT]")]
    pub app_reply: Vec<String>,
}

/// `ashiato fingerprint`
#[derive(Args, Debug)]
pub struct FingerprintArgs {
    /// Capture file (pcap or pcapng; VLAN tags and Linux cooked captures are fine).
    #[arg(long)]
    pub pcap: PathBuf,
    /// A p0f.fp signature file (p0f 3 format, e.g. /etc/p0f/p0f.fp); default: ashiato's own
    /// modern signatures.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// One JSON object a line per SYN and SYN/ACK instead of p0f-style text.
    #[arg(long)]
    pub json: bool,
    /// Print only the number of fingerprints and the rate (for benchmarks).
    #[arg(long, conflicts_with = "json")]
    pub count: bool,
}

/// `ashiato controller`
#[derive(Args, Debug)]
pub struct ControllerArgs {
    /// The domain file (format: docs/operations.md, docs/domain.example.toml).
    #[arg(long)]
    pub config: PathBuf,
    /// Print one line with the bound address once listening (for scripts).
    #[arg(long)]
    pub print_addr: bool,
}

/// How a trace runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    /// Hop by hop: each domain asks the next.
    Recursive,
    /// The controller asks every participant at once.
    Mesh,
}

/// `ashiato trace`
#[derive(Args, Debug)]
pub struct TraceArgs {
    /// This domain's controller, host:port.
    #[arg(long)]
    pub controller: String,
    /// Capture file holding the attack packets (with --index).
    #[arg(long, requires = "index", conflicts_with = "digest")]
    pub pcap: Option<PathBuf>,
    /// 0-based index of a packet in --pcap (repeat for several: one trace of many packets).
    #[arg(long)]
    pub index: Vec<u64>,
    /// A digest to trace (32 hex digits; repeatable), instead of --pcap/--index.
    #[arg(long, required_unless_present = "pcap", requires = "time")]
    pub digest: Vec<String>,
    /// When the packets were seen (ns or s since 1970, or RFC 3339); default with --pcap:
    /// each packet's own timestamp.
    #[arg(long, value_parser = crate::units::parse_time_ns)]
    pub time: Option<u64>,
    /// Recursive or mesh (default: the controller's configured mode).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// How far the packets' times may be off, ms (default: the controller's setting).
    #[arg(long)]
    pub uncertainty_ms: Option<u64>,
    /// Time the whole trace may take, ms (default: the controller's setting).
    #[arg(long)]
    pub deadline_ms: Option<u32>,
    /// Print the trace result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the attack graph as Graphviz DOT to this file.
    #[arg(long)]
    pub dot: Option<PathBuf>,
    /// Federation key (to digest --pcap packets).
    #[command(flatten)]
    pub key: KeyArgs,
    /// Directory made by `ashiato ca init` / `pki init`.
    #[arg(long, env = "ASHIATO_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,
    /// Which identity in --tls-dir to present.
    #[arg(long, visible_alias = "identity", default_value = "operator")]
    pub name: String,
    /// Plaintext HTTP to a loopback controller; for tests and labs.
    #[arg(long, conflicts_with = "tls_dir")]
    pub dev_insecure: bool,
}

/// `ashiato ca ...`
#[derive(Subcommand, Debug)]
pub enum CaCommand {
    /// Create a federation CA, with certificates for the given domains' controllers and
    /// operators (each valid for TLS server and client use).
    Init {
        /// Directory to write.
        #[arg(long)]
        dir: PathBuf,
        /// The federation's name (put into the CA's name).
        #[arg(long)]
        federation: String,
        /// Issue a controller certificate `as<ASN>` for this domain (repeatable).
        #[arg(long)]
        asn: Vec<u32>,
        /// Issue further identities (probes, operators: `operator`, `probe-edge`, ...).
        #[arg(long)]
        name: Vec<String>,
        /// Extra subject alternative names (addresses or host names) for every identity.
        #[arg(long)]
        san: Vec<String>,
        /// Lifetime of each identity certificate in days (1 to 3650).
        #[arg(long, default_value_t = ashiato_net::tls::DEFAULT_DAYS)]
        days: u32,
    },
    /// Issue one more identity from the CA: a controller (`--asn 64501` or `--name as64501`),
    /// a probe or an operator.
    Issue {
        /// Directory holding ca.pem and ca-key.pem.
        #[arg(long)]
        dir: PathBuf,
        /// The identity's name.
        #[arg(long, required_unless_present = "asn", conflicts_with = "asn")]
        name: Option<String>,
        /// A domain controller's identity: `as<ASN>`.
        #[arg(long)]
        asn: Option<u32>,
        /// Extra subject alternative names (the controller's address or host name).
        #[arg(long)]
        san: Vec<String>,
        /// Lifetime in days (1 to 3650, and not past the CA's end).
        #[arg(long, default_value_t = ashiato_net::tls::DEFAULT_DAYS)]
        days: u32,
        /// Replace an existing identity of that name.
        #[arg(long)]
        force: bool,
    },
}

/// `ashiato darkflow [--pcap FILE... | --iface IF] ...` or `ashiato darkflow <subcommand>`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct DarkflowCli {
    /// Helpers: synthetic traffic, the inline gateway, benchmarks.
    #[command(subcommand)]
    pub command: Option<DarkflowCommand>,
    /// Detection over captures or an interface.
    #[command(flatten)]
    pub run: DarkflowArgs,
}

/// `ashiato darkflow ...` subcommands.
#[derive(Subcommand, Debug)]
pub enum DarkflowCommand {
    /// Write a synthetic capture whose DarkFlow set is known, and that set.
    Synth(SynthArgs),
    /// Inline gateway: SYNs through NFQUEUE; DarkFlows handed to a honeypot.
    Inline(InlineArgs),
    /// Measure the detector: offline rate (vs argus when installed), memory, SYN flood.
    Bench(DarkflowBenchArgs),
}

/// Detector settings shared by every DarkFlow mode.
#[derive(Args, Debug, Clone)]
pub struct DetectorArgs {
    /// T: how long a SYN waits for a SYN/ACK or RST before it is a DarkFlow (above 0, at
    /// most 1h).
    #[arg(long, default_value = "5s", value_parser = crate::darkflow_cmd::timeout_arg)]
    pub timeout: u64,
    /// How long a DarkFlow is kept after its last packet.
    #[arg(long, default_value = "60s", value_parser = crate::darkflow_cmd::duration_arg)]
    pub expiry: u64,
    /// How long an answer that arrives before its SYN waits for it (0: same timestamp).
    #[arg(long, default_value = "0s", value_parser = crate::darkflow_cmd::duration_arg)]
    pub reorder_window: u64,
    /// Most pending SYNs per address family (the SYN-flood bound); more are counted as
    /// untracked.
    #[arg(long, default_value = "4194304", value_parser = crate::darkflow_cmd::table_bound_arg)]
    pub max_pending: usize,
    /// Most DarkFlows kept per address family; the least recently active is closed early.
    #[arg(long, default_value = "1048576", value_parser = crate::darkflow_cmd::table_bound_arg)]
    pub max_flows: usize,
}

/// An event kind `--events` can select.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A flow became a DarkFlow.
    Darkflow,
    /// A DarkFlow got its first answer after T.
    Late,
    /// A DarkFlow left the table.
    Closed,
    /// A SYN the full delay queue could not take.
    Untracked,
    /// A SYN/ACK or RST that answered no SYN.
    Unsolicited,
}

/// `ashiato darkflow --pcap ... | --iface ...`
#[derive(Args, Debug, Clone)]
#[command(group = clap::ArgGroup::new("input").args(["pcap", "iface"]).required(true))]
pub struct DarkflowArgs {
    /// Capture files (pcap or pcapng), read in time order across files.
    #[arg(long, num_args = 1.., conflicts_with = "iface")]
    pub pcap: Vec<PathBuf>,
    /// Interface to watch live (a mirror port; AF_PACKET ring), until Ctrl-C.
    #[arg(long)]
    pub iface: Option<String>,
    /// Detector settings.
    #[command(flatten)]
    pub detector: DetectorArgs,
    /// Events and the summary as JSON lines on standard output.
    #[arg(long)]
    pub json: bool,
    /// The federation key file: each `darkflow` event line then carries the `digest` of
    /// the flow's first SYN, which a domain controller can trace back
    /// (`[triggers] darkflow_events`).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Which events to print with --json (comma list of darkflow, late, closed, untracked,
    /// unsolicited).
    #[arg(long, default_value = "darkflow,late,closed", value_delimiter = ',')]
    pub events: Vec<EventKind>,
    /// Write CSV files and an HTML report with plots into this directory.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write the DarkFlow set (`src sport dst dport` per line, sorted) to this file.
    #[arg(long)]
    pub set_out: Option<PathBuf>,
    /// Width of the delay-queue intervals in the summary (adds, forwards, deletes).
    #[arg(long, default_value = "10s", value_parser = crate::darkflow_cmd::positive_duration_arg)]
    pub interval: u64,
    /// Live: print the summary this often (at least 1ms).
    #[arg(long, default_value = "60s", value_parser = crate::darkflow_cmd::positive_duration_arg)]
    pub summary_every: u64,
    /// Live: serve Prometheus metrics on this address, ip:port (mutual TLS unless
    /// --dev-insecure).
    #[arg(long)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Live: stop after this long (default: until Ctrl-C).
    #[arg(long, value_parser = crate::darkflow_cmd::duration_arg)]
    pub duration: Option<u64>,
    /// Live capture snap length.
    #[arg(long, default_value_t = 128)]
    pub snaplen: u32,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// TLS for --metrics-listen.
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// `ashiato darkflow synth`
#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Capture file to write (pcap, nanosecond timestamps).
    #[arg(long)]
    pub out: PathBuf,
    /// File to write the DarkFlow set to (`src sport dst dport` per line, sorted).
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Number of flows.
    #[arg(long, default_value_t = 10_000)]
    pub flows: u64,
    /// Flow arrivals per second (at least 1).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: u64,
    /// T the truth is computed for.
    #[arg(long, default_value = "5s", value_parser = crate::darkflow_cmd::timeout_arg)]
    pub timeout: u64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Percent of flows over IPv6 (0 to 100).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub ipv6_percent: u8,
    /// Gateway-like mix: percent of flows that are answered (mostly sessions with data and
    /// FINs); the rest are unanswered SYNs and other noise. Default: the rule-coverage mix.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub answered_percent: Option<u8>,
    /// Data packets per answered session (alternating client and server).
    #[arg(long, default_value_t = 2)]
    pub data_packets: u32,
}

/// `ashiato darkflow inline`
#[derive(Args, Debug)]
pub struct InlineArgs {
    /// NFQUEUE number.
    #[arg(long, default_value_t = 0)]
    pub queue: u16,
    /// The sensor or honeypot DarkFlows are handed to (its address on a directly connected
    /// network of this gateway).
    #[arg(long)]
    pub honeypot: Option<std::net::Ipv4Addr>,
    /// The IPv6 honeypot address, if IPv6 DarkFlows are to be handed over too.
    #[arg(long)]
    pub honeypot6: Option<std::net::Ipv6Addr>,
    /// Install the iptables mangle rules and policy routes at start and remove them at exit.
    #[arg(long)]
    pub setup: bool,
    /// Interface facing the honeypot (needed with --setup: its packets are never queued).
    #[arg(long)]
    pub honeypot_iface: Option<String>,
    /// Firewall mark (and routing table number) for flows handed to the honeypot; the mark
    /// plus one marks flows cut off after a late answer (1 to 2^32 - 2).
    #[arg(long, default_value_t = 0x4446,
          value_parser = clap::value_parser!(u32).range(1..i64::from(u32::MAX)))]
    pub mark: u32,
    /// Detector settings.
    #[command(flatten)]
    pub detector: DetectorArgs,
    /// Events as JSON lines on standard output.
    #[arg(long)]
    pub json: bool,
    /// Stop after this long (default: until Ctrl-C).
    #[arg(long, value_parser = crate::darkflow_cmd::duration_arg)]
    pub duration: Option<u64>,
}

/// `ashiato darkflow bench`
#[derive(Args, Debug)]
pub struct DarkflowBenchArgs {
    /// Flows in the synthetic capture used for the offline rate.
    #[arg(long, default_value_t = 1_000_000)]
    pub flows: u64,
    /// Percent of answered flows in that capture (gateway-like mix).
    #[arg(long, default_value_t = 70, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub answered_percent: u8,
    /// Data packets per answered session in that capture.
    #[arg(long, default_value_t = 4)]
    pub data_packets: u32,
    /// Require argus (it runs whenever installed) and also time `ra -n -r OUT`.
    #[arg(long)]
    pub vs_argus: bool,
    /// Pending SYNs for the SYN-flood test (0: skip it).
    #[arg(long, default_value_t = 10_000_000)]
    pub flood: u64,
    /// The delay-queue bound for the flood test.
    #[arg(long, default_value_t = 4 << 20)]
    pub flood_bound: usize,
    /// Directory for the synthetic capture (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Results as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `ashiato key ...`
#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Generate a random 128-bit federation key (32 hex digits).
    Generate {
        /// Write it to this file (mode 0600) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `ashiato pki ...`
#[derive(Subcommand, Debug)]
pub enum PkiCommand {
    /// Create a federation CA and identities (`NAME.pem`, `NAME-key.pem`) in a directory.
    Init {
        /// Directory to write.
        #[arg(long)]
        dir: PathBuf,
        /// Identities to create.
        #[arg(long, default_values_t = ["probe".to_string(), "client".to_string()])]
        name: Vec<String>,
        /// Extra subject alternative names (addresses or host names) for every identity.
        #[arg(long)]
        san: Vec<String>,
        /// Lifetime of each identity certificate in days (1 to 3650); the CA lasts 10 years.
        #[arg(long, default_value_t = ashiato_net::tls::DEFAULT_DAYS)]
        days: u32,
        /// A federation name, put into the CA's name with a random suffix.
        #[arg(long)]
        federation: Option<String>,
    },
    /// Issue one more identity from the CA in a directory made by `pki init`.
    Issue {
        /// Directory holding ca.pem and ca-key.pem.
        #[arg(long)]
        dir: PathBuf,
        /// The identity (`NAME.pem`, `NAME-key.pem`).
        #[arg(long)]
        name: String,
        /// Extra subject alternative names (addresses or host names).
        #[arg(long)]
        san: Vec<String>,
        /// Lifetime in days (1 to 3650, and not past the CA's end).
        #[arg(long, default_value_t = ashiato_net::tls::DEFAULT_DAYS)]
        days: u32,
        /// Replace an existing identity of that name.
        #[arg(long)]
        force: bool,
    },
}

/// The federation key flag shared by every digest-computing command.
#[derive(Args, Debug, Clone)]
pub struct KeyArgs {
    /// File holding the federation key (32 hex digits). Without it the public demo key is used.
    #[arg(long, env = "ASHIATO_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}

/// `ashiato digest`
#[derive(Args, Debug)]
pub struct DigestArgs {
    /// Capture file (pcap or pcapng).
    #[arg(long)]
    pub pcap: PathBuf,
    /// Federation key.
    #[command(flatten)]
    pub key: KeyArgs,
    /// JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `ashiato probe ...`
#[derive(Subcommand, Debug)]
pub enum ProbeCommand {
    /// Record digests from capture files or an interface and answer queries.
    Run(RunArgs),
    /// Ask a probe whether it saw a packet.
    Query(QueryArgs),
    /// Measure false-positive rates against theory for both filter kinds.
    Fpr(FprArgs),
    /// Size digest tables for a traffic rate, retention and false-positive rate.
    Plan(PlanArgs),
    /// Measure digest+insert and capture-file ingest rates.
    Bench(BenchArgs),
}

/// TLS identity flags shared by servers and clients.
#[derive(Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// Directory made by `ashiato pki init` (`ca.pem`, `IDENTITY.pem`, `IDENTITY-key.pem`).
    #[arg(long, env = "ASHIATO_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,
    /// Which identity in --tls-dir to use (default: probe for servers, client for clients).
    #[arg(long)]
    pub identity: Option<String>,
    /// CA certificate (overrides --tls-dir).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Own certificate (overrides --tls-dir).
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Own private key (overrides --tls-dir).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Plaintext HTTP, accepted only on loopback addresses; for tests and labs.
    #[arg(long)]
    pub dev_insecure: bool,
}

/// The Bloom filter layout a flag selects.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterArg {
    /// One cache line per packet: faster inserts, a few more bits per packet.
    Blocked,
    /// Classic Bloom filter: k positions anywhere in the table.
    Standard,
}

impl From<FilterArg> for ashiato_tables::FilterKind {
    fn from(f: FilterArg) -> Self {
        match f {
            FilterArg::Blocked => ashiato_tables::FilterKind::Blocked,
            FilterArg::Standard => ashiato_tables::FilterKind::Standard,
        }
    }
}

/// Digest-table sizing flags.
#[derive(Args, Debug, Clone)]
pub struct TableArgs {
    /// Epoch length of one table, e.g. 1s or 250ms (at least 1ms).
    // Parsed into ns.
    #[arg(long, default_value = "1s", value_parser = crate::units::parse_epoch_ns)]
    pub epoch: u64,
    /// How long epochs stay in memory, e.g. 60s or 5m.
    // Parsed into ns.
    #[arg(long, default_value = "60s", value_parser = crate::units::parse_positive_duration_ns)]
    pub retention: u64,
    /// Filter kind.
    #[arg(long, value_enum, default_value_t = FilterArg::Blocked)]
    pub filter: FilterArg,
    /// Peak packet rate each epoch is sized for (e.g. 1Mpps, 10Gb/s with --mean-packet-size).
    #[arg(long, default_value = "1Mpps", value_parser = crate::units::parse_rate)]
    pub rate: crate::units::Rate,
    /// Mean packet size in bytes, to turn a bit rate into packets/s.
    #[arg(long, value_parser = crate::units::parse_packet_size)]
    pub mean_packet_size: Option<f64>,
    /// False-positive rate each table keeps at the sized rate (between 0 and 1). The default,
    /// 1e-7, keeps a single packet's ±1.1 s window under the federation's 1e-6 hop bound
    /// (docs/operations.md, "Sizing for single-packet traces"); floods trace at 1e-3 too.
    #[arg(long, default_value = "1e-7", value_parser = crate::units::parse_fpr)]
    pub fpr: f64,
    /// Write expired epochs to this directory (read back with positioned reads for queries).
    #[arg(long)]
    pub spill_dir: Option<PathBuf>,
    /// Disk budget for spilled epochs (e.g. 20GiB); the oldest are deleted beyond it.
    #[arg(long, default_value = "1GiB", value_parser = crate::units::parse_bytes)]
    pub spill_budget: u64,
    /// Touch every table page at start (no page faults later; full memory committed at once).
    #[arg(long)]
    pub prefault: bool,
}

/// `ashiato probe run`
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Capture files to read (merged in time order); the probe keeps serving afterwards.
    #[arg(long, num_args = 1.., conflicts_with = "iface", required_unless_present = "iface")]
    pub pcap: Vec<PathBuf>,
    /// Interface to capture from live (AF_PACKET TPACKET_V3 ring).
    #[arg(long)]
    pub iface: Option<String>,
    /// Address to serve the query API on, ip:port, e.g. 0.0.0.0:7443 or 127.0.0.1:0.
    #[arg(long, value_parser = crate::units::parse_socket_addr)]
    pub listen: SocketAddr,
    /// Name in answers and metrics (default: the TLS identity, or "probe").
    #[arg(long)]
    pub name: Option<String>,
    /// Live capture threads (rings in one PACKET_FANOUT group, spread by flow hash).
    #[arg(long, default_value_t = 1)]
    pub capture_threads: usize,
    /// Capture snap length for live capture (bytes kept per packet).
    #[arg(long, default_value_t = 256)]
    pub snaplen: u32,
    /// Print one line with the bound address once listening (for scripts).
    #[arg(long)]
    pub print_addr: bool,
    /// Federation key.
    #[command(flatten)]
    pub key: KeyArgs,
    /// TLS.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Tables.
    #[command(flatten)]
    pub tables: TableArgs,
}

/// `ashiato probe query`
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// Probe address host:port.
    #[arg(long)]
    pub probe: String,
    /// Capture file holding the packet to ask about (with --index).
    #[arg(long, requires = "index")]
    pub pcap: Option<PathBuf>,
    /// 0-based index of the packet in --pcap (repeat for several: --index 3 --index 9);
    /// each packet is searched around its own timestamp.
    #[arg(long)]
    pub index: Vec<u64>,
    /// Digests to ask about (32 hex digits), instead of --pcap/--index.
    #[arg(long, conflicts_with = "pcap", required_unless_present = "pcap")]
    pub digest: Vec<String>,
    /// When the packet was seen (ns or s since 1970, or RFC 3339); default: the packet's own
    /// timestamp with --pcap, all retained epochs otherwise.
    #[arg(long, value_parser = crate::units::parse_time_ns)]
    pub time: Option<u64>,
    /// Half-width of the window searched around --time.
    #[arg(long, default_value = "5s", value_parser = crate::units::parse_duration_ns)]
    pub window: u64,
    /// Federation key (to digest --pcap packets).
    #[command(flatten)]
    pub key: KeyArgs,
    /// TLS.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// One JSON answer a line (one line per request: packets far apart in time are asked in
    /// separate requests).
    #[arg(long)]
    pub json: bool,
}

/// `ashiato probe fpr`
#[derive(Args, Debug)]
pub struct FprArgs {
    /// Bits of each test filter (rounded up to a multiple of 512, at least 32768; at most
    /// 2^40).
    #[arg(long, default_value_t = 1 << 23,
          value_parser = clap::value_parser!(u64).range(1..=ashiato_tables::MAX_M_BITS))]
    pub m_bits: u64,
    /// Minimum queries per point (raised so that each point expects ≥ 2,000 false hits).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub queries: u64,
    /// Seed of the packet generator.
    #[arg(long, default_value_t = 2009)]
    pub seed: u64,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// `ashiato probe plan`
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Traffic: packets/s (2Mpps) or bits/s (10Gb/s, with --mean-packet-size).
    #[arg(long, value_parser = crate::units::parse_rate)]
    pub rate: crate::units::Rate,
    /// Mean packet size in bytes for a bit rate.
    #[arg(long, value_parser = crate::units::parse_packet_size)]
    pub mean_packet_size: Option<f64>,
    /// Retrospective reach wanted, e.g. 60s or 1h.
    // Parsed into ns.
    #[arg(long, value_parser = crate::units::parse_positive_duration_ns)]
    pub retention: u64,
    /// False-positive rate per table (between 0 and 1); the default is `probe run`'s.
    #[arg(long, default_value = "1e-7", value_parser = crate::units::parse_fpr)]
    pub fpr: f64,
    /// Epoch length, e.g. 1s (at least 1ms).
    // Parsed into ns.
    #[arg(long, default_value = "1s", value_parser = crate::units::parse_epoch_ns)]
    pub epoch: u64,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// `ashiato probe bench`
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Threads for the multi-core run (default: all cores).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096))]
    pub threads: Option<usize>,
    /// Distinct packets generated in memory (at least 1024 are used).
    #[arg(long, default_value_t = 1 << 20)]
    pub packets: usize,
    /// Packets inserted per measurement.
    #[arg(long, default_value_t = 30_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub inserts: u64,
    /// Also measure ingest from this capture file (default: a synthetic file written to a
    /// temporary directory, so it is in the page cache).
    #[arg(long)]
    pub pcap: Option<PathBuf>,
    /// Packets in the synthetic capture file.
    #[arg(long, default_value_t = 4_000_000)]
    pub file_packets: u64,
    /// Compare file ingest with `tcpdump -r FILE -w /dev/null` when tcpdump is installed.
    #[arg(long)]
    pub vs_tcpdump: bool,
    /// Live capture on a veth pair between two network namespaces (root): offered packet
    /// rates, comma-separated (0: as fast as the sender can).
    #[arg(long, value_delimiter = ',', value_parser = crate::units::parse_packet_rate)]
    pub live_rates: Vec<f64>,
    /// Capture ring size for the live steps, KiB (64 KiB blocks; default 64 MiB of 1 MiB
    /// blocks). Small rings show where loss begins when the consumer falls behind.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub live_ring_kib: Vec<u32>,
    /// Frames sent per live rate step.
    #[arg(long, default_value_t = 2_000_000)]
    pub live_frames: u64,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// `ashiato demo`
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Keep the probe serving after the demo's checks (until Ctrl-C).
    #[arg(long)]
    pub serve: bool,
    /// Where to write the demo's capture, PKI and DarkFlow report (default: a new private
    /// directory under the temporary directory; kept either way).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// `ashiato lab`
#[derive(Args, Debug)]
pub struct LabArgs {
    /// `default` (13 domains), `chain`, `mesh`, or a CAIDA serial-1 / SNAP topology file.
    #[arg(long, default_value = "default")]
    pub topology: String,
    /// Domains: of the chain (default 13) or mesh (15), or kept from a file around the victim
    /// (default 200); at most 5000.
    #[arg(long)]
    pub domains: Option<usize>,
    /// Share of domains running ashiato: 0 to 1, or a percent (`50%`); the victim always does.
    #[arg(long, default_value = "1")]
    pub participation: String,
    /// Seed of every random choice (topology sample, victim, origins, packets).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// `recursive` (hop by hop) or `mesh` (the victim asks every participant at once).
    #[arg(long, default_value = "recursive", value_parser = ["recursive", "mesh"])]
    pub mode: String,
    /// Attack origin domains (default 4 below 20 domains, else 5).
    #[arg(long)]
    pub origins: Option<usize>,
    /// Spoofed attack packets per origin.
    #[arg(long, default_value_t = 50)]
    pub packets: usize,
    /// Single-packet traces timed for latency (the 2009 trial ran 20).
    #[arg(long, default_value_t = 20)]
    pub traces: usize,
    /// Where graph.json, graph.dot, graph.svg, the PKI and the key go (default: a new
    /// directory under the temporary directory, printed).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// One JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Keep every service up after the run, until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// After the run, fire concurrent single-packet traces at the victim's controller for
    /// this many seconds and report traces per second.
    #[arg(long, value_name = "SECS")]
    pub throughput: Option<f64>,
    /// Requests in flight at once during --throughput.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Open a new connection (a full mutual-TLS handshake) for every request between
    /// services, instead of reusing kept-alive ones (the default, as `ashiato controller`
    /// does): to measure what the handshakes cost.
    #[arg(long)]
    pub handshake_per_request: bool,
    /// Size every probe's tables for this false-positive rate at its busiest epoch (as
    /// `probe run --fpr` does for its --rate); the lab's default is 1e-6.
    #[arg(long, default_value_t = 1e-6)]
    pub probe_fpr: f64,
    /// Benign packets per link per second (default: a few per domain in all).
    #[arg(long, value_name = "PPS")]
    pub background: Option<f64>,
    /// Share of attack packets also sent, identically, by a second origin (0 to 1 or a %).
    #[arg(long, default_value = "0")]
    pub duplicates: String,
    /// Share of domains that split their traffic over two upstreams.
    #[arg(long, default_value = "0")]
    pub multipath: String,
    /// Share of probes that are down.
    #[arg(long, default_value = "0")]
    pub probe_failures: String,
    /// One-way delay between domains' controllers, ms (a delay line on every hop request
    /// and answer).
    #[arg(long, default_value_t = 0.0)]
    pub link_delay_ms: f64,
    /// Who participates: a seeded `random` set, or the `core` (the domains with the most
    /// customers first).
    #[arg(long, default_value = "random", value_parser = ["random", "core"])]
    pub participants: String,
}

/// `ashiato federation ...`
#[derive(Subcommand, Debug)]
pub enum FederationCommand {
    /// Every participant's `beyond` lists (peering skip) from an AS topology: for each of its
    /// neighbours that runs no controller, the participating domains a packet could have
    /// come from through non-participants only, valley-free. Prints domain-file
    /// `[[neighbour]]` sections (or JSON lines); a list cut at its cap is reported.
    Beyond(BeyondArgs),
}

/// `ashiato federation beyond`
#[derive(Args, Debug)]
pub struct BeyondArgs {
    /// AS relationships: CAIDA serial-1 (`AS1|AS2|-1`) or SNAP (`AS1 AS2 rel`).
    #[arg(long)]
    pub topology: PathBuf,
    /// The participating domains, one a line: `ASN` or `ASN HOST:PORT` (its controller);
    /// `#` starts a comment.
    #[arg(long)]
    pub participants: PathBuf,
    /// Only this domain's sections.
    #[arg(long)]
    pub domain: Option<u32>,
    /// Longest run of non-participants to skip (1 to 16).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub depth: u8,
    /// One JSON object a line (domain, neighbour, beyond, capped) instead of TOML.
    #[arg(long)]
    pub json: bool,
}
