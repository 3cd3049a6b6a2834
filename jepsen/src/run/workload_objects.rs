//! The `objects` workload: clients drive the S3 API on the nodes' HTTP edges (the official
//! AWS SDK, a random edge per request) against one versioned bucket made for the run.
//!
//! Each key is a register whose states are "absent" or a value: PutObject writes a value
//! unique in the run, DeleteObject writes "absent" (in a versioned bucket it adds a delete
//! marker), GetObject reads (`NoSuchKey`: absent), a conditional PutObject is a
//! compare-and-set (`If-Match` with the ETag of the value the client last saw;
//! `If-None-Match: *` when it last saw the key absent), and ListObjectsV2 reads every key
//! under a prefix at once. Mix: get 30%, put 25%, delete 10%, conditional put 15%, list 20%.
//!
//! Bodies: a value's body is its decimal text; for one value in four it is followed by a
//! newline and filler up to [`LARGE_BODY_BYTES`], more than the node keeps inline, so those
//! objects are erasure coded. A read decodes the number and checks the whole body is the one
//! that value was written with; anything else is recorded as [`GARBLED`], which no write
//! produces, so the checker reports it. A listing gives ETags, not bodies: the ETag of a
//! simple PUT is the MD5 of its body, so every value written (from its invocation on) is
//! remembered by ETag, and an ETag nobody wrote is recorded as [`GARBLED`].
//!
//! Keys rotate in epochs, as the register workload's do: `e<epoch>/k<slot>`, `--keys` slots,
//! and after `--ops-per-key` operations per key the workload moves on to the next epoch's
//! keys. A listing lists the current epoch's prefix `e<epoch>/`, so it reads that epoch's
//! keys only and each key's history stays short. After the faults are healed one process
//! reads every key once and lists the whole bucket: those reads are checked with the rest
//! and are what shows an acknowledged write was not lost.
//!
//! Checking: [`crate::checker::objects`].

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use aws_sdk_s3::Client;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::checker::objects::{self, ObjectsReport};
use crate::checker::CheckError;
use crate::history::{History, Key, Op, OpResult, Outcome, Value};
use crate::run::request::{ClientContext, Effect};
use crate::run::s3_request::{bounded, edge_client, S3Failure, S3Process};
use crate::run::target::S3Access;
use crate::run::workload_register::FINAL_READER;

/// A body or ETag that is not one the workload wrote is recorded as this value, which no
/// write produces, so the checker reports the read.
pub const GARBLED: Value = u64::MAX;

/// The size of a large body: above the node's 16 KiB inline limit, so erasure coded.
pub const LARGE_BODY_BYTES: usize = 20 * 1024;

/// Whether `value`'s body is a large one (one value in four).
pub fn is_large(value: Value) -> bool {
    value.is_multiple_of(4)
}

/// The body `value` is written with.
pub fn body(value: Value) -> Vec<u8> {
    let mut bytes = value.to_string().into_bytes();
    if is_large(value) {
        bytes.push(b'\n');
        let mut x = value.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        while bytes.len() < LARGE_BODY_BYTES {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Printable filler, so a body shown in a log is readable.
            bytes.push(b'a' + (x % 26) as u8);
        }
    }
    bytes
}

/// The value a body holds, or [`GARBLED`] unless it is exactly [`body`] of that value.
pub fn decode(bytes: &[u8]) -> Value {
    let head = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    std::str::from_utf8(head)
        .ok()
        .and_then(|s| s.parse::<Value>().ok())
        .filter(|v| *v != GARBLED && body(*v) == bytes)
        .unwrap_or(GARBLED)
}

/// The ETag S3 gives a simple PUT of `value`: the hex MD5 of its body.
pub fn etag(value: Value) -> String {
    use md5::Digest;
    md5::Md5::digest(body(value))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A listing's ETag without the quotes S3 puts around it.
fn bare_etag(tag: &str) -> &str {
    tag.trim().trim_matches('"')
}

/// The history key a listing of `prefix` is recorded under: the prefix itself.
fn listing_key(prefix: &str) -> Key {
    prefix.to_string()
}

/// Shared by every client of one run.
pub struct ObjectsWorkload {
    bucket: String,
    access: S3Access,
    keys: usize,
    ops_per_epoch: u64,
    ops: AtomicU64,
    next_value: AtomicU64,
    /// ETag → value of every value a PUT was invoked with.
    etags: Mutex<HashMap<String, Value>>,
}

/// What a client last learned a key holds (`None`: absent): the condition of its next
/// conditional PUT.
type Known = HashMap<Key, Option<Value>>;

impl ObjectsWorkload {
    pub fn new(bucket: String, access: S3Access, keys: usize, ops_per_key: u64) -> Arc<Self> {
        let keys = keys.max(1);
        Arc::new(ObjectsWorkload {
            bucket,
            access,
            keys,
            ops_per_epoch: ops_per_key.max(1) * keys as u64,
            ops: AtomicU64::new(0),
            next_value: AtomicU64::new(1),
            etags: Mutex::new(HashMap::new()),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The current epoch, counting this operation against it.
    fn epoch(&self) -> u64 {
        self.ops.fetch_add(1, Ordering::SeqCst) / self.ops_per_epoch
    }

    fn key(epoch: u64, slot: usize) -> Key {
        format!("e{epoch}/k{slot}")
    }

    fn prefix(epoch: u64) -> String {
        format!("e{epoch}/")
    }

    /// A fresh value, remembered by its ETag before any request carries it.
    fn fresh_value(&self) -> Value {
        let value = self.next_value.fetch_add(1, Ordering::SeqCst);
        self.etags
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(etag(value), value);
        value
    }

    fn value_of_etag(&self, tag: &str) -> Value {
        self.etags
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(bare_etag(tag))
            .copied()
            .unwrap_or(GARBLED)
    }

    /// Creates the bucket with versioning enabled, trying the edges in turn until both
    /// steps succeed or `deadline` passes. Not recorded: the history starts with the
    /// bucket in place.
    pub async fn setup(&self, op_timeout: Duration, deadline: Instant) -> Result<(), String> {
        let clients: Vec<Client> = self
            .access
            .endpoints
            .iter()
            .map(|e| edge_client(e, &self.access, op_timeout))
            .collect();
        if clients.is_empty() {
            return Err("the target has no HTTP edge".into());
        }
        let mut attempt = 0;
        loop {
            let client = &clients[attempt % clients.len()];
            attempt += 1;
            match self.setup_once(client).await {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("creating bucket {}: {e}", self.bucket))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    async fn setup_once(&self, client: &Client) -> Result<(), String> {
        let created = client.create_bucket().bucket(&self.bucket).send().await;
        if let Err(e) = created {
            let failure = S3Failure::of(&e);
            if failure.code() != Some("BucketAlreadyOwnedByYou") {
                return Err(format!("{failure:?}"));
            }
        }
        client
            .put_bucket_versioning()
            .bucket(&self.bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| format!("{:?}", S3Failure::of(&e)))?;
        Ok(())
    }

    /// One client: random operations through random edges until `stop`.
    pub async fn client(self: Arc<Self>, ctx: ClientContext, stop: Instant) -> Result<(), String> {
        let mut rng = StdRng::seed_from_u64(ctx.seed.wrapping_add(ctx.index as u64 * 7919));
        let mut process = S3Process::first(&ctx, &self.access);
        let mut known = Known::new();
        while Instant::now() < stop {
            let epoch = self.epoch();
            let key = Self::key(epoch, rng.gen_range(0..self.keys));
            let (_node, client) = process.edge(&mut rng);
            let outcome = match rng.gen_range(0..100) {
                0..30 => self.get(&ctx, &process, client, &key, &mut known).await,
                30..55 => self.put(&ctx, &process, client, &key, &mut known).await,
                55..65 => self.delete(&ctx, &process, client, &key, &mut known).await,
                65..80 => self.cas(&ctx, &process, client, &key, &mut known).await,
                _ => {
                    self.list(&ctx, &process, client, &Self::prefix(epoch))
                        .await
                }
            };
            if outcome == Outcome::Info {
                process = process.next(&ctx, &self.access);
            }
        }
        Ok(())
    }

    async fn get(
        &self,
        ctx: &ClientContext,
        process: &S3Process,
        client: &Client,
        key: &str,
        known: &mut Known,
    ) -> Outcome {
        let id = ctx.recorder.invoke_keyed(process.id, key, Op::Read);
        let outcome = match bounded(ctx.op_timeout, self.read_value(client, key)).await {
            Ok(value) => {
                known.insert(key.to_string(), value);
                Outcome::Ok(OpResult::Read(value))
            }
            Err(failure) => failure.outcome(Effect::Read),
        };
        let _ = ctx.recorder.complete(id, outcome.clone());
        outcome
    }

    /// GetObject: the value, `None` for `NoSuchKey` (never written, or a delete marker).
    async fn read_value(&self, client: &Client, key: &str) -> Result<Option<Value>, S3Failure> {
        match client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => {
                let bytes = output
                    .body
                    .collect()
                    .await
                    .map_err(|e| S3Failure::NoAnswer(format!("reading the body: {e}")))?
                    .into_bytes();
                Ok(Some(decode(&bytes)))
            }
            Err(e) => {
                let failure = S3Failure::of(&e);
                if failure.code() == Some("NoSuchKey") {
                    Ok(None)
                } else {
                    Err(failure)
                }
            }
        }
    }

    async fn put(
        &self,
        ctx: &ClientContext,
        process: &S3Process,
        client: &Client,
        key: &str,
        known: &mut Known,
    ) -> Outcome {
        let value = self.fresh_value();
        let id = ctx.recorder.invoke_keyed(process.id, key, Op::Write(value));
        let request = client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body(value)))
            .send();
        let outcome = match bounded(ctx.op_timeout, async {
            request.await.map_err(|e| S3Failure::of(&e))
        })
        .await
        {
            Ok(_) => {
                known.insert(key.to_string(), Some(value));
                Outcome::Ok(OpResult::Done)
            }
            Err(failure) => failure.outcome(Effect::Write),
        };
        let _ = ctx.recorder.complete(id, outcome.clone());
        outcome
    }

    async fn delete(
        &self,
        ctx: &ClientContext,
        process: &S3Process,
        client: &Client,
        key: &str,
        known: &mut Known,
    ) -> Outcome {
        let id = ctx.recorder.invoke_keyed(process.id, key, Op::Delete);
        let request = client.delete_object().bucket(&self.bucket).key(key).send();
        let outcome = match bounded(ctx.op_timeout, async {
            request.await.map_err(|e| S3Failure::of(&e))
        })
        .await
        {
            Ok(_) => {
                known.insert(key.to_string(), None);
                Outcome::Ok(OpResult::Done)
            }
            Err(failure) => failure.outcome(Effect::Write),
        };
        let _ = ctx.recorder.complete(id, outcome.clone());
        outcome
    }

    /// A conditional PUT from what this client last saw: `If-Match` its ETag, or
    /// `If-None-Match: *` when it saw the key absent (or has not seen it).
    async fn cas(
        &self,
        ctx: &ClientContext,
        process: &S3Process,
        client: &Client,
        key: &str,
        known: &mut Known,
    ) -> Outcome {
        let expected = known.get(key).copied().flatten();
        let new = self.fresh_value();
        let id = ctx
            .recorder
            .invoke_keyed(process.id, key, Op::Cas { expected, new });
        let mut request = client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body(new)));
        request = match expected {
            Some(value) => request.if_match(format!("\"{}\"", etag(value))),
            None => request.if_none_match("*"),
        };
        let sent = request.send();
        let result = bounded(ctx.op_timeout, async {
            sent.await.map_err(|e| S3Failure::of(&e))
        })
        .await;
        let outcome = match result {
            Ok(_) => {
                known.insert(key.to_string(), Some(new));
                Outcome::Ok(OpResult::Cas(true))
            }
            // The condition did not hold: the key held another value, or (If-Match) none.
            Err(failure)
                if failure.status() == Some(412)
                    || (expected.is_some() && failure.code() == Some("NoSuchKey")) =>
            {
                known.remove(key);
                Outcome::Ok(OpResult::Cas(false))
            }
            Err(failure) => failure.outcome(Effect::Write),
        };
        let _ = ctx.recorder.complete(id, outcome.clone());
        outcome
    }

    async fn list(
        &self,
        ctx: &ClientContext,
        process: &S3Process,
        client: &Client,
        prefix: &str,
    ) -> Outcome {
        let id = ctx
            .recorder
            .invoke_keyed(process.id, listing_key(prefix), Op::List);
        let outcome = match bounded(ctx.op_timeout, self.listing(client, prefix)).await {
            Ok(entries) => Outcome::Ok(OpResult::Listed(entries)),
            Err(failure) => failure.outcome(Effect::Read),
        };
        let _ = ctx.recorder.complete(id, outcome.clone());
        outcome
    }

    /// ListObjectsV2 of `prefix`, every page: each listed key with the value its ETag
    /// names.
    async fn listing(
        &self,
        client: &Client,
        prefix: &str,
    ) -> Result<BTreeMap<Key, Value>, S3Failure> {
        let mut entries = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let page = client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| S3Failure::of(&e))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let value = object
                    .e_tag()
                    .map(|tag| self.value_of_etag(tag))
                    .unwrap_or(GARBLED);
                // A key listed twice with different values cannot be one read of it.
                let previous = entries.insert(key.to_string(), value);
                if previous.is_some_and(|p| p != value) {
                    entries.insert(key.to_string(), GARBLED);
                }
            }
            token = page.next_continuation_token().map(str::to_string);
            if page.is_truncated() != Some(true) || token.is_none() {
                return Ok(entries);
            }
        }
    }

    /// After healing: one read of every key the run touched, then one listing of the
    /// whole bucket, each retried on the next edge (every attempt recorded) until it
    /// succeeds or `deadline` passes.
    pub async fn final_reads(&self, ctx: &ClientContext, deadline: Instant) -> Result<(), String> {
        let process = S3Process::first(ctx, &self.access);
        let mut keys: Vec<Key> = ctx
            .recorder
            .history()
            .client_ops()
            .filter(|op| op.op != Op::List)
            .map(|op| op.key.clone())
            .collect();
        keys.sort();
        keys.dedup();
        let mut unread = Vec::new();
        for key in &keys {
            let mut attempt = 0;
            loop {
                let (_, client) = process.edge_at(attempt);
                attempt += 1;
                let id = ctx
                    .recorder
                    .invoke_keyed(FINAL_READER, key.as_str(), Op::Read);
                let result = bounded(ctx.op_timeout, self.read_value(client, key)).await;
                let ok = result.is_ok();
                let outcome = match result {
                    Ok(value) => Outcome::Ok(OpResult::Read(value)),
                    Err(failure) => failure.outcome(Effect::Read),
                };
                let _ = ctx.recorder.complete(id, outcome);
                if ok {
                    break;
                }
                if Instant::now() >= deadline {
                    unread.push(key.clone());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let mut attempt = 0;
        let listed = loop {
            let (_, client) = process.edge_at(attempt);
            attempt += 1;
            let id = ctx
                .recorder
                .invoke_keyed(FINAL_READER, listing_key(""), Op::List);
            let result = bounded(ctx.op_timeout, self.listing(client, "")).await;
            let ok = result.is_ok();
            let outcome = match result {
                Ok(entries) => Outcome::Ok(OpResult::Listed(entries)),
                Err(failure) => failure.outcome(Effect::Read),
            };
            let _ = ctx.recorder.complete(id, outcome);
            if ok {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        match (unread.is_empty(), listed) {
            (true, true) => Ok(()),
            _ => Err(format!(
                "final reads incomplete: {} keys never read{}",
                unread.len(),
                if listed {
                    ""
                } else {
                    ", the bucket never listed"
                }
            )),
        }
    }
}

/// Runs the objects checker.
pub fn check(history: &History) -> Result<ObjectsReport, CheckError> {
    objects::check(history, &Default::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_and_some_are_erasure_coded_sizes() {
        for value in [1, 2, 3, 4, 5, 8, 1_000_003, 1_000_004] {
            let bytes = body(value);
            assert_eq!(decode(&bytes), value);
            assert_eq!(bytes.len() > 16 * 1024, is_large(value), "value {value}");
        }
        assert_eq!(body(7), b"7");
        let mut torn = body(8);
        torn.truncate(LARGE_BODY_BYTES / 2);
        assert_eq!(decode(&torn), GARBLED);
        let mut swapped = body(8);
        swapped[100] = if swapped[100] == b'a' { b'b' } else { b'a' };
        assert_eq!(decode(&swapped), GARBLED);
        assert_eq!(decode(b"x"), GARBLED);
        assert_eq!(decode(b""), GARBLED);
        // A small value's text with a large value's tail is not that value's body.
        assert_eq!(
            decode(&[b"9\n".as_slice(), &body(8)[2..]].concat()),
            GARBLED
        );
    }

    #[test]
    fn etags_are_the_md5_of_the_body() {
        // md5("1")
        assert_eq!(etag(1), "c4ca4238a0b923820dcc509a6f75849b");
        assert_eq!(bare_etag("\"c4ca\""), "c4ca");
        let access = S3Access {
            endpoints: Vec::new(),
            access_key: String::new(),
            secret_key: String::new(),
        };
        let workload = ObjectsWorkload::new("b".into(), access, 2, 3);
        let v = workload.fresh_value();
        assert_eq!(workload.value_of_etag(&format!("\"{}\"", etag(v))), v);
        assert_eq!(workload.value_of_etag("\"0000\""), GARBLED);
    }

    #[test]
    fn keys_move_to_a_new_epoch_after_their_share_of_operations() {
        let access = S3Access {
            endpoints: Vec::new(),
            access_key: String::new(),
            secret_key: String::new(),
        };
        let workload = ObjectsWorkload::new("b".into(), access, 2, 3);
        let epochs: Vec<u64> = (0..13).map(|_| workload.epoch()).collect();
        assert_eq!(epochs, [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2]);
        assert_eq!(ObjectsWorkload::key(1, 0), "e1/k0");
        assert!(ObjectsWorkload::key(1, 0).starts_with(&ObjectsWorkload::prefix(1)));
        assert!(!ObjectsWorkload::key(10, 0).starts_with(&ObjectsWorkload::prefix(1)));
    }
}
