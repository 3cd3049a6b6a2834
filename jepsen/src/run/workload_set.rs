//! The `set` workload: clients add unique numbers to one set; each add is a put of its own
//! key under a prefix unique to the run (`<prefix>/<number>`, body: the number). After the
//! faults are healed, a final read lists the set with a paginated scan of the prefix.
//!
//! Checked by the set checker: every acknowledged add is in the final read, nothing is
//! there that was never attempted, no failed add is there; adds whose outcome is unknown
//! may be either. On top of it this workload checks that each key's body is the number its
//! name says (a corrupt entry is an anomaly).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::checker::set::{self, SetReport};
use crate::checker::CheckError;
use crate::history::{History, Op, OpResult, Outcome, Value};
use crate::run::request::{failure_outcome, ClientContext, Effect};
use crate::run::workload_register::FINAL_READER;

/// The history key of the one set.
pub const SET_KEY: &str = "set";

/// Upper bound on the entries the final read lists.
const MAX_ENTRIES: usize = 10_000_000;

/// Shared by every client of one run.
pub struct SetWorkload {
    prefix: String,
    next_value: AtomicU64,
}

/// What the final read found besides the set itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FinalRead {
    /// Entries whose key or body is not the number the workload wrote.
    pub corrupt: Vec<String>,
}

impl SetWorkload {
    pub fn new(prefix: String) -> Arc<Self> {
        Arc::new(SetWorkload {
            prefix: format!("{prefix}/"),
            next_value: AtomicU64::new(1),
        })
    }

    fn key_of(&self, value: Value) -> String {
        format!("{}{value:012}", self.prefix)
    }

    /// One client: unique adds until `stop`.
    pub async fn client(self: Arc<Self>, ctx: ClientContext, stop: Instant) -> Result<(), String> {
        let mut process = ctx.process().await.map_err(|e| e.to_string())?;
        while Instant::now() < stop {
            let value = self.next_value.fetch_add(1, Ordering::SeqCst);
            let id = ctx
                .recorder
                .invoke_keyed(process.id, SET_KEY, Op::Add(value));
            let text = value.to_string();
            let outcome = match ctx
                .bounded(process.client.put(self.key_of(value), &text))
                .await
            {
                Ok(_version) => Outcome::Ok(OpResult::Done),
                Err(e) => failure_outcome(Effect::Write, &e),
            };
            let _ = ctx.recorder.complete(id, outcome.clone());
            if outcome == Outcome::Info {
                process = ctx.next(&process).await.map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// After healing: lists the set, retrying (each attempt recorded) until one read
    /// succeeds or `deadline` passes.
    pub async fn final_read(
        &self,
        ctx: &ClientContext,
        deadline: Instant,
    ) -> Result<FinalRead, String> {
        let process = ctx.process().await.map_err(|e| e.to_string())?;
        loop {
            let id = ctx
                .recorder
                .invoke_keyed(FINAL_READER, SET_KEY, Op::ReadAll);
            let listing = process
                .client
                .scan_up_to(self.prefix.as_bytes(), None, MAX_ENTRIES)
                .await;
            match listing {
                Ok((entries, _more)) => {
                    let mut values = Vec::with_capacity(entries.len());
                    let mut found = FinalRead::default();
                    for entry in entries {
                        let name = String::from_utf8_lossy(&entry.key).into_owned();
                        let body = String::from_utf8_lossy(&entry.value).into_owned();
                        let from_name = name
                            .strip_prefix(&self.prefix)
                            .and_then(|n| n.parse::<Value>().ok());
                        match from_name {
                            Some(value) if body == value.to_string() => values.push(value),
                            Some(value) => {
                                values.push(value);
                                found.corrupt.push(format!("{name} holds {body:?}"));
                            }
                            None => found.corrupt.push(format!("{name} holds {body:?}")),
                        }
                    }
                    let _ = ctx
                        .recorder
                        .complete(id, Outcome::Ok(OpResult::ReadAll(values)));
                    return Ok(found);
                }
                Err(e) => {
                    let _ = ctx.recorder.complete(id, failure_outcome(Effect::Read, &e));
                    if Instant::now() >= deadline {
                        return Err(format!("final read failed: {e}"));
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// Runs the set checker.
pub fn check(history: &History) -> Result<SetReport, CheckError> {
    set::check(history)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_in_value_order() {
        let workload = SetWorkload::new("run".into());
        assert_eq!(workload.key_of(7), "run/000000000007");
        assert!(workload.key_of(9) < workload.key_of(10));
    }
}
