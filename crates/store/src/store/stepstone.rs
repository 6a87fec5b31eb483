//! Stepping-stone connection records (schema version 2, Tapp since 4): one row per connection the
//! responder answered, written once, listed newest first.

use sqlx::Row;

use super::{Pool, Store};
use crate::error::StoreError;
use crate::model::{MAX_LIMIT, StepstoneConnection, check_id, to_db_i64};

impl Store {
    /// Stores a stepping-stone connection record, replacing one with the same id. Its incident,
    /// if named, must exist.
    pub async fn put_stepstone_connection(
        &self,
        c: &StepstoneConnection,
    ) -> Result<(), StoreError> {
        c.validate()?;
        let time = to_db_i64("stepstone time_ns", c.time_ns)?;
        let opt = |what, v: Option<u64>| v.map(|x| to_db_i64(what, x)).transpose();
        let tp = opt("tp_us", c.tp_us)?;
        let ta_min = opt("ta_min_us", c.ta_min_us)?;
        let ta_max = opt("ta_max_us", c.ta_max_us)?;
        let tapp = opt("tapp_us", c.tapp_us)?;
        let err = |e| StoreError::from_sqlx(&self.target, e);
        on_pool!(&self.pool, p => {
            sqlx::query(
                "INSERT INTO stepstone_connections (id, incident_id, time_ns, src, sport, dst, \
                 dport, tp_us, ta_n, ta_min_us, ta_median_us, ta_max_us, ta_variance, fp, fa, \
                 verdict, signals, tapp_us, app) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
                 $18, $19) \
                 ON CONFLICT (id) DO UPDATE SET incident_id = excluded.incident_id, \
                 time_ns = excluded.time_ns, src = excluded.src, sport = excluded.sport, \
                 dst = excluded.dst, dport = excluded.dport, tp_us = excluded.tp_us, \
                 ta_n = excluded.ta_n, ta_min_us = excluded.ta_min_us, \
                 ta_median_us = excluded.ta_median_us, ta_max_us = excluded.ta_max_us, \
                 ta_variance = excluded.ta_variance, fp = excluded.fp, fa = excluded.fa, \
                 verdict = excluded.verdict, signals = excluded.signals, \
                 tapp_us = excluded.tapp_us, app = excluded.app",
            )
            .bind(c.id.as_str())
            .bind(c.incident_id.as_deref())
            .bind(time)
            .bind(c.src.as_str())
            .bind(i64::from(c.sport))
            .bind(c.dst.as_str())
            .bind(i64::from(c.dport))
            .bind(tp)
            .bind(i64::from(c.ta_n))
            .bind(ta_min)
            .bind(c.ta_median_us)
            .bind(ta_max)
            .bind(c.ta_variance)
            .bind(c.fp.as_deref())
            .bind(c.fa.as_deref())
            .bind(c.verdict.as_str())
            .bind(c.signals.as_str())
            .bind(tapp)
            .bind(c.app.as_deref())
            .execute(p)
            .await
            .map_err(err)?;
        });
        Ok(())
    }

    /// Stepping-stone records, newest first: of one source if `src` is given, at or after
    /// `since_ns` if given, at most `limit` (1 to [`MAX_LIMIT`]).
    pub async fn stepstone_connections(
        &self,
        src: Option<&str>,
        since_ns: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StepstoneConnection>, StoreError> {
        if limit == 0 || limit > MAX_LIMIT {
            return Err(StoreError::Invalid(format!(
                "a stepstone listing asks for 1 to {MAX_LIMIT} records, not {limit}"
            )));
        }
        let since = since_ns.map(|s| to_db_i64("since_ns", s)).transpose()?;
        let err = |e| StoreError::from_sqlx(&self.target, e);
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(
                "SELECT id, incident_id, time_ns, src, sport, dst, dport, tp_us, ta_n, \
                 ta_min_us, ta_median_us, ta_max_us, ta_variance, fp, fa, verdict, signals, \
                 tapp_us, app FROM stepstone_connections \
                 WHERE ($1 IS NULL OR src = $1) AND ($2 IS NULL OR time_ns >= $2) \
                 ORDER BY time_ns DESC, id DESC LIMIT $3",
            )
            .bind(src)
            .bind(since)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await
            .map_err(err)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let opt_u64 = |v: Option<i64>, what: &str| v.map(|x| self.u64_of(what, x)).transpose();
                let port = |v: i64, what: &str| {
                    u16::try_from(v).map_err(|_| self.corrupt(format!("{what} = {v} is not a port")))
                };
                let id: String = row.try_get(0).map_err(err)?;
                check_id("stored stepstone id", &id).map_err(|_| self.corrupt(format!("bad id {id:?}")))?;
                out.push(StepstoneConnection {
                    id,
                    incident_id: row.try_get(1).map_err(err)?,
                    time_ns: self.u64_of("time_ns", row.try_get(2).map_err(err)?)?,
                    src: row.try_get(3).map_err(err)?,
                    sport: port(row.try_get(4).map_err(err)?, "sport")?,
                    dst: row.try_get(5).map_err(err)?,
                    dport: port(row.try_get(6).map_err(err)?, "dport")?,
                    tp_us: opt_u64(row.try_get(7).map_err(err)?, "tp_us")?,
                    ta_n: self.u32_of("ta_n", row.try_get(8).map_err(err)?)?,
                    ta_min_us: opt_u64(row.try_get(9).map_err(err)?, "ta_min_us")?,
                    ta_median_us: row.try_get(10).map_err(err)?,
                    ta_max_us: opt_u64(row.try_get(11).map_err(err)?, "ta_max_us")?,
                    ta_variance: row.try_get(12).map_err(err)?,
                    fp: row.try_get(13).map_err(err)?,
                    fa: row.try_get(14).map_err(err)?,
                    verdict: row.try_get(15).map_err(err)?,
                    signals: row.try_get(16).map_err(err)?,
                    tapp_us: opt_u64(row.try_get(17).map_err(err)?, "tapp_us")?,
                    app: row.try_get(18).map_err(err)?,
                });
            }
            Ok(out)
        })
    }
}
