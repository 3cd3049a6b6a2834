//! Key layout shared by every column family: an 8-byte big-endian group id, then the rest.
//! Big-endian keeps each group's keys contiguous and its log entries in index order.

pub type GroupId = u64;

pub fn group_prefix(group: GroupId) -> [u8; 8] {
    group.to_be_bytes()
}

pub fn group_key(group: GroupId, suffix: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + suffix.len());
    key.extend_from_slice(&group.to_be_bytes());
    key.extend_from_slice(suffix);
    key
}

pub fn log_key(group: GroupId, index: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&group.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

pub fn log_index_of(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(8..16)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// The exclusive upper bound of every key of `group`.
pub fn group_end(group: GroupId) -> Vec<u8> {
    match group.checked_add(1) {
        Some(next) => next.to_be_bytes().to_vec(),
        None => vec![0xff; 9],
    }
}

/// The smallest key greater than every key starting with `prefix` (None: no bound).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_by_group_then_index() {
        assert!(log_key(1, u64::MAX) < log_key(2, 0));
        assert!(log_key(1, 9) < log_key(1, 10));
        assert_eq!(log_index_of(&log_key(7, 42)), Some(42));
        assert!(log_key(1, u64::MAX).as_slice() < group_end(1).as_slice());
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[b'a', 0xff]), Some(b"b".to_vec()));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }
}
