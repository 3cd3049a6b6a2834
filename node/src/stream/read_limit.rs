//! GetRecords read limits per shard, as Kinesis applies them: 5 calls per second and
//! 2 MiB per second of data (and partition keys) read. Enforced only with
//! `limits.enforce_shard_throughput` on.
//!
//! Two token buckets per shard, driven by a clock the caller passes in (pure: no timer, no
//! I/O). A call is admitted when the call bucket holds a whole token and the byte bucket
//! is not in debt; the bytes a call returned are charged after it, and may push the byte
//! bucket below zero. That is how Kinesis lets one GetRecords return up to 10 MiB and
//! then throttles the shard's next calls until the debt is repaid at 2 MiB/s ("if a call
//! returns 10 MiB, subsequent calls made within the next 5 seconds throw an exception").
//!
//! The limiter is node-local: it lives in the stream service of the edge node that serves
//! the GetRecords (see docs/kinesis-compatibility.md for why, and what that means for a
//! consumer that spreads its calls over several nodes). Buckets are keyed by
//! (stream, incarnation, shard); full, idle buckets are dropped when the map grows.

use std::collections::HashMap;

use super::log::ShardLogId;

/// GetRecords calls a shard serves per second.
pub const SHARD_READ_CALLS_PER_SECOND: u64 = 5;
/// Bytes a shard serves to GetRecords per second.
pub const SHARD_READ_BYTES_PER_SECOND: u64 = 2 * 1024 * 1024;
/// Buckets kept before idle, full ones are dropped.
const PRUNE_ABOVE: usize = 4_096;

/// Token counts are kept in thousandths so a refill of a few milliseconds is not lost.
const MILLI: i128 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    /// Calls available, in thousandths of a call.
    calls_milli: i128,
    /// Bytes available, in thousandths of a byte; negative while in debt.
    bytes_milli: i128,
    refilled_ms: u64,
}

impl Bucket {
    fn full(now_ms: u64) -> Self {
        Bucket {
            calls_milli: i128::from(SHARD_READ_CALLS_PER_SECOND) * MILLI,
            bytes_milli: i128::from(SHARD_READ_BYTES_PER_SECOND) * MILLI,
            refilled_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        // A clock that went back refills nothing (and does not move the mark back).
        let elapsed = i128::from(now_ms.saturating_sub(self.refilled_ms));
        let cap_calls = i128::from(SHARD_READ_CALLS_PER_SECOND) * MILLI;
        let cap_bytes = i128::from(SHARD_READ_BYTES_PER_SECOND) * MILLI;
        // Per millisecond a bucket gains rate/1000 tokens, i.e. `rate` thousandths.
        self.calls_milli =
            (self.calls_milli + elapsed * i128::from(SHARD_READ_CALLS_PER_SECOND)).min(cap_calls);
        self.bytes_milli =
            (self.bytes_milli + elapsed * i128::from(SHARD_READ_BYTES_PER_SECOND)).min(cap_bytes);
        self.refilled_ms = self.refilled_ms.max(now_ms);
    }

    fn is_full(&self) -> bool {
        self.calls_milli >= i128::from(SHARD_READ_CALLS_PER_SECOND) * MILLI
            && self.bytes_milli >= i128::from(SHARD_READ_BYTES_PER_SECOND) * MILLI
    }
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// More than 5 calls in the last second.
    Calls,
    /// The shard's byte allowance is spent (a large read is being repaid).
    Bytes,
}

/// The read buckets of every shard this node served GetRecords for.
#[derive(Debug, Default)]
pub struct ReadLimiter {
    buckets: HashMap<ShardLogId, Bucket>,
}

impl ReadLimiter {
    /// Admit one GetRecords call on `shard` at `now_ms`, taking one call token.
    pub fn admit(&mut self, shard: &ShardLogId, now_ms: u64) -> Result<(), Throttled> {
        if self.buckets.len() > PRUNE_ABOVE {
            self.prune(now_ms);
        }
        let bucket = self
            .buckets
            .entry(shard.clone())
            .or_insert_with(|| Bucket::full(now_ms));
        bucket.refill(now_ms);
        if bucket.bytes_milli <= 0 {
            return Err(Throttled::Bytes);
        }
        if bucket.calls_milli < MILLI {
            return Err(Throttled::Calls);
        }
        bucket.calls_milli -= MILLI;
        Ok(())
    }

    /// Charge the bytes an admitted call returned.
    pub fn charge(&mut self, shard: &ShardLogId, bytes: u64, now_ms: u64) {
        let bucket = self
            .buckets
            .entry(shard.clone())
            .or_insert_with(|| Bucket::full(now_ms));
        bucket.refill(now_ms);
        bucket.bytes_milli -= i128::from(bytes) * MILLI;
    }

    /// Drop the buckets that are full again: they hold nothing a fresh one would not.
    fn prune(&mut self, now_ms: u64) {
        self.buckets.retain(|_, b| {
            b.refill(now_ms);
            !b.is_full()
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::model::{ShardId, StreamName};

    fn shard(n: u32) -> ShardLogId {
        ShardLogId {
            stream: StreamName::parse("s").unwrap(),
            incarnation: 1,
            shard: ShardId(n),
        }
    }

    #[test]
    fn five_calls_a_second_per_shard() {
        let mut l = ReadLimiter::default();
        for _ in 0..5 {
            assert_eq!(l.admit(&shard(0), 1_000), Ok(()));
        }
        assert_eq!(l.admit(&shard(0), 1_000), Err(Throttled::Calls));
        // Another shard has its own allowance.
        assert_eq!(l.admit(&shard(1), 1_000), Ok(()));
        // One call comes back every 200 ms.
        assert_eq!(l.admit(&shard(0), 1_199), Err(Throttled::Calls));
        assert_eq!(l.admit(&shard(0), 1_200), Ok(()));
        assert_eq!(l.admit(&shard(0), 1_200), Err(Throttled::Calls));
        // A second later the bucket is full again, but never fuller than 5.
        for _ in 0..5 {
            assert_eq!(l.admit(&shard(0), 60_000), Ok(()));
        }
        assert_eq!(l.admit(&shard(0), 60_000), Err(Throttled::Calls));
    }

    #[test]
    fn a_large_read_throttles_the_shard_until_its_debt_is_repaid() {
        let mut l = ReadLimiter::default();
        let mib = 1024 * 1024;
        assert_eq!(l.admit(&shard(0), 0), Ok(()));
        // 10 MiB returned: 8 MiB of debt past the 2 MiB allowance, 4 s to repay.
        l.charge(&shard(0), 10 * mib, 0);
        assert_eq!(l.admit(&shard(0), 1), Err(Throttled::Bytes));
        assert_eq!(l.admit(&shard(0), 3_999), Err(Throttled::Bytes));
        assert_eq!(l.admit(&shard(0), 4_001), Ok(()));
        // Reads within the allowance are not throttled by bytes.
        let mut l = ReadLimiter::default();
        for i in 0..4 {
            assert_eq!(l.admit(&shard(0), i * 250), Ok(()));
            l.charge(&shard(0), 512 * 1024, i * 250);
        }
        assert_eq!(l.admit(&shard(0), 1_000), Ok(()));
    }

    #[test]
    fn a_clock_going_back_refills_nothing_and_full_buckets_are_pruned() {
        let mut l = ReadLimiter::default();
        for _ in 0..5 {
            l.admit(&shard(0), 10_000).unwrap();
        }
        assert_eq!(l.admit(&shard(0), 5_000), Err(Throttled::Calls));
        assert_eq!(l.admit(&shard(0), 10_199), Err(Throttled::Calls));
        assert_eq!(l.admit(&shard(0), 10_200), Ok(()));
        for n in 0..=PRUNE_ABOVE as u32 {
            l.admit(&shard(n + 1), 10_200).unwrap();
        }
        // Long after, every bucket is full again and the next admit drops them.
        l.admit(&shard(0), 100_000).unwrap();
        assert!(l.len() <= 2, "{} buckets kept", l.len());
    }
}
