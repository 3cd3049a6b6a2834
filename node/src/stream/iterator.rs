//! Shard iterators: opaque tokens that name a place in one shard of one incarnation of a
//! stream, checked by any node and unforgeable by clients.
//!
//! A token is base64 of `kind, incarnation, shard, position, issued_ms, name` followed by
//! a 16-byte HMAC-SHA256 tag over all of it. The MAC key is derived from the cluster's
//! root secret key (config `credentials.secret_key`) and the cluster name: every node of
//! a cluster is configured with both, so a token issued by one node verifies on any other
//! and after restarts, while a client that does not hold the secret cannot make or alter
//! one. A token expires five minutes after it was issued (`ITERATOR_TTL_MS`); the issue
//! time is inside the MAC, so it cannot be moved.
//!
//! The same sealing serves the NextToken of ListShards (`paging`), under another kind byte
//! so one token is never accepted as the other.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::model::{Incarnation, ShardId, StreamError, StreamName, ITERATOR_TTL_MS};

const MAC_BYTES: usize = 16;
/// Token kinds (the first byte under the MAC).
pub const KIND_SHARD_ITERATOR: u8 = 1;
pub const KIND_LIST_SHARDS: u8 = 2;
/// Kinesis's limit on a ShardIterator's length.
pub const MAX_ITERATOR_CHARS: usize = 512;

/// The key that seals and opens tokens.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

fn mac_of(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    for p in parts {
        mac.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

impl TokenKey {
    /// The cluster's token key: HMAC-SHA256 keyed by the root secret key over a fixed label
    /// and the cluster name.
    pub fn derive(cluster_name: &str, secret_key: &str) -> TokenKey {
        TokenKey(mac_of(
            secret_key.as_bytes(),
            &[b"stratus/kinesis-tokens/v1/", cluster_name.as_bytes()],
        ))
    }

    fn tag(&self, payload: &[u8]) -> [u8; MAC_BYTES] {
        let full = mac_of(&self.0, &[payload]);
        let mut tag = [0u8; MAC_BYTES];
        tag.copy_from_slice(&full[..MAC_BYTES]);
        tag
    }

    pub fn seal(&self, payload: &[u8]) -> String {
        let mut bytes = payload.to_vec();
        bytes.extend_from_slice(&self.tag(payload));
        STANDARD.encode(bytes)
    }

    /// The payload of a token this key sealed; `None` for anything else.
    pub fn open(&self, token: &str) -> Option<Vec<u8>> {
        let mut bytes = STANDARD.decode(token.trim().as_bytes()).ok()?;
        let split = bytes.len().checked_sub(MAC_BYTES)?;
        let tag = bytes.split_off(split);
        let expected = self.tag(&bytes);
        let same = tag
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        same.then_some(bytes)
    }
}

/// A place in a shard: the next record to return has a position at or above `position`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardIterator {
    pub stream: StreamName,
    pub incarnation: Incarnation,
    pub shard: ShardId,
    pub position: u64,
    pub issued_ms: u64,
}

fn invalid_iterator() -> StreamError {
    StreamError::invalid("Invalid ShardIterator.")
}

impl ShardIterator {
    pub fn encode(&self, key: &TokenKey) -> String {
        let name = self.stream.as_str().as_bytes();
        let mut p = Vec::with_capacity(30 + name.len());
        p.push(KIND_SHARD_ITERATOR);
        p.extend_from_slice(&self.incarnation.to_be_bytes());
        p.extend_from_slice(&self.shard.0.to_be_bytes());
        p.extend_from_slice(&self.position.to_be_bytes());
        p.extend_from_slice(&self.issued_ms.to_be_bytes());
        p.extend_from_slice(name);
        key.seal(&p)
    }

    /// Open and check a token: malformed or forged → InvalidArgument, older than five
    /// minutes → ExpiredIterator.
    pub fn decode(token: &str, key: &TokenKey, now_ms: u64) -> Result<ShardIterator, StreamError> {
        if token.is_empty() || token.len() > MAX_ITERATOR_CHARS {
            return Err(StreamError::constraint(
                "shardIterator",
                token,
                "Member must have length less than or equal to 512",
            ));
        }
        let p = key.open(token).ok_or_else(invalid_iterator)?;
        let (&[kind], rest) = p.split_first_chunk::<1>().ok_or_else(invalid_iterator)?;
        if kind != KIND_SHARD_ITERATOR || rest.len() < 28 {
            return Err(invalid_iterator());
        }
        let u64_at = |i: usize| u64::from_be_bytes(rest[i..i + 8].try_into().unwrap_or([0; 8]));
        let shard = u32::from_be_bytes(rest[8..12].try_into().unwrap_or([0; 4]));
        let name = std::str::from_utf8(&rest[28..]).map_err(|_| invalid_iterator())?;
        let it = ShardIterator {
            stream: StreamName::parse(name).map_err(|_| invalid_iterator())?,
            incarnation: u64_at(0),
            shard: ShardId(shard),
            position: u64_at(12),
            issued_ms: u64_at(20),
        };
        if now_ms > it.issued_ms.saturating_add(ITERATOR_TTL_MS) {
            return Err(StreamError::ExpiredIterator {
                created_ms: it.issued_ms,
                now_ms,
            });
        }
        Ok(it)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn it() -> ShardIterator {
        ShardIterator {
            stream: StreamName::parse("clicks").unwrap(),
            incarnation: 3,
            shard: ShardId(12),
            position: 99,
            issued_ms: 1_000_000,
        }
    }

    #[test]
    fn iterators_round_trip_on_any_node_of_the_cluster() {
        let key = TokenKey::derive("c", "secret");
        let token = it().encode(&key);
        assert!(token.len() <= MAX_ITERATOR_CHARS);
        let again = TokenKey::derive("c", "secret");
        assert_eq!(
            ShardIterator::decode(&token, &again, 1_000_000).unwrap(),
            it()
        );
        // The longest stream name still fits Kinesis's length limit.
        let long = ShardIterator {
            stream: StreamName::parse(&"n".repeat(128)).unwrap(),
            ..it()
        };
        assert!(long.encode(&key).len() <= MAX_ITERATOR_CHARS);
    }

    #[test]
    fn tampered_or_foreign_tokens_are_invalid() {
        let key = TokenKey::derive("c", "secret");
        let token = it().encode(&key);
        let mut raw = STANDARD.decode(&token).unwrap();
        // Move the position forward by flipping a bit of it.
        raw[20] ^= 1;
        let forged = STANDARD.encode(&raw);
        let code =
            |t: &str, k: &TokenKey| ShardIterator::decode(t, k, 1_000_000).unwrap_err().code();
        assert_eq!(code(&forged, &key), "InvalidArgumentException");
        // Another cluster's (or secret's) tokens do not verify here.
        assert_eq!(
            code(&token, &TokenKey::derive("other", "secret")),
            "InvalidArgumentException"
        );
        assert_eq!(
            code(&token, &TokenKey::derive("c", "other")),
            "InvalidArgumentException"
        );
        for garbage in ["AAAA", "not base64!", "=", &token[..token.len() - 4]] {
            assert_eq!(code(garbage, &key), "InvalidArgumentException", "{garbage}");
        }
        assert_eq!(code("", &key), "ValidationException");
        assert_eq!(code(&"A".repeat(600), &key), "ValidationException");
        // A list token is not an iterator.
        let list = key.seal(&[KIND_LIST_SHARDS; 40]);
        assert_eq!(code(&list, &key), "InvalidArgumentException");
    }

    #[test]
    fn iterators_expire_after_five_minutes() {
        let key = TokenKey::derive("c", "secret");
        let token = it().encode(&key);
        assert!(ShardIterator::decode(&token, &key, 1_000_000 + ITERATOR_TTL_MS).is_ok());
        let e = ShardIterator::decode(&token, &key, 1_000_001 + ITERATOR_TTL_MS).unwrap_err();
        assert_eq!(e.code(), "ExpiredIteratorException");
    }
}
