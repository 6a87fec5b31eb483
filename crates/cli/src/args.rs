//! Raw command-line flags. Subcommands share flag names (`--json`, `--pcap`, `--iface`,
//! `--listen`, `--key-file`, `--tls-dir`); values are validated into library configurations
//! by the command modules.

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
    /// Create a federation CA and identities (<name>.pem, <name>-key.pem) in a directory.
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
#[derive(Args, Debug, Clone)]
pub struct TlsArgs {
    /// Directory made by `ashiato pki init` (ca.pem, <identity>.pem, <identity>-key.pem).
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

/// Digest-table sizing flags.
#[derive(Args, Debug, Clone)]
pub struct TableArgs {
    /// Epoch length of one table.
    #[arg(long, default_value = "1s")]
    pub epoch: String,
    /// How long epochs stay in memory.
    #[arg(long, default_value = "60s")]
    pub retention: String,
    /// Filter kind: blocked (one cache line per packet) or standard.
    #[arg(long, default_value = "blocked")]
    pub filter: String,
    /// Peak packet rate each epoch is sized for (e.g. 1Mpps, 10Gb/s with --mean-packet-size).
    #[arg(long, default_value = "1Mpps")]
    pub rate: String,
    /// Mean packet size in bytes, to turn a bit rate into packets/s.
    #[arg(long)]
    pub mean_packet_size: Option<f64>,
    /// False-positive rate each table keeps at the sized rate.
    #[arg(long, default_value_t = 1e-3)]
    pub fpr: f64,
    /// Write expired epochs to this directory (memory-mapped for queries).
    #[arg(long)]
    pub spill_dir: Option<PathBuf>,
    /// Disk budget for spilled epochs; the oldest are deleted beyond it.
    #[arg(long, default_value = "1GiB")]
    pub spill_budget: String,
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
    /// Address to serve the query API on, e.g. 0.0.0.0:7443 or 127.0.0.1:0.
    #[arg(long)]
    pub listen: String,
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
    /// 0-based index of the packet in --pcap.
    #[arg(long)]
    pub index: Vec<u64>,
    /// Digests to ask about (32 hex digits), instead of --pcap/--index.
    #[arg(long, conflicts_with = "pcap", required_unless_present = "pcap")]
    pub digest: Vec<String>,
    /// When the packet was seen (ns or s since 1970, or RFC 3339); default: the packet's own
    /// timestamp with --pcap, all retained epochs otherwise.
    #[arg(long)]
    pub time: Option<String>,
    /// Half-width of the window searched around --time.
    #[arg(long, default_value = "5s")]
    pub window: String,
    /// Federation key (to digest --pcap packets).
    #[command(flatten)]
    pub key: KeyArgs,
    /// TLS.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// `ashiato probe fpr`
#[derive(Args, Debug)]
pub struct FprArgs {
    /// Bits of each test filter.
    #[arg(long, default_value_t = 1 << 23)]
    pub m_bits: u64,
    /// Minimum queries per point (raised so that each point expects ≥ 2,000 false hits).
    #[arg(long, default_value_t = 1_000_000)]
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
    #[arg(long)]
    pub rate: String,
    /// Mean packet size in bytes for a bit rate.
    #[arg(long)]
    pub mean_packet_size: Option<f64>,
    /// Retrospective reach wanted.
    #[arg(long)]
    pub retention: String,
    /// False-positive rate per table.
    #[arg(long, default_value_t = 1e-3)]
    pub fpr: f64,
    /// Epoch length.
    #[arg(long, default_value = "1s")]
    pub epoch: String,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// `ashiato probe bench`
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Threads for the multi-core run (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Distinct packets generated in memory.
    #[arg(long, default_value_t = 1 << 20)]
    pub packets: usize,
    /// Packets inserted per measurement.
    #[arg(long, default_value_t = 30_000_000)]
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
    /// Live capture on a veth pair between two network namespaces (root): offered rates.
    #[arg(long, value_delimiter = ',')]
    pub live_rates: Vec<String>,
    /// Capture ring size for the live steps, KiB (64 KiB blocks; default 64 MiB of 1 MiB
    /// blocks). Small rings show where loss begins when the consumer falls behind.
    #[arg(long, value_delimiter = ',')]
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
    /// Keep the probe serving after the demo queries (until Ctrl-C).
    #[arg(long)]
    pub serve: bool,
    /// Where to write the demo's PKI and capture (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}
