//! KV commands, queries, replies and limits.

use serde::{Deserialize, Serialize};

pub const MAX_KEY_BYTES: usize = 4096;
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1024 * 1024;
pub const DEFAULT_SCAN_LIMIT: u32 = 1000;
pub const MAX_SCAN_LIMIT: u32 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvCommand {
    Put {
        key: Vec<u8>,
        /// One byte string on the wire (values run to megabytes).
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    Delete {
        key: Vec<u8>,
    },
    Cas {
        key: Vec<u8>,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvQuery {
    Get {
        key: Vec<u8>,
    },
    Scan {
        prefix: Vec<u8>,
        start_after: Vec<u8>,
        limit: u32,
    },
}

/// A stored value with the log index of the write that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioned {
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvReply {
    Put {
        version: u64,
    },
    Deleted {
        existed: bool,
    },
    Cas {
        succeeded: bool,
        current: Option<Versioned>,
    },
    Got(Option<Versioned>),
    Scanned {
        entries: Vec<(Vec<u8>, Versioned)>,
        truncated: bool,
    },
    /// The command could not be applied (bad bytes in the log); deterministic on every replica.
    Rejected(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    OutcomeUnknown(String),
    #[error("{0}")]
    Internal(String),
}

pub fn validate_key(key: &[u8]) -> Result<(), KvError> {
    if key.is_empty() {
        return Err(KvError::InvalidArgument("key must not be empty".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KvError::InvalidArgument(format!(
            "key is {} bytes; the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

pub fn validate_value(value: &[u8], max_value_bytes: usize) -> Result<(), KvError> {
    if value.len() > max_value_bytes {
        return Err(KvError::InvalidArgument(format!(
            "value is {} bytes; the limit is {max_value_bytes}",
            value.len()
        )));
    }
    Ok(())
}

pub fn validate_scan_limit(limit: u32) -> Result<u32, KvError> {
    match limit {
        0 => Ok(DEFAULT_SCAN_LIMIT),
        l if l <= MAX_SCAN_LIMIT => Ok(l),
        l => Err(KvError::InvalidArgument(format!(
            "limit {l} is over the maximum of {MAX_SCAN_LIMIT}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced_with_clear_messages() {
        assert!(validate_key(b"").is_err());
        assert!(validate_key(&vec![b'k'; MAX_KEY_BYTES]).is_ok());
        let err = validate_key(&vec![b'k'; MAX_KEY_BYTES + 1]).unwrap_err();
        assert_eq!(err.to_string(), "key is 4097 bytes; the limit is 4096");
        assert!(validate_value(&[0; 10], 10).is_ok());
        assert!(validate_value(&[0; 11], 10).is_err());
        assert_eq!(validate_scan_limit(0), Ok(DEFAULT_SCAN_LIMIT));
        assert!(validate_scan_limit(MAX_SCAN_LIMIT + 1).is_err());
    }
}
