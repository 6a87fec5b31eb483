//! The data model store: what ashiato found, kept so operators can read it later (the
//! "results DB" of each ISP in the 2009 trial, BRIEF §1, step 5).
//!
//! # Design
//!
//! - **One async API, two backends.** [`Store::open`] takes a path (SQLite, one file per site,
//!   nothing to run) or a `postgres://` URL (a shared server for a management center). Every
//!   call's SQL is written once, in the subset both accept: `$1` placeholders, `BIGINT`,
//!   `TEXT`, `DOUBLE PRECISION`, `ON CONFLICT`. No backend-specific type is used.
//! - **Plain values.** Times are `BIGINT` nanoseconds since the Unix epoch (durations in the
//!   unit their name says); the `u64`s of the API are checked to fit `i64` (up to the year
//!   2262) before anything is written. Domains (AS numbers) are `BIGINT` so every `u32` fits.
//!   Ids are text chosen by the caller (printable ASCII, at most 128 bytes), so records made
//!   by a controller, a lab or a peer keep their names.
//! - **Bounded and validated first.** A record past its bounds ([`model`]'s `MAX_*`) is
//!   refused with [`StoreError::Invalid`] before a connection is taken.
//! - **A trace is one transaction.** Its row, observations, origins and gaps are written
//!   together; storing the same id again replaces all of it in the same transaction. A full
//!   disk or a lost server leaves the previous state, never half a trace.
//! - **Durable SQLite.** WAL journal (readers never block the writer), `synchronous=FULL`
//!   (a committed trace survives power loss), foreign keys on, a busy timeout.
//! - **Versioned schema.** `schema_version` holds one row per applied migration; opening
//!   applies the missing ones in one transaction (PostgreSQL openers serialise on an advisory
//!   lock) and refuses a database newer than [`SCHEMA_VERSION`] with
//!   [`StoreError::SchemaTooNew`], leaving it untouched.
//! - **Errors for operators.** [`StoreError`] tells a full disk from an unreachable server
//!   from a corrupt file, names the database (never a password), and the pool reconnects
//!   after a server comes back.
//!
//! # Schema (version 1; version 2 below)
//!
//! | table | columns | key |
//! |---|---|---|
//! | `schema_version` | `version`, `applied_ns`, `description` | `version` |
//! | `incidents` | `id`, `created_ns`, `victim_domain`, `source` (cli, eve, darkflow, peer, lab), `summary` | `id` |
//! | `traces` | `id`, `incident_id` → `incidents`, `initiator_domain`, `victim_domain`, `mode` (recursive, mesh), `started_ns`, `duration_us`, `packets`, `status` (complete, partial, failed), `graph_json` (opaque) | `id`; indexed by `started_ns` and (`incident_id`, `started_ns`) |
//! | `trace_observations` | `trace_id` → `traces` (cascade), `seq`, `domain`, `packet`, `probe`, `watches` (`link:AS64501`, `edge`), `verdict` (seen, not_seen, unknown, unreachable), `epoch_start_ns`, `epoch_end_ns`, `fpr`, `reason` | (`trace_id`, `seq`) |
//! | `trace_origins` | `trace_id` → `traces` (cascade), `seq`, `domain`, `packets` | (`trace_id`, `seq`); indexed by `domain` |
//! | `trace_gaps` | `trace_id` → `traces` (cascade), `seq`, `last_domain`, `behind` (AS numbers joined by commas), `packets`, `reason` | (`trace_id`, `seq`) |
//!
//! `seq` keeps each list in the order the caller gave it.
//!
//! Version 2 adds `stepstone_connections` (BRIEF §3): `id`, `incident_id` → `incidents`
//! (optional), `time_ns`, `src`, `sport`, `dst`, `dport`, `tp_us`, `ta_n`, `ta_min_us`,
//! `ta_median_us`, `ta_max_us`, `ta_variance`, `fp`, `fa`, `verdict` (relay, direct,
//! undecided), `signals` (comma-separated); key `id`, indexed by `time_ns` and (`src`,
//! `time_ns`). Written by [`Store::put_stepstone_connection`], read by
//! [`Store::stepstone_connections`].
//!
//! Version 3 adds host-based tracing (BRIEF §4), written by the center and read back when it
//! restarts ([`host`]):
//!
//! | table | columns | key |
//! |---|---|---|
//! | `host_claims` | `id`, `incident_id` → `incidents` (optional), `reporter`, `received_ns`, `list_version` (unique), `victim`, `fqdn`, `protocol` (tcp, udp, icmp, any), `port`, `from_ns`, `to_ns`, `reflectors` (comma-separated), `evidence_count`, `evidence_summary` | `id` |
//! | `bot_reports` | `reporter`, `report_id`, `claim_id` → `host_claims`, `incident_id` → `incidents` (optional), `received_ns`, `attack_packets`, `attacked_port` | (`reporter`, `report_id`): a replay is refused by the database; indexed by `claim_id` and by (`received_ns`, `reporter`, `report_id`) |
//! | `bot_report_records` | `reporter`, `report_id` → `bot_reports` (cascade), `seq`, `time_ns`, `proto`, `dst`, `port`, `fqdn`, `process`, `features` (comma-separated) | (`reporter`, `report_id`, `seq`); indexed by `dst` |
//!
//! No packet contents are kept, and of a claim's IDS evidence only a count and a summary.
//! Keys are never overwritten: [`Store::put_host_claim`] and [`Store::put_bot_report`]
//! answer [`StoreError::Duplicate`] and change nothing; [`Store::host_claims`] (list order)
//! and [`Store::bot_reports`] (received order, resumable) read them back;
//! [`Store::bot_records_to`] finds every bot that reached one server, across incidents.
//!
//! Version 4 adds `tapp_us` (the application-level time, µs) and `app` (how the exchange
//! ended: `timed`, `closed`, ...) to `stepstone_connections`; rows written before it read
//! back with both unset.
//!
//! Later capabilities add tables in new migrations, each linked to `incidents` by an optional
//! `incident_id`: DarkFlow reports (§2). Released migrations are never edited.
//!
//! # Code
//!
//! - [`model`]: the records ([`Incident`], [`TraceRecord`] and its rows, [`TraceFilter`],
//!   [`TraceSummary`], [`IncidentOrigin`]) and their bounds.
//! - [`Store`]: open, migrate, write, read; [`Backend`] says which database it is.
//! - [`host`]: the host-tracing records ([`HostClaim`], [`BotReportRow`], [`BotRecordRow`]).
//! - [`StoreError`]: what went wrong, classified from the driver's error codes.

pub mod error;
pub mod federation;
pub mod host;
pub mod model;
mod schema;
mod store;

pub use error::StoreError;
pub use host::{BotContact, BotRecordRow, BotReportRow, HostClaim};
pub use model::{
    GapRow, Incident, IncidentOrigin, ObservationRow, OriginRow, StepstoneConnection, TraceFilter,
    TraceRecord, TraceSummary,
};
pub use schema::SCHEMA_VERSION;
pub use store::{Backend, Store};
