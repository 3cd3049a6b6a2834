//! Encoding of node-to-node payloads (openraft messages, proposals, replies). Bytes from
//! the network are untrusted: decoding returns an error, never panics, and is bounded by
//! bincode's size limit so a hostile length prefix cannot allocate unbounded memory.

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Upper bound of one decoded message (a snapshot chunk or a batch of log entries).
pub const MAX_MESSAGE_BYTES: u64 = 64 * 1024 * 1024;

fn options() -> impl bincode::Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .allow_trailing_bytes()
        .with_limit(MAX_MESSAGE_BYTES)
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    options()
        .serialize(value)
        .unwrap_or_else(|e| panic!("encoding an owned message cannot fail: {e}"))
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    options()
        .deserialize(bytes)
        .map_err(|e| format!("malformed payload ({} bytes): {e}", bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode::<Vec<u64>>(&[0xff; 8]).is_err());
        assert!(decode::<String>(&[]).is_err());
        let bytes = encode(&vec![1u64, 2, 3]);
        assert_eq!(decode::<Vec<u64>>(&bytes).unwrap(), vec![1, 2, 3]);
    }
}
