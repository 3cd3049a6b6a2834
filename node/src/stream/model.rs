//! Domain types of the stream store (Kinesis Data Streams): stream names, shard ids, the
//! 128-bit hash-key space and how partition keys map into it, sequence numbers, record
//! limits and the errors a Kinesis client expects. No state, no I/O.

use serde::{Deserialize, Serialize};

pub const ACCOUNT_ID: &str = crate::queue::model::ACCOUNT_ID;
pub const REGION: &str = crate::queue::model::REGION;

/// Largest record payload (data plus partition key).
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
pub const MAX_PARTITION_KEY_CHARS: usize = 256;
pub const MAX_PUT_RECORDS_ENTRIES: usize = 500;
pub const MAX_PUT_RECORDS_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_GET_RECORDS: u32 = 10_000;
pub const MAX_GET_RECORDS_BYTES: usize = 10 * 1024 * 1024;
pub const MIN_RETENTION_HOURS: u32 = 24;
pub const MAX_RETENTION_HOURS: u32 = 8_760;
/// Per-shard write limits (enforced when `limits.enforce_shard_throughput` is on).
pub const SHARD_WRITE_BYTES_PER_SECOND: u64 = 1024 * 1024;
pub const SHARD_WRITE_RECORDS_PER_SECOND: u64 = 1000;
/// Shard iterators expire after five minutes.
pub const ITERATOR_TTL_MS: u64 = 5 * 60 * 1000;
const MAX_STREAM_NAME_CHARS: usize = 128;

/// A stream's incarnation: a number the catalog hands out once, never again, so a stream
/// deleted and created again under its name is told apart from its predecessor (its
/// records, iterators and list tokens).
pub type Incarnation = u64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum StreamError {
    #[error("Stream {0} under account {ACCOUNT_ID} not found.")]
    StreamNotFound(String),
    /// A request that breaks the operation's modeled constraints (lengths, ranges,
    /// patterns): Kinesis answers these as `ValidationException`.
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    ExpiredNextToken(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("Iterator expired. The iterator was created at time {created_ms} while right now it is {now_ms} which is further in the future than the tolerated delay of 300000 milliseconds.")]
    ExpiredIterator { created_ms: u64, now_ms: u64 },
    #[error("Rate exceeded for shard {0} in stream {1} under account {ACCOUNT_ID}.")]
    ProvisionedThroughputExceeded(String, String),
}

impl StreamError {
    /// The `__type` Kinesis answers with.
    pub fn code(&self) -> &'static str {
        match self {
            StreamError::StreamNotFound(_) | StreamError::ResourceNotFound(_) => {
                "ResourceNotFoundException"
            }
            StreamError::ResourceInUse(_) => "ResourceInUseException",
            StreamError::InvalidArgument(_) => "InvalidArgumentException",
            StreamError::Validation(_) => "ValidationException",
            StreamError::ExpiredNextToken(_) => "ExpiredNextTokenException",
            StreamError::LimitExceeded(_) => "LimitExceededException",
            StreamError::ExpiredIterator { .. } => "ExpiredIteratorException",
            StreamError::ProvisionedThroughputExceeded(..) => {
                "ProvisionedThroughputExceededException"
            }
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        StreamError::InvalidArgument(message.into())
    }

    pub fn validation(message: impl Into<String>) -> Self {
        StreamError::Validation(message.into())
    }

    /// The modeled-constraint message Kinesis gives for one field.
    pub fn constraint(field: &str, value: impl std::fmt::Display, constraint: &str) -> Self {
        StreamError::Validation(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ))
    }

    pub fn not_found(stream: &StreamName) -> Self {
        StreamError::StreamNotFound(stream.to_string())
    }
}

/// A stream's name: 1–128 of `[A-Za-z0-9_.-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamName(String);

impl StreamName {
    pub fn parse(name: &str) -> Result<StreamName, StreamError> {
        let ok = !name.is_empty()
            && name.len() <= MAX_STREAM_NAME_CHARS
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(StreamName(name.to_string()))
        } else {
            Err(StreamError::constraint(
                "streamName",
                name,
                "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 128",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn arn(&self) -> String {
        format!("arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/{}", self.0)
    }

    /// The stream named by a Kinesis stream ARN of this account.
    pub fn from_arn(arn: &str) -> Option<StreamName> {
        let rest = arn.strip_prefix("arn:aws:kinesis:")?;
        let mut parts = rest.splitn(3, ':');
        let (_region, account, resource) = (parts.next()?, parts.next()?, parts.next()?);
        let name = resource.strip_prefix("stream/")?;
        (account == ACCOUNT_ID)
            .then(|| StreamName::parse(name).ok())
            .flatten()
    }
}

impl TryFrom<String> for StreamName {
    type Error = StreamError;
    fn try_from(s: String) -> Result<Self, StreamError> {
        StreamName::parse(&s)
    }
}

impl From<StreamName> for String {
    fn from(n: StreamName) -> String {
        n.0
    }
}

impl std::fmt::Display for StreamName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A shard's number within its stream; shown as `shardId-000000000007`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardId(pub u32);

impl ShardId {
    pub fn parse(s: &str) -> Result<ShardId, StreamError> {
        // Kinesis accepts the bare number's zero-padded form and the full id.
        let digits = s.strip_prefix("shardId-").unwrap_or(s);
        if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(StreamError::invalid(format!("Invalid ShardId: {s}")));
        }
        digits
            .parse::<u32>()
            .map(ShardId)
            .map_err(|_| StreamError::invalid(format!("Invalid ShardId: {s}")))
    }
}

impl std::fmt::Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shardId-{:012}", self.0)
    }
}

/// An inclusive range of the 128-bit hash-key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashRange {
    pub start: u128,
    pub end: u128,
}

impl HashRange {
    pub fn contains(&self, key: u128) -> bool {
        self.start <= key && key <= self.end
    }

    /// `n` adjacent ranges covering the whole space: range `i` starts at
    /// floor(i × 2^128 / n), as Kinesis splits a new stream.
    pub fn even(n: u32) -> Vec<HashRange> {
        let n = u128::from(n.max(1));
        // 2^128 = q × n + r + 1, so i × 2^128 / n = i × q + i × (r + 1) / n for i < n.
        let (q, r) = (u128::MAX / n, u128::MAX % n);
        let start = |i: u128| i * q + i * (r + 1) / n;
        (0..n)
            .map(|i| HashRange {
                start: start(i),
                end: if i + 1 == n {
                    u128::MAX
                } else {
                    start(i + 1) - 1
                },
            })
            .collect()
    }
}

/// The hash key of a partition key: its MD5 as a big-endian 128-bit number.
pub fn hash_key_of(partition_key: &str) -> u128 {
    use md5::Digest;
    let digest = md5::Md5::digest(partition_key.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest);
    u128::from_be_bytes(b)
}

/// Whether `s` is a decimal number as Kinesis's models write one: `0|([1-9]\d{0,max-1})`.
pub fn is_decimal(s: &str, max_digits: usize) -> bool {
    s == "0"
        || (!s.is_empty()
            && s.len() <= max_digits
            && !s.starts_with('0')
            && s.bytes().all(|b| b.is_ascii_digit()))
}

/// A hash key a client sent (ExplicitHashKey, NewStartingHashKey): not a decimal number
/// → ValidationException (the model's pattern); above 2^128 - 1 → InvalidArgument.
pub fn parse_hash_key_field(field: &str, s: &str) -> Result<u128, StreamError> {
    if !is_decimal(s, 39) {
        return Err(StreamError::constraint(
            field,
            s,
            "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})",
        ));
    }
    s.parse::<u128>().map_err(|_| {
        StreamError::invalid(format!(
            "Invalid {field}. {field} must be in the range: [0, 2^128-1]. Specified value was {s}"
        ))
    })
}

/// An ExplicitHashKey: a decimal number in the 128-bit space.
pub fn parse_hash_key(s: &str) -> Result<u128, StreamError> {
    parse_hash_key_field("ExplicitHashKey", s)
}

pub fn check_partition_key(key: &str) -> Result<(), StreamError> {
    let chars = key.chars().count();
    if (1..=MAX_PARTITION_KEY_CHARS).contains(&chars) {
        Ok(())
    } else {
        Err(StreamError::validation(format!(
            "1 validation error detected: Value at 'partitionKey' failed to satisfy constraint: Member must have length between 1 and {MAX_PARTITION_KEY_CHARS} (it has {chars})"
        )))
    }
}

/// A record's sequence number: unique in its stream, strictly increasing within a shard.
/// Shown as a decimal string of 56 digits, `49`, the shard's number (10 digits), then its
/// position in the shard (44 digits): numbers of one shard compare as their positions,
/// a child shard's numbers are above its parents' (children get higher shard numbers),
/// and no number has a leading zero (Kinesis's pattern is `0|([1-9]\d{0,128})`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct SequenceNumber {
    pub shard: u32,
    pub position: u64,
}

const SEQUENCE_PREFIX: &str = "49";

impl SequenceNumber {
    pub fn render(&self) -> String {
        format!("{SEQUENCE_PREFIX}{:010}{:044}", self.shard, self.position)
    }

    /// `render`, appended to a buffer (GetRecords renders thousands per page).
    pub fn render_into(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        // Writing to a Vec cannot fail.
        let _ = write!(
            out,
            "{SEQUENCE_PREFIX}{:010}{:044}",
            self.shard, self.position
        );
    }

    pub fn parse(s: &str) -> Result<SequenceNumber, StreamError> {
        let bad = || {
            StreamError::invalid(format!(
                "StartingSequenceNumber {s} used in GetShardIterator on shard is not valid."
            ))
        };
        if s.len() != 56 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let digits = s.strip_prefix(SEQUENCE_PREFIX).ok_or_else(bad)?;
        let shard = digits[..10].parse::<u32>().map_err(|_| bad())?;
        let position = digits[10..].parse::<u64>().map_err(|_| bad())?;
        Ok(SequenceNumber { shard, position })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arns() {
        let s = StreamName::parse("clicks.v1-a_b").unwrap();
        assert_eq!(
            s.arn(),
            "arn:aws:kinesis:us-east-1:000000000000:stream/clicks.v1-a_b"
        );
        assert_eq!(StreamName::from_arn(&s.arn()), Some(s));
        assert!(StreamName::parse("").is_err());
        assert!(StreamName::parse("a b").is_err());
        assert!(StreamName::parse(&"x".repeat(129)).is_err());
        assert_eq!(ShardId(7).to_string(), "shardId-000000000007");
        assert_eq!(ShardId::parse("shardId-000000000007").unwrap(), ShardId(7));
        assert!(ShardId::parse("shardId-x").is_err());
    }

    #[test]
    fn even_ranges_cover_the_space_without_gaps() {
        for n in [1u32, 2, 3, 4, 7, 16] {
            let r = HashRange::even(n);
            assert_eq!(r.len(), n as usize);
            assert_eq!(r[0].start, 0);
            assert_eq!(r.last().unwrap().end, u128::MAX);
            for w in r.windows(2) {
                assert_eq!(w[0].end + 1, w[1].start, "n={n}");
                assert!(w[0].start <= w[0].end);
            }
        }
        // Kinesis's own two-shard split point.
        assert_eq!(
            HashRange::even(2)[1].start,
            170141183460469231731687303715884105728
        );
    }

    #[test]
    fn partition_keys_hash_by_md5() {
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661.
        assert_eq!(hash_key_of("a"), 0x0cc175b9c0f1b6a831c399e269772661);
        assert_eq!(parse_hash_key("0").unwrap(), 0);
        assert_eq!(parse_hash_key(&u128::MAX.to_string()).unwrap(), u128::MAX);
        assert_eq!(
            parse_hash_key("340282366920938463463374607431768211456")
                .unwrap_err()
                .code(),
            "InvalidArgumentException"
        );
        for bad in ["-1", "abc", "12x", "007", ""] {
            assert_eq!(
                parse_hash_key(bad).unwrap_err().code(),
                "ValidationException",
                "{bad}"
            );
        }
        assert!(check_partition_key("").is_err());
        assert!(check_partition_key(&"k".repeat(256)).is_ok());
        assert!(check_partition_key(&"k".repeat(257)).is_err());
    }

    #[test]
    fn sequence_numbers_order_within_a_shard_and_round_trip() {
        let a = SequenceNumber {
            shard: 3,
            position: 9,
        };
        let b = SequenceNumber {
            shard: 3,
            position: 10,
        };
        assert!(a.render() < b.render());
        assert_eq!(a.render().len(), 56);
        assert_eq!(SequenceNumber::parse(&b.render()).unwrap(), b);
        assert!(SequenceNumber::parse("12").is_err());
        let top = SequenceNumber {
            shard: u32::MAX,
            position: u64::MAX,
        };
        assert_eq!(SequenceNumber::parse(&top.render()).unwrap(), top);
        // No leading zero, and a child's numbers are above its parent's.
        assert!(SequenceNumber::default().render().starts_with("49"));
        let child = SequenceNumber {
            shard: 4,
            position: 0,
        };
        assert!(child.render() > b.render());
        assert!(SequenceNumber::parse(&"0".repeat(56)).is_err());
    }
}
