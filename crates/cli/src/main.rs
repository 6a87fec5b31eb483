//! `ashiato`: the one command-line program of the platform. Glue only: flags are parsed here,
//! validated into the library crates' configurations, and results printed. Nothing else in the
//! workspace prints.
//!
//! Exit codes: 0 success, 1 error (one line on stderr), 2 bad usage (from clap), 3 a check
//! the command performs failed (e.g. `probe fpr` outside 10 % of theory, `demo` mismatch,
//! `hostcheck`: the history matches a claim, i.e. this host took part in an attack),
//! 4 `trace` finished but some packets end in a gap (unreachable, non-participating or
//! unknown domains) instead of at an origin.

mod agent_cmd;
mod args;
mod bench;
mod center_cmd;
mod controller_cmd;
mod darkflow_cmd;
mod demo;
mod digest_cmd;
mod federation_cmd;
mod fingerprint_cmd;
mod fingerprint_out;
mod fpr;
mod hostcheck_cmd;
mod hostlab;
mod hostlab_bot;
mod hostlab_host;
mod hostlab_out;
mod hostlab_proc;
mod hostlab_srv;
mod hostsynth_cmd;
mod lab_cmd;
mod probe_cmd;
mod procsnap_cmd;
mod report_cmd;
mod stepstone_cmd;
mod stepstone_lab;
mod stepstone_lab_net;
mod stepstone_live;
mod stepstone_metrics;
mod sysmem;
mod units;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command, FederationCommand, KeyCommand, PkiCommand, ProbeCommand};
use crate::controller_cmd::Gaps;

/// A failed check (exit code 3) as opposed to an error (exit code 1).
#[derive(Debug)]
pub struct CheckFailed(pub String);

impl std::fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CheckFailed {}

/// Bad usage found after parsing, when flags are checked together (exit code 2, like the
/// errors clap reports for a single flag).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json, cli.verbose);
    ashiato_net::tls::install_crypto_provider();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ashiato: {e:#}");
            if e.downcast_ref::<CheckFailed>().is_some() {
                ExitCode::from(3)
            } else if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else if e.downcast_ref::<Gaps>().is_some() {
                ExitCode::from(4)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// Warnings and errors by default, `-v` info, `-vv` debug; `ASHIATO_LOG` overrides. Colours
/// only on a terminal (never in files or pipes) and never with `NO_COLOR` set.
fn init_logging(json: bool, verbose: u8) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("ASHIATO_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

fn pki(cmd: PkiCommand) -> anyhow::Result<()> {
    use ashiato_net::tls::{PkiOptions, init_pki, issue_identity};
    let now = std::time::SystemTime::now();
    match cmd {
        PkiCommand::Init {
            dir,
            name,
            san,
            days,
            federation,
        } => {
            let opts = PkiOptions {
                names: name,
                extra_sans: san,
                days,
                federation,
            };
            let done = init_pki(&dir, &opts, now)?;
            println!(
                "wrote federation CA \"{}\" (until {}) and {} identities valid until {} to {}",
                done.ca_name,
                done.ca_not_after,
                done.certs.len(),
                done.not_after,
                dir.display()
            );
        }
        PkiCommand::Issue {
            dir,
            name,
            san,
            days,
            force,
        } => {
            let done = issue_identity(&dir, &name, &san, days, force, now)?;
            for c in &done.certs {
                println!(
                    "wrote {} from CA \"{}\", valid until {}",
                    c.display(),
                    done.ca_name,
                    done.not_after
                );
            }
        }
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Digest(a) => digest_cmd::run(&a),
        Command::Key(KeyCommand::Generate { out }) => digest_cmd::generate_key(out.as_deref()),
        Command::Pki(cmd) => pki(cmd),
        Command::Probe(p) => match *p {
            ProbeCommand::Run(a) => probe_cmd::run(a),
            ProbeCommand::Query(a) => probe_cmd::query(a),
            ProbeCommand::Fpr(a) => fpr::run_fpr(&a),
            ProbeCommand::Plan(a) => fpr::run_plan(&a),
            ProbeCommand::Bench(a) => bench::run(&a),
        },
        Command::Demo(a) => demo::run(&a),
        Command::Darkflow(d) => darkflow_cmd::run(*d),
        Command::Lab(a) => lab_cmd::run(&a),
        Command::Controller(a) => controller_cmd::run(a),
        Command::Trace(a) => controller_cmd::trace(*a),
        Command::Ca(c) => controller_cmd::ca(c),
        Command::Federation(FederationCommand::Beyond(a)) => federation_cmd::beyond(&a),
        Command::Hostcheck(a) => hostcheck_cmd::run(&a),
        Command::Hostsynth(a) => hostsynth_cmd::run(&a),
        Command::Center(a) => center_cmd::run(*a),
        Command::Report(a) => report_cmd::run(&a),
        Command::Procsnap(a) => procsnap_cmd::run(&a),
        Command::Agent(a) => agent_cmd::run(&a),
        Command::Fingerprint(a) => fingerprint_cmd::run(&a),
        Command::Stepstone(a) => stepstone_cmd::run(&a),
        Command::Hostlab(a) => hostlab::run(&a),
    }
}
