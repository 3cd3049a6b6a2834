//! The `register` workload: clients read, write and compare-and-set a few keys, each a
//! register holding decimal numbers; every written value is unique in the run.
//!
//! Keys rotate: `--keys` slots, and once a slot's key has seen `ops_per_key` operations
//! the slot moves on to a fresh key. Each key's history stays short, which keeps the
//! linearizability search (exponential in the worst case) fast however long the run.
//! Keys are named under a prefix unique to the run, so every register starts absent even
//! on a cluster that served earlier runs.
//!
//! After the faults are healed, one final process reads every key once: those reads are
//! checked with the rest. Checking: each key on its own (`check_keys`, Wing–Gong–Lowe).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::checker::linearizable::{check_keys, CheckOptions, KeyedReport};
use crate::checker::CheckError;
use crate::history::{History, Op, OpResult, Outcome, ProcessId, Value};
use crate::run::request::{failure_outcome, ClientContext, Effect, Process};

/// The process final reads are recorded under.
pub const FINAL_READER: ProcessId = ProcessId(u64::MAX - 1);

/// A value that is not a number the workload wrote is recorded as this, which no write
/// produces, so the checker reports the read.
pub const GARBLED: Value = u64::MAX;

struct Slot {
    generation: AtomicU64,
    ops: AtomicU64,
}

/// Shared by every client of one run.
pub struct RegisterWorkload {
    prefix: String,
    slots: Vec<Slot>,
    ops_per_key: u64,
    next_value: AtomicU64,
}

/// The number a stored value holds, or [`GARBLED`].
pub fn decode(bytes: &[u8]) -> Value {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse::<Value>().ok())
        .filter(|v| *v != GARBLED)
        .unwrap_or(GARBLED)
}

impl RegisterWorkload {
    pub fn new(prefix: String, keys: usize, ops_per_key: u64) -> Arc<Self> {
        Arc::new(RegisterWorkload {
            prefix,
            slots: (0..keys.max(1))
                .map(|_| Slot {
                    generation: AtomicU64::new(0),
                    ops: AtomicU64::new(0),
                })
                .collect(),
            ops_per_key: ops_per_key.max(1),
            next_value: AtomicU64::new(1),
        })
    }

    /// The key for the next operation: a random slot's current key, moving the slot on
    /// when its key has had its share.
    fn pick_key(&self, rng: &mut impl Rng) -> String {
        let index = rng.gen_range(0..self.slots.len());
        let slot = &self.slots[index];
        let generation = slot.generation.load(Ordering::SeqCst);
        let used = slot.ops.fetch_add(1, Ordering::SeqCst) + 1;
        if used >= self.ops_per_key
            && slot
                .generation
                .compare_exchange(
                    generation,
                    generation + 1,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_ok()
        {
            slot.ops.store(0, Ordering::SeqCst);
        }
        format!("{}/r{index}.{generation}", self.prefix)
    }

    /// One client: random operations until `stop`.
    pub async fn client(self: Arc<Self>, ctx: ClientContext, stop: Instant) -> Result<(), String> {
        let mut rng = StdRng::seed_from_u64(ctx.seed.wrapping_add(ctx.index as u64 * 7919));
        let mut process = ctx.process().await.map_err(|e| e.to_string())?;
        // What this client last learned each key holds: the `expected` of its next cas.
        let mut known: HashMap<String, Option<Value>> = HashMap::new();
        while Instant::now() < stop {
            let key = self.pick_key(&mut rng);
            let value = self.next_value.fetch_add(1, Ordering::SeqCst);
            let outcome = match rng.gen_range(0..10) {
                0..=3 => self.read(&ctx, &process, &key, &mut known).await,
                4..=6 => self.write(&ctx, &process, &key, value, &mut known).await,
                _ => self.cas(&ctx, &process, &key, value, &mut known).await,
            };
            if outcome == Outcome::Info {
                process = ctx.next(&process).await.map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    async fn read(
        &self,
        ctx: &ClientContext,
        process: &Process,
        key: &str,
        known: &mut HashMap<String, Option<Value>>,
    ) -> Outcome {
        let id = ctx.recorder.invoke_keyed(process.id, key, Op::Read);
        let outcome = match ctx.bounded(process.client.get(key)).await {
            Ok(found) => {
                let value = found.map(|(bytes, _version)| decode(&bytes));
                known.insert(key.to_string(), value);
                Outcome::Ok(OpResult::Read(value))
            }
            Err(e) => failure_outcome(Effect::Read, &e),
        };
        let _ = ctx.recorder.complete(id, outcome.clone());
        outcome
    }

    async fn write(
        &self,
        ctx: &ClientContext,
        process: &Process,
        key: &str,
        value: Value,
        known: &mut HashMap<String, Option<Value>>,
    ) -> Outcome {
        let id = ctx.recorder.invoke_keyed(process.id, key, Op::Write(value));
        let text = value.to_string();
        let outcome = match ctx.bounded(process.client.put(key, &text)).await {
            Ok(_version) => {
                known.insert(key.to_string(), Some(value));
                Outcome::Ok(OpResult::Done)
            }
            Err(e) => failure_outcome(Effect::Write, &e),
        };
        let _ = ctx.recorder.complete(id, outcome.clone());
        outcome
    }

    async fn cas(
        &self,
        ctx: &ClientContext,
        process: &Process,
        key: &str,
        new: Value,
        known: &mut HashMap<String, Option<Value>>,
    ) -> Outcome {
        let expected = known.get(key).copied().flatten();
        let id = ctx
            .recorder
            .invoke_keyed(process.id, key, Op::Cas { expected, new });
        let expected_text = expected.map(|v| v.to_string());
        let new_text = new.to_string();
        let request = process.client.compare_and_set(
            key,
            expected_text.as_deref().map(str::as_bytes),
            Some(new_text.as_bytes()),
        );
        let outcome = match ctx.bounded(request).await {
            Ok(cas) => {
                let now = if cas.succeeded {
                    Some(new)
                } else {
                    cas.current.map(|(bytes, _)| decode(&bytes))
                };
                known.insert(key.to_string(), now);
                Outcome::Ok(OpResult::Cas(cas.succeeded))
            }
            Err(e) => failure_outcome(Effect::Write, &e),
        };
        let _ = ctx.recorder.complete(id, outcome.clone());
        outcome
    }

    /// After healing: one read of every key the run touched.
    pub async fn final_reads(&self, ctx: &ClientContext) -> Result<(), String> {
        let process = ctx.process().await.map_err(|e| e.to_string())?;
        let mut keys: Vec<String> = ctx
            .recorder
            .history()
            .keys()
            .into_iter()
            .map(str::to_string)
            .collect();
        keys.sort();
        for key in keys {
            let id = ctx
                .recorder
                .invoke_keyed(FINAL_READER, key.as_str(), Op::Read);
            let outcome = match ctx.bounded(process.client.get(&key)).await {
                Ok(found) => Outcome::Ok(OpResult::Read(found.map(|(b, _)| decode(&b)))),
                Err(e) => failure_outcome(Effect::Read, &e),
            };
            let _ = ctx.recorder.complete(id, outcome);
        }
        Ok(())
    }
}

/// Checks every key's register for linearizability.
pub fn check(history: &History) -> Result<KeyedReport, CheckError> {
    check_keys(history, &CheckOptions::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_rotate_after_their_share_of_operations() {
        let workload = RegisterWorkload::new("p".into(), 1, 3);
        let mut rng = StdRng::seed_from_u64(0);
        let keys: Vec<String> = (0..7).map(|_| workload.pick_key(&mut rng)).collect();
        assert_eq!(
            keys,
            ["p/r0.0", "p/r0.0", "p/r0.0", "p/r0.1", "p/r0.1", "p/r0.1", "p/r0.2"]
        );
    }

    #[test]
    fn values_decode_or_are_flagged() {
        assert_eq!(decode(b"42"), 42);
        assert_eq!(decode(b"x"), GARBLED);
        assert_eq!(decode(b""), GARBLED);
        assert_eq!(decode(u64::MAX.to_string().as_bytes()), GARBLED);
    }
}
