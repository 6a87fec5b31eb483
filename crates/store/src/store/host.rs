//! Host-tracing records (schema version 3): the claims a center accepted and the bot reports
//! with their records. Each write is one transaction; keys are never overwritten (a replayed
//! report or a reused claim id or list version is [`StoreError::Duplicate`]), because the
//! center acknowledges what it wrote and must not change its meaning later.

use sqlx::Row;

use super::{Begin, Pool, Store};
use crate::error::StoreError;
use crate::host::{BotRecordRow, BotReportRow, HostClaim, addrs_from_text, addrs_to_text};
use crate::model::{MAX_LIMIT, check_id, to_db_i64};

/// Where a listing of bot reports resumes: after the report with this received time,
/// reporter and report id (the order of [`Store::bot_reports`]).
pub type BotReportCursor<'a> = (u64, &'a str, &'a str);

fn check_limit(what: &str, limit: u32) -> Result<(), StoreError> {
    if limit == 0 || limit > MAX_LIMIT {
        return Err(StoreError::Invalid(format!(
            "a {what} listing asks for 1 to {MAX_LIMIT} records, not {limit}"
        )));
    }
    Ok(())
}

impl Store {
    /// Stores an accepted claim. Its incident, if named, must be stored; an id or list
    /// version stored already is [`StoreError::Duplicate`] and changes nothing.
    pub async fn put_host_claim(&self, c: &HostClaim) -> Result<(), StoreError> {
        c.validate()?;
        let err = |e| StoreError::from_sqlx(&self.target, e);
        on_pool!(&self.pool, p => {
            let mut tx = p.begin_write().await.map_err(err)?;
            if let Some(inc) = &c.incident_id {
                let known = sqlx::query("SELECT id FROM incidents WHERE id = $1")
                    .bind(inc.as_str())
                    .fetch_optional(&mut *tx.conn)
                    .await
                    .map_err(err)?;
                if known.is_none() {
                    return Err(StoreError::Invalid(format!(
                        "host claim {} names incident {inc}, which is not stored", c.id
                    )));
                }
            }
            sqlx::query(
                "INSERT INTO host_claims (id, incident_id, reporter, received_ns, list_version, \
                 victim, fqdn, protocol, port, from_ns, to_ns, reflectors, evidence_count, \
                 evidence_summary) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(c.id.as_str())
            .bind(c.incident_id.as_deref())
            .bind(c.reporter.as_str())
            .bind(to_db_i64("received_ns", c.received_ns)?)
            .bind(to_db_i64("list_version", c.list_version)?)
            .bind(c.victim.to_string())
            .bind(c.fqdn.as_deref())
            .bind(c.protocol.as_str())
            .bind(c.port.map(i64::from))
            .bind(to_db_i64("from_ns", c.from_ns)?)
            .bind(to_db_i64("to_ns", c.to_ns)?)
            .bind(addrs_to_text(&c.reflectors))
            .bind(i64::from(c.evidence_count))
            .bind(c.evidence_summary.as_str())
            .execute(&mut *tx.conn)
            .await
            .map_err(err)?;
            tx.commit().await.map_err(err)
        })
    }

    /// Accepted claims in list order, after version `after_version` (0 for all), at most
    /// `limit` (1 to [`MAX_LIMIT`]).
    pub async fn host_claims(
        &self,
        after_version: u64,
        limit: u32,
    ) -> Result<Vec<HostClaim>, StoreError> {
        check_limit("host claim", limit)?;
        let after = to_db_i64("after_version", after_version)?;
        let err = |e| StoreError::from_sqlx(&self.target, e);
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(
                "SELECT id, incident_id, reporter, received_ns, list_version, victim, fqdn, \
                 protocol, port, from_ns, to_ns, reflectors, evidence_count, evidence_summary \
                 FROM host_claims WHERE list_version > $1 ORDER BY list_version LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await
            .map_err(err)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let victim: String = row.try_get(5).map_err(err)?;
                let refl: String = row.try_get(11).map_err(err)?;
                let port: Option<i64> = row.try_get(8).map_err(err)?;
                out.push(HostClaim {
                    id: row.try_get(0).map_err(err)?,
                    incident_id: row.try_get(1).map_err(err)?,
                    reporter: row.try_get(2).map_err(err)?,
                    received_ns: self.u64_of("received_ns", row.try_get(3).map_err(err)?)?,
                    list_version: self.u64_of("list_version", row.try_get(4).map_err(err)?)?,
                    victim: victim
                        .parse()
                        .map_err(|_| self.corrupt(format!("host claim victim {victim:?}")))?,
                    fqdn: row.try_get(6).map_err(err)?,
                    protocol: row.try_get(7).map_err(err)?,
                    port: port.map(|v| self.port_of("host claim port", v)).transpose()?,
                    from_ns: self.u64_of("from_ns", row.try_get(9).map_err(err)?)?,
                    to_ns: self.u64_of("to_ns", row.try_get(10).map_err(err)?)?,
                    reflectors: addrs_from_text(&refl)
                        .ok_or_else(|| self.corrupt(format!("host claim reflectors {refl:?}")))?,
                    evidence_count: self.u32_of("evidence_count", row.try_get(12).map_err(err)?)?,
                    evidence_summary: row.try_get(13).map_err(err)?,
                });
            }
            Ok(out)
        })
    }

    /// Stores a bot report with its records in one transaction. Its claim (and incident, if
    /// named) must be stored; a `(reporter, report_id)` stored already is
    /// [`StoreError::Duplicate`] and changes nothing.
    pub async fn put_bot_report(&self, r: &BotReportRow) -> Result<(), StoreError> {
        r.validate()?;
        let err = |e| StoreError::from_sqlx(&self.target, e);
        on_pool!(&self.pool, p => {
            let mut tx = p.begin_write().await.map_err(err)?;
            let claim = sqlx::query("SELECT id FROM host_claims WHERE id = $1")
                .bind(r.claim_id.as_str())
                .fetch_optional(&mut *tx.conn)
                .await
                .map_err(err)?;
            if claim.is_none() {
                return Err(StoreError::Invalid(format!(
                    "bot report {} names claim {}, which is not stored", r.report_id, r.claim_id
                )));
            }
            if let Some(inc) = &r.incident_id {
                let known = sqlx::query("SELECT id FROM incidents WHERE id = $1")
                    .bind(inc.as_str())
                    .fetch_optional(&mut *tx.conn)
                    .await
                    .map_err(err)?;
                if known.is_none() {
                    return Err(StoreError::Invalid(format!(
                        "bot report {} names incident {inc}, which is not stored", r.report_id
                    )));
                }
            }
            sqlx::query(
                "INSERT INTO bot_reports (reporter, report_id, claim_id, incident_id, \
                 received_ns, attack_packets, attacked_port) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(r.reporter.as_str())
            .bind(r.report_id.as_str())
            .bind(r.claim_id.as_str())
            .bind(r.incident_id.as_deref())
            .bind(to_db_i64("received_ns", r.received_ns)?)
            .bind(to_db_i64("attack_packets", r.attack_packets)?)
            .bind(r.attacked_port.map(i64::from))
            .execute(&mut *tx.conn)
            .await
            .map_err(err)?;
            for (seq, x) in r.records.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO bot_report_records (reporter, report_id, seq, time_ns, proto, \
                     dst, port, fqdn, process, features) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(r.reporter.as_str())
                .bind(r.report_id.as_str())
                .bind(seq as i64)
                .bind(to_db_i64("time_ns", x.time_ns)?)
                .bind(x.proto.as_str())
                .bind(x.dst.to_string())
                .bind(i64::from(x.port))
                .bind(x.fqdn.as_deref())
                .bind(x.process.as_deref())
                .bind(x.features.join(","))
                .execute(&mut *tx.conn)
                .await
                .map_err(err)?;
            }
            tx.commit().await.map_err(err)
        })
    }

    /// Bot reports with their records, in the order they were received (then reporter and
    /// id): of one claim if `claim_id` is given, after `after` if given, at most `limit`
    /// (1 to [`MAX_LIMIT`]). Read in one snapshot.
    pub async fn bot_reports(
        &self,
        claim_id: Option<&str>,
        after: Option<BotReportCursor<'_>>,
        limit: u32,
    ) -> Result<Vec<BotReportRow>, StoreError> {
        check_limit("bot report", limit)?;
        if let Some(c) = claim_id {
            check_id("claim id", c)?;
        }
        let (a_t, a_r, a_i) = match after {
            Some((t, r, i)) => (Some(to_db_i64("after received_ns", t)?), Some(r), Some(i)),
            None => (None, None, None),
        };
        let err = |e| StoreError::from_sqlx(&self.target, e);
        on_pool!(&self.pool, p => {
            let mut tx = p.begin_read().await.map_err(err)?;
            let rows = sqlx::query(
                "SELECT reporter, report_id, claim_id, incident_id, received_ns, \
                 attack_packets, attacked_port FROM bot_reports \
                 WHERE ($1 IS NULL OR claim_id = $1) \
                 AND ($2 IS NULL OR (received_ns, reporter, report_id) > ($2, $3, $4)) \
                 ORDER BY received_ns, reporter, report_id LIMIT $5",
            )
            .bind(claim_id)
            .bind(a_t)
            .bind(a_r)
            .bind(a_i)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let port: Option<i64> = row.try_get(6).map_err(err)?;
                let mut r = BotReportRow {
                    reporter: row.try_get(0).map_err(err)?,
                    report_id: row.try_get(1).map_err(err)?,
                    claim_id: row.try_get(2).map_err(err)?,
                    incident_id: row.try_get(3).map_err(err)?,
                    received_ns: self.u64_of("received_ns", row.try_get(4).map_err(err)?)?,
                    attack_packets: self.u64_of("attack_packets", row.try_get(5).map_err(err)?)?,
                    attacked_port: port.map(|v| self.port_of("attacked_port", v)).transpose()?,
                    records: Vec::new(),
                };
                let recs = sqlx::query(
                    "SELECT time_ns, proto, dst, port, fqdn, process, features \
                     FROM bot_report_records WHERE reporter = $1 AND report_id = $2 ORDER BY seq",
                )
                .bind(r.reporter.as_str())
                .bind(r.report_id.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(err)?;
                for x in recs {
                    let dst: String = x.try_get(2).map_err(err)?;
                    let features: String = x.try_get(6).map_err(err)?;
                    r.records.push(BotRecordRow {
                        time_ns: self.u64_of("time_ns", x.try_get(0).map_err(err)?)?,
                        proto: x.try_get(1).map_err(err)?,
                        dst: dst
                            .parse()
                            .map_err(|_| self.corrupt(format!("bot record dst {dst:?}")))?,
                        port: self.port_of("bot record port", x.try_get(3).map_err(err)?)?,
                        fqdn: x.try_get(4).map_err(err)?,
                        process: x.try_get(5).map_err(err)?,
                        features: if features.is_empty() {
                            Vec::new()
                        } else {
                            features.split(',').map(String::from).collect()
                        },
                    });
                }
                out.push(r);
            }
            tx.commit().await.map_err(err)?;
            Ok(out)
        })
    }

    fn port_of(&self, what: &str, v: i64) -> Result<u16, StoreError> {
        u16::try_from(v).map_err(|_| self.corrupt(format!("{what} = {v} is not a port")))
    }
}
