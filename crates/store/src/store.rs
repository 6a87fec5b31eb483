//! [`Store`]: one pool, SQLite or PostgreSQL, behind one set of async calls.
//!
//! Each call's SQL is written once and compiled for both drivers by [`on_pool!`]: the body is
//! type-checked against `SqlitePool` and against `PgPool`, so there is no runtime type mapping
//! (no `Any` driver) and each backend keeps its own connect options.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, Postgres};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Row, Transaction};

use crate::error::StoreError;
use crate::model::{
    GapRow, Incident, IncidentOrigin, MAX_LIMIT, ObservationRow, OriginRow, TraceFilter,
    TraceRecord, TraceSummary, behind_from_text, behind_to_text, check_id, to_db_i64,
};
use crate::schema::{CREATE_VERSION_TABLE, MIGRATIONS, SCHEMA_VERSION};

/// How long a call waits for a pooled connection before it reports the database
/// unavailable: short, so a dead PostgreSQL gives an error, not a hang.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// SQLite connections open a local file; waiting is for the pool, not a server.
const SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a SQLite writer waits for another writer's lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One local file, WAL journal.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the concrete pool; the body is compiled once per driver.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

/// A write transaction on one pooled connection, driven with plain `BEGIN` / `COMMIT`.
///
/// sqlx's own `Transaction` counts its depth and only forgets it after a successful
/// `ROLLBACK`; but SQLite rolls a transaction back by itself on `SQLITE_FULL`, the
/// `ROLLBACK` then fails, and the pooled connection would come back believing it is still
/// in a transaction. So a write that does not commit closes its connection instead (SQLite
/// and PostgreSQL both roll back a transaction whose connection goes away), also when the
/// caller drops the future half-way. Errors are rare; a reconnect is cheap.
struct WriteTx<DB: sqlx::Database> {
    conn: PoolConnection<DB>,
    committed: bool,
}

impl<DB: sqlx::Database> Drop for WriteTx<DB> {
    fn drop(&mut self) {
        if !self.committed {
            self.conn.close_on_drop();
        }
    }
}

/// What differs between the two drivers when a transaction begins.
trait Begin {
    type Db: sqlx::Database;
    /// A transaction that will write.
    fn begin_write(&self) -> impl Future<Output = sqlx::Result<WriteTx<Self::Db>>> + Send;
    /// A transaction whose reads all see one snapshot.
    fn begin_read(
        &self,
    ) -> impl Future<Output = sqlx::Result<Transaction<'static, Self::Db>>> + Send;
    /// A statement that serialises concurrent migrations, if the write lock does not.
    fn schema_lock(&self) -> Option<&'static str>;
}

/// The driver-specific half of [`Begin`] and [`WriteTx`], written once for both drivers.
macro_rules! begin_impl {
    ($pool:ty, $db:ty, $begin_write:literal, $begin_read:literal, $lock:expr) => {
        impl Begin for $pool {
            type Db = $db;
            async fn begin_write(&self) -> sqlx::Result<WriteTx<$db>> {
                let mut tx = WriteTx {
                    conn: self.acquire().await?,
                    committed: false,
                };
                sqlx::query($begin_write).execute(&mut *tx.conn).await?;
                Ok(tx)
            }
            fn begin_read(
                &self,
            ) -> impl Future<Output = sqlx::Result<Transaction<'static, $db>>> + Send {
                self.begin_with($begin_read)
            }
            fn schema_lock(&self) -> Option<&'static str> {
                $lock
            }
        }

        impl WriteTx<$db> {
            async fn commit(mut self) -> sqlx::Result<()> {
                sqlx::query("COMMIT").execute(&mut *self.conn).await?;
                self.committed = true;
                Ok(())
            }
        }
    };
}

// SQLite takes the write lock at once (`BEGIN IMMEDIATE`), so the busy timeout applies
// instead of a deadlock error half-way; a WAL reader keeps the snapshot of its first read
// until its transaction ends.
begin_impl!(SqlitePool, Sqlite, "BEGIN IMMEDIATE", "BEGIN", None);
// READ COMMITTED would take a new snapshot per statement, and a trace is read in several.
// Migrations hold an advisory lock to the end of their transaction; its key is "ashiato"
// in ASCII.
begin_impl!(
    PgPool,
    Postgres,
    "BEGIN",
    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    Some("SELECT pg_advisory_xact_lock(27429965022721135)")
);

/// The data model store: incidents and traces on SQLite or PostgreSQL.
pub struct Store {
    pool: Pool,
    target: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("target", &self.target)
            .finish()
    }
}

impl Store {
    /// Opens (and creates or migrates) a store.
    ///
    /// `target` is a plain path or `sqlite:PATH` / `sqlite://PATH` for SQLite (the file is
    /// created if missing; its directory must exist), or a `postgres://` /
    /// `postgresql://` URL for PostgreSQL. Errors name the file or the server, never the
    /// URL's password.
    pub async fn open(target: &str) -> Result<Store, StoreError> {
        let store = if target.starts_with("postgres://") || target.starts_with("postgresql://") {
            Self::open_postgres(target).await?
        } else {
            let path = target
                .strip_prefix("sqlite://")
                .or_else(|| target.strip_prefix("sqlite:"))
                .unwrap_or(target);
            Self::open_sqlite(Path::new(path)).await?
        };
        if let Err(e) = store.migrate().await {
            store.close().await;
            return Err(e);
        }
        Ok(store)
    }

    async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        let target = format!("sqlite {}", path.display());
        let open_error = |reason: String| StoreError::Open {
            target: target.clone(),
            reason,
        };
        if path.as_os_str().is_empty() || path == Path::new(":memory:") {
            return Err(StoreError::Invalid(format!(
                "{target:?} is not a database file: give a path (in-memory databases vanish)"
            )));
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            return Err(open_error(format!(
                "its directory {} does not exist: create it first",
                parent.display()
            )));
        }
        if path.is_dir() {
            return Err(open_error("it is a directory, not a file".into()));
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // WAL: readers never block the writer; FULL: a committed trace survives power
            // loss, not only a crash of the process.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(SQLITE_ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| match StoreError::from_sqlx(&target, e) {
                StoreError::Database { source, .. } => open_error(source.to_string()),
                other => other,
            })?;
        Ok(Store {
            pool: Pool::Sqlite(pool),
            target,
        })
    }

    async fn open_postgres(url: &str) -> Result<Store, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Invalid(format!(
                "cannot read the PostgreSQL URL {}: {e}",
                redact_password(url)
            ))
        })?;
        let target = format!(
            "postgres {}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(options.get_username())
        );
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(PG_ACQUIRE_TIMEOUT)
            // Ping a pooled connection before use: after a server restart the dead ones are
            // dropped and replaced, so the next call works again.
            .test_before_acquire(true)
            .connect_with(options)
            .await
            .map_err(|e| match StoreError::from_sqlx(&target, e) {
                StoreError::Database { source, .. } => StoreError::Open {
                    target: target.clone(),
                    reason: source.to_string(),
                },
                other => other,
            })?;
        Ok(Store {
            pool: Pool::Postgres(pool),
            target,
        })
    }

    /// Brings the schema up to [`SCHEMA_VERSION`] in one transaction, or refuses a newer one.
    async fn migrate(&self) -> Result<(), StoreError> {
        let err = |e| StoreError::from_sqlx(&self.target, e);
        let now = i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        )
        .unwrap_or(i64::MAX);
        on_pool!(&self.pool, p => {
            let mut tx = p.begin_write().await.map_err(err)?;
            if let Some(lock) = p.schema_lock() {
                sqlx::query(lock).execute(&mut *tx.conn).await.map_err(err)?;
            }
            sqlx::query(CREATE_VERSION_TABLE).execute(&mut *tx.conn).await.map_err(err)?;
            let found: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_version")
                .fetch_one(&mut *tx.conn)
                .await
                .map_err(err)?
                .try_get(0)
                .map_err(err)?;
            if found > SCHEMA_VERSION {
                return Err(StoreError::SchemaTooNew {
                    target: self.target.clone(),
                    found,
                    known: SCHEMA_VERSION,
                });
            }
            for m in MIGRATIONS.iter().filter(|m| m.version > found) {
                for statement in m.statements {
                    sqlx::query(*statement).execute(&mut *tx.conn).await.map_err(err)?;
                }
                sqlx::query(
                    "INSERT INTO schema_version (version, applied_ns, description) \
                     VALUES ($1, $2, $3)",
                )
                .bind(m.version)
                .bind(now)
                .bind(m.description)
                .execute(&mut *tx.conn)
                .await
                .map_err(err)?;
            }
            tx.commit().await.map_err(err)
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// `sqlite PATH` or `postgres HOST:PORT/DB`, without password: for logs and errors.
    pub fn describe(&self) -> String {
        self.target.clone()
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let err = |e| StoreError::from_sqlx(&self.target, e);
        on_pool!(&self.pool, p => {
            sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_version")
                .fetch_one(p)
                .await
                .map_err(err)?
                .try_get::<i64, _>(0)
                .map_err(err)
        })
    }

    /// Checks that the database answers a query.
    pub async fn health(&self) -> Result<(), StoreError> {
        let err = |e| StoreError::from_sqlx(&self.target, e);
        let one: i64 = on_pool!(&self.pool, p => {
            sqlx::query("SELECT CAST(1 AS BIGINT)")
                .fetch_one(p)
                .await
                .map_err(err)?
                .try_get(0)
                .map_err(err)?
        });
        if one != 1 {
            return Err(self.corrupt(format!("SELECT 1 answered {one}")));
        }
        Ok(())
    }

    /// Stores an incident, replacing one with the same id.
    pub async fn put_incident(&self, inc: &Incident) -> Result<(), StoreError> {
        inc.validate()?;
        let created = to_db_i64("incident created_ns", inc.created_ns)?;
        let err = |e| StoreError::from_sqlx(&self.target, e);
        on_pool!(&self.pool, p => {
            sqlx::query(
                "INSERT INTO incidents (id, created_ns, victim_domain, source, summary) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO UPDATE SET created_ns = excluded.created_ns, \
                 victim_domain = excluded.victim_domain, source = excluded.source, \
                 summary = excluded.summary",
            )
            .bind(inc.id.as_str())
            .bind(created)
            .bind(i64::from(inc.victim_domain))
            .bind(inc.source.as_str())
            .bind(inc.summary.as_str())
            .execute(p)
            .await
            .map_err(err)?;
        });
        Ok(())
    }

    /// Stores a trace with all its observations, origins and gaps in one transaction; a trace
    /// with the same id is replaced in that same transaction. On any error nothing of it is
    /// stored and an earlier version, if any, stays as it was.
    pub async fn put_trace(&self, t: &TraceRecord) -> Result<(), StoreError> {
        t.validate()?;
        let err = |e| StoreError::from_sqlx(&self.target, e);
        on_pool!(&self.pool, p => {
            let mut tx = p.begin_write().await.map_err(err)?;
            if let Some(inc) = &t.incident_id {
                let known = sqlx::query("SELECT id FROM incidents WHERE id = $1")
                    .bind(inc.as_str())
                    .fetch_optional(&mut *tx.conn)
                    .await
                    .map_err(err)?;
                if known.is_none() {
                    return Err(StoreError::Invalid(format!(
                        "trace {} names incident {inc}, which is not stored: put the incident first",
                        t.id
                    )));
                }
            }
            // Children go with it (ON DELETE CASCADE).
            sqlx::query("DELETE FROM traces WHERE id = $1")
                .bind(t.id.as_str())
                .execute(&mut *tx.conn)
                .await
                .map_err(err)?;
            sqlx::query(
                "INSERT INTO traces (id, incident_id, initiator_domain, victim_domain, mode, \
                 started_ns, duration_us, packets, status, graph_json) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(t.id.as_str())
            .bind(t.incident_id.as_deref())
            .bind(i64::from(t.initiator_domain))
            .bind(i64::from(t.victim_domain))
            .bind(t.mode.as_str())
            .bind(to_db_i64("started_ns", t.started_ns)?)
            .bind(to_db_i64("duration_us", t.duration_us)?)
            .bind(i64::from(t.packets))
            .bind(t.status.as_str())
            .bind(t.graph_json.as_str())
            .execute(&mut *tx.conn)
            .await
            .map_err(err)?;
            for (seq, o) in t.observations.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO trace_observations (trace_id, seq, domain, packet, probe, \
                     watches, verdict, epoch_start_ns, epoch_end_ns, fpr, reason) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(t.id.as_str())
                .bind(seq as i64)
                .bind(i64::from(o.domain))
                .bind(i64::from(o.packet))
                .bind(o.probe.as_str())
                .bind(o.watches.as_str())
                .bind(o.verdict.as_str())
                .bind(o.epoch_start_ns.map(|v| v as i64))
                .bind(o.epoch_end_ns.map(|v| v as i64))
                .bind(o.fpr)
                .bind(o.reason.as_deref())
                .execute(&mut *tx.conn)
                .await
                .map_err(err)?;
            }
            for (seq, o) in t.origins.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO trace_origins (trace_id, seq, domain, packets) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(t.id.as_str())
                .bind(seq as i64)
                .bind(i64::from(o.domain))
                .bind(i64::from(o.packets))
                .execute(&mut *tx.conn)
                .await
                .map_err(err)?;
            }
            for (seq, g) in t.gaps.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO trace_gaps (trace_id, seq, last_domain, behind, packets, reason) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(t.id.as_str())
                .bind(seq as i64)
                .bind(i64::from(g.last_domain))
                .bind(behind_to_text(&g.behind))
                .bind(i64::from(g.packets))
                .bind(g.reason.as_str())
                .execute(&mut *tx.conn)
                .await
                .map_err(err)?;
            }
            tx.commit().await.map_err(err)
        })
    }

    /// Reads one trace back whole, or `None` if no trace has this id.
    pub async fn trace(&self, id: &str) -> Result<Option<TraceRecord>, StoreError> {
        check_id("trace id", id)?;
        let err = |e| StoreError::from_sqlx(&self.target, e);
        on_pool!(&self.pool, p => {
            let mut tx = p.begin_read().await.map_err(err)?;
            let Some(row) = sqlx::query(
                "SELECT id, incident_id, initiator_domain, victim_domain, mode, started_ns, \
                 duration_us, packets, status, graph_json FROM traces WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?
            else {
                return Ok(None);
            };
            let mut t = TraceRecord {
                id: row.try_get(0).map_err(err)?,
                incident_id: row.try_get(1).map_err(err)?,
                initiator_domain: self.u32_of("initiator_domain", row.try_get(2).map_err(err)?)?,
                victim_domain: self.u32_of("victim_domain", row.try_get(3).map_err(err)?)?,
                mode: row.try_get(4).map_err(err)?,
                started_ns: self.u64_of("started_ns", row.try_get(5).map_err(err)?)?,
                duration_us: self.u64_of("duration_us", row.try_get(6).map_err(err)?)?,
                packets: self.u32_of("packets", row.try_get(7).map_err(err)?)?,
                status: row.try_get(8).map_err(err)?,
                graph_json: row.try_get(9).map_err(err)?,
                observations: Vec::new(),
                origins: Vec::new(),
                gaps: Vec::new(),
            };
            let rows = sqlx::query(
                "SELECT domain, packet, probe, watches, verdict, epoch_start_ns, epoch_end_ns, \
                 fpr, reason FROM trace_observations WHERE trace_id = $1 ORDER BY seq",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
            for row in rows {
                let start: Option<i64> = row.try_get(5).map_err(err)?;
                let end: Option<i64> = row.try_get(6).map_err(err)?;
                t.observations.push(ObservationRow {
                    domain: self.u32_of("observation domain", row.try_get(0).map_err(err)?)?,
                    packet: self.u32_of("observation packet", row.try_get(1).map_err(err)?)?,
                    probe: row.try_get(2).map_err(err)?,
                    watches: row.try_get(3).map_err(err)?,
                    verdict: row.try_get(4).map_err(err)?,
                    epoch_start_ns: start.map(|v| self.u64_of("epoch_start_ns", v)).transpose()?,
                    epoch_end_ns: end.map(|v| self.u64_of("epoch_end_ns", v)).transpose()?,
                    fpr: row.try_get(7).map_err(err)?,
                    reason: row.try_get(8).map_err(err)?,
                });
            }
            let rows = sqlx::query(
                "SELECT domain, packets FROM trace_origins WHERE trace_id = $1 ORDER BY seq",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
            for row in rows {
                t.origins.push(OriginRow {
                    domain: self.u32_of("origin domain", row.try_get(0).map_err(err)?)?,
                    packets: self.u32_of("origin packets", row.try_get(1).map_err(err)?)?,
                });
            }
            let rows = sqlx::query(
                "SELECT last_domain, behind, packets, reason FROM trace_gaps \
                 WHERE trace_id = $1 ORDER BY seq",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
            for row in rows {
                let behind: String = row.try_get(1).map_err(err)?;
                t.gaps.push(GapRow {
                    last_domain: self.u32_of("gap last_domain", row.try_get(0).map_err(err)?)?,
                    behind: behind_from_text(&behind).ok_or_else(|| {
                        self.corrupt(format!("trace {id} has a gap whose domain list is {behind:?}"))
                    })?,
                    packets: self.u32_of("gap packets", row.try_get(2).map_err(err)?)?,
                    reason: row.try_get(3).map_err(err)?,
                });
            }
            tx.commit().await.map_err(err)?;
            Ok(Some(t))
        })
    }

    /// Lists traces, newest first.
    pub async fn traces(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>, StoreError> {
        if filter.limit == 0 || filter.limit > MAX_LIMIT {
            return Err(StoreError::Invalid(format!(
                "a trace listing asks for 1 to {MAX_LIMIT} traces, not {}",
                filter.limit
            )));
        }
        if let Some(inc) = &filter.incident_id {
            check_id("incident id", inc)?;
        }
        let since = filter
            .since_ns
            .map(|s| to_db_i64("since_ns", s))
            .transpose()?;
        let err = |e| StoreError::from_sqlx(&self.target, e);
        let rows = on_pool!(&self.pool, p => {
            let rows = sqlx::query(
                "SELECT t.id, t.incident_id, t.victim_domain, t.mode, t.started_ns, \
                 t.duration_us, t.packets, t.status, \
                 (SELECT COUNT(*) FROM trace_origins o WHERE o.trace_id = t.id) \
                 FROM traces t \
                 WHERE ($1 IS NULL OR t.incident_id = $1) AND ($2 IS NULL OR t.started_ns >= $2) \
                 ORDER BY t.started_ns DESC, t.id DESC LIMIT $3",
            )
            .bind(filter.incident_id.as_deref())
            .bind(since)
            .bind(i64::from(filter.limit))
            .fetch_all(p)
            .await
            .map_err(err)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(TraceSummary {
                    id: row.try_get(0).map_err(err)?,
                    incident_id: row.try_get(1).map_err(err)?,
                    victim_domain: self.u32_of("victim_domain", row.try_get(2).map_err(err)?)?,
                    mode: row.try_get(3).map_err(err)?,
                    started_ns: self.u64_of("started_ns", row.try_get(4).map_err(err)?)?,
                    duration_us: self.u64_of("duration_us", row.try_get(5).map_err(err)?)?,
                    packets: self.u32_of("packets", row.try_get(6).map_err(err)?)?,
                    status: row.try_get(7).map_err(err)?,
                    origins: self.u32_of("origin count", row.try_get(8).map_err(err)?)?,
                });
            }
            out
        });
        Ok(rows)
    }

    /// The attack tree of one incident: per origin domain, the packets traced to it over all
    /// the incident's traces, most packets first. Empty if the incident has no traces.
    pub async fn incident_origins(
        &self,
        incident_id: &str,
    ) -> Result<Vec<IncidentOrigin>, StoreError> {
        check_id("incident id", incident_id)?;
        let err = |e| StoreError::from_sqlx(&self.target, e);
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(
                "SELECT o.domain, CAST(SUM(o.packets) AS BIGINT), COUNT(DISTINCT o.trace_id) \
                 FROM trace_origins o JOIN traces t ON t.id = o.trace_id \
                 WHERE t.incident_id = $1 GROUP BY o.domain ORDER BY 2 DESC, 1",
            )
            .bind(incident_id)
            .fetch_all(p)
            .await
            .map_err(err)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(IncidentOrigin {
                    domain: self.u32_of("origin domain", row.try_get(0).map_err(err)?)?,
                    packets: self.u64_of("origin packets", row.try_get(1).map_err(err)?)?,
                    traces: self.u32_of("trace count", row.try_get(2).map_err(err)?)?,
                });
            }
            Ok(out)
        })
    }

    /// Closes every connection; a SQLite file is checkpointed by its last connection.
    pub async fn close(self) {
        on_pool!(&self.pool, p => p.close().await)
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            target: self.target.clone(),
            detail,
        }
    }

    fn u32_of(&self, what: &str, v: i64) -> Result<u32, StoreError> {
        u32::try_from(v).map_err(|_| self.corrupt(format!("{what} = {v} is not a 32-bit count")))
    }

    fn u64_of(&self, what: &str, v: i64) -> Result<u64, StoreError> {
        u64::try_from(v).map_err(|_| self.corrupt(format!("{what} = {v} is negative")))
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for error messages.
fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_string(),
    }
}

mod host;
mod stepstone;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_password("postgres://bob:s3cr:et@db.example:5433/x?sslmode=require"),
            "postgres://bob:***@db.example:5433/x?sslmode=require"
        );
        assert_eq!(redact_password("postgres://bob@h/x"), "postgres://bob@h/x");
        assert_eq!(
            redact_password("postgres://h:5432/x"),
            "postgres://h:5432/x"
        );
    }

    #[tokio::test]
    async fn a_bad_url_is_refused_without_its_password() {
        let e = Store::open("postgres://bob:hunter2@host:notaport/db")
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, StoreError::Invalid(_)), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    fn assert_send<T: Send>(_: &T) {}

    #[tokio::test]
    async fn calls_can_run_on_any_tokio_worker() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db").display().to_string())
            .await
            .unwrap();
        let t = crate::model::TraceFilter::default();
        assert_send(&store.traces(&t));
        assert_send(&store.trace("x"));
        assert_send(&store.incident_origins("x"));
        let rec = crate::model::TraceRecord {
            id: "x".into(),
            incident_id: None,
            initiator_domain: 1,
            victim_domain: 1,
            mode: "mesh".into(),
            started_ns: 0,
            duration_us: 0,
            packets: 0,
            status: "failed".into(),
            graph_json: "{}".into(),
            observations: vec![],
            origins: vec![],
            gaps: vec![],
        };
        let put = store.put_trace(&rec);
        assert_send(&put);
        put.await.unwrap();
        assert_eq!(store.trace("x").await.unwrap(), Some(rec));
        store.close().await;
    }

    /// A database written by an older build is brought up to date in place: a version-3 file
    /// with a stepping-stone row opens at the newest version, and the row reads back with the
    /// later columns unset.
    #[tokio::test]
    async fn an_older_database_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query(CREATE_VERSION_TABLE)
            .execute(&pool)
            .await
            .unwrap();
        for m in MIGRATIONS.iter().filter(|m| m.version <= 3) {
            for st in m.statements {
                sqlx::query(*st).execute(&pool).await.unwrap();
            }
            sqlx::query("INSERT INTO schema_version VALUES ($1, 0, $2)")
                .bind(m.version)
                .bind(m.description)
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::query(
            "INSERT INTO stepstone_connections (id, time_ns, src, sport, dst, dport, ta_n, \
             verdict, signals) VALUES ('ss-old', 5, '192.0.2.1', 1, '203.0.113.9', 22, 0, \
             'direct', '')",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
        let store = Store::open(&path.display().to_string()).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        let rows = store.stepstone_connections(None, None, 10).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id, "ss-old");
        assert_eq!((rows[0].tapp_us, rows[0].app.as_deref()), (None, None));
        store.close().await;
    }

    #[tokio::test]
    async fn a_missing_directory_is_named() {
        let e = Store::open("/nonexistent-ashiato-dir/x.db")
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, StoreError::Open { .. }), "{msg}");
        assert!(msg.contains("/nonexistent-ashiato-dir"), "{msg}");
    }
}
