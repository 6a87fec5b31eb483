//! The versioned schema: each migration is a list of portable statements (SQLite and
//! PostgreSQL both accept them) applied in one transaction with its `schema_version` row.

/// One step of the schema.
pub(crate) struct Migration {
    /// The version the database has once this step is applied.
    pub version: i64,
    /// What the step adds, kept in `schema_version.description`.
    pub description: &'static str,
    /// The statements, run in order.
    pub statements: &'static [&'static str],
}

/// Creates the version table itself; runs before any migration, in the same transaction.
pub(crate) const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    version BIGINT PRIMARY KEY,
    applied_ns BIGINT NOT NULL,
    description TEXT NOT NULL
)";

/// Every migration, oldest first. Append only: a released step is never edited.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "incidents, traces, observations, origins, gaps",
        statements: &[
            "CREATE TABLE incidents (
            id TEXT PRIMARY KEY,
            created_ns BIGINT NOT NULL,
            victim_domain BIGINT NOT NULL,
            source TEXT NOT NULL,
            summary TEXT NOT NULL
        )",
            "CREATE TABLE traces (
            id TEXT PRIMARY KEY,
            incident_id TEXT REFERENCES incidents (id),
            initiator_domain BIGINT NOT NULL,
            victim_domain BIGINT NOT NULL,
            mode TEXT NOT NULL,
            started_ns BIGINT NOT NULL,
            duration_us BIGINT NOT NULL,
            packets BIGINT NOT NULL,
            status TEXT NOT NULL,
            graph_json TEXT NOT NULL
        )",
            "CREATE INDEX traces_by_start ON traces (started_ns)",
            "CREATE INDEX traces_by_incident ON traces (incident_id, started_ns)",
            "CREATE TABLE trace_observations (
            trace_id TEXT NOT NULL REFERENCES traces (id) ON DELETE CASCADE,
            seq BIGINT NOT NULL,
            domain BIGINT NOT NULL,
            packet BIGINT NOT NULL,
            probe TEXT NOT NULL,
            watches TEXT NOT NULL,
            verdict TEXT NOT NULL,
            epoch_start_ns BIGINT,
            epoch_end_ns BIGINT,
            fpr DOUBLE PRECISION,
            reason TEXT,
            PRIMARY KEY (trace_id, seq)
        )",
            "CREATE TABLE trace_origins (
            trace_id TEXT NOT NULL REFERENCES traces (id) ON DELETE CASCADE,
            seq BIGINT NOT NULL,
            domain BIGINT NOT NULL,
            packets BIGINT NOT NULL,
            PRIMARY KEY (trace_id, seq)
        )",
            "CREATE INDEX trace_origins_by_domain ON trace_origins (domain)",
            "CREATE TABLE trace_gaps (
            trace_id TEXT NOT NULL REFERENCES traces (id) ON DELETE CASCADE,
            seq BIGINT NOT NULL,
            last_domain BIGINT NOT NULL,
            behind TEXT NOT NULL,
            packets BIGINT NOT NULL,
            reason TEXT NOT NULL,
            PRIMARY KEY (trace_id, seq)
        )",
        ],
    },
    Migration {
        version: 2,
        description: "stepping-stone connection records",
        statements: &[
            "CREATE TABLE stepstone_connections (
            id TEXT PRIMARY KEY,
            incident_id TEXT REFERENCES incidents (id),
            time_ns BIGINT NOT NULL,
            src TEXT NOT NULL,
            sport BIGINT NOT NULL,
            dst TEXT NOT NULL,
            dport BIGINT NOT NULL,
            tp_us BIGINT,
            ta_n BIGINT NOT NULL,
            ta_min_us BIGINT,
            ta_median_us DOUBLE PRECISION,
            ta_max_us BIGINT,
            ta_variance DOUBLE PRECISION,
            fp TEXT,
            fa TEXT,
            verdict TEXT NOT NULL,
            signals TEXT NOT NULL
        )",
            "CREATE INDEX stepstone_by_time ON stepstone_connections (time_ns)",
            "CREATE INDEX stepstone_by_src ON stepstone_connections (src, time_ns)",
        ],
    },
    Migration {
        version: 3,
        description: "host tracing: accepted claims, bot reports and their records",
        statements: &[
            "CREATE TABLE host_claims (
            id TEXT PRIMARY KEY,
            incident_id TEXT REFERENCES incidents (id),
            reporter TEXT NOT NULL,
            received_ns BIGINT NOT NULL,
            list_version BIGINT NOT NULL UNIQUE,
            victim TEXT NOT NULL,
            fqdn TEXT,
            protocol TEXT NOT NULL,
            port BIGINT,
            from_ns BIGINT NOT NULL,
            to_ns BIGINT NOT NULL,
            reflectors TEXT NOT NULL,
            evidence_count BIGINT NOT NULL,
            evidence_summary TEXT NOT NULL
        )",
            "CREATE TABLE bot_reports (
            reporter TEXT NOT NULL,
            report_id TEXT NOT NULL,
            claim_id TEXT NOT NULL REFERENCES host_claims (id),
            incident_id TEXT REFERENCES incidents (id),
            received_ns BIGINT NOT NULL,
            attack_packets BIGINT NOT NULL,
            attacked_port BIGINT,
            PRIMARY KEY (reporter, report_id)
        )",
            "CREATE INDEX bot_reports_by_claim ON bot_reports (claim_id)",
            "CREATE INDEX bot_reports_by_received ON bot_reports (received_ns, reporter, report_id)",
            "CREATE TABLE bot_report_records (
            reporter TEXT NOT NULL,
            report_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            time_ns BIGINT NOT NULL,
            proto TEXT NOT NULL,
            dst TEXT NOT NULL,
            port BIGINT NOT NULL,
            fqdn TEXT,
            process TEXT,
            features TEXT NOT NULL,
            PRIMARY KEY (reporter, report_id, seq),
            FOREIGN KEY (reporter, report_id) REFERENCES bot_reports (reporter, report_id) ON DELETE CASCADE
        )",
            "CREATE INDEX bot_report_records_by_dst ON bot_report_records (dst)",
        ],
    },
    Migration {
        version: 4,
        description: "stepping-stone application-level timing (Tapp) and its exchange outcome",
        statements: &[
            "ALTER TABLE stepstone_connections ADD COLUMN tapp_us BIGINT",
            "ALTER TABLE stepstone_connections ADD COLUMN app TEXT",
        ],
    },
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_up_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.description);
            assert!(!m.statements.is_empty());
        }
        assert_eq!(SCHEMA_VERSION, MIGRATIONS.len() as i64);
    }
}
