//! Finished traces into the results store (`ashiato-store`): SQLite by default, PostgreSQL
//! by URL. The sink never fails a trace: an error (full disk, database gone) is returned to
//! the controller, which reports it in the result (`stored: false`, `store_error`) and in its
//! metrics, and the trace stays readable from memory.

use std::time::{SystemTime, UNIX_EPOCH};

use ashiato_api::federation::{DomainId, TraceResult};
use ashiato_store::Store;
use ashiato_store::federation::{incident_of, trace_record, trace_result};

use crate::{BoxFuture, TraceSink};

/// A [`TraceSink`] over a [`Store`].
pub struct StoreSink {
    store: Store,
    domain: DomainId,
    source: &'static str,
}

impl StoreSink {
    /// Stores the traces `domain`'s controller runs; incidents are recorded as coming from
    /// `source` (`cli`, `eve`, `lab`, ...).
    pub fn new(store: Store, domain: DomainId, source: &'static str) -> Self {
        StoreSink {
            store,
            domain,
            source,
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().min(i64::MAX as u128) as u64)
        .unwrap_or(0)
}

impl TraceSink for StoreSink {
    fn store<'a>(&'a self, t: &'a TraceResult) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let started = now_ns().saturating_sub(t.duration_us.saturating_mul(1000));
            let record = trace_record(t, self.domain, started).map_err(|e| e.to_string())?;
            self.store
                .put_incident(&incident_of(t, self.source, started))
                .await
                .map_err(|e| e.to_string())?;
            self.store
                .put_trace(&record)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn load<'a>(&'a self, trace_id: &'a str) -> BoxFuture<'a, Result<Option<TraceResult>, String>> {
        Box::pin(async move {
            match self
                .store
                .trace(trace_id)
                .await
                .map_err(|e| e.to_string())?
            {
                None => Ok(None),
                Some(r) => trace_result(&r).map(Some).map_err(|e| e.to_string()),
            }
        })
    }
}
