//! How the key-value database lays keys onto a volume's pages, and its limits.
//!
//! A key (1..=1024 bytes) lives on page `fnv1a64(key) % (pg_count × pages_per_pg)`; the
//! page belongs to PG `page % pg_count` (docs/quorum-storage.md, "Model"). A page is a
//! sorted map of its keys; segments return its entries in key order.

use super::QuorumError;

/// Longest key.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value: 64 KiB.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most keys in one `mput`.
pub const MAX_MPUT_KEYS: usize = 100;

/// 64-bit FNV-1a.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// A volume's page layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub pg_count: u32,
    pub pages_per_pg: u32,
}

impl Geometry {
    pub fn page_count(&self) -> u64 {
        u64::from(self.pg_count.max(1)) * u64::from(self.pages_per_pg.max(1))
    }

    /// The page holding `key`.
    pub fn page_of(&self, key: &[u8]) -> u64 {
        fnv1a64(key) % self.page_count()
    }

    /// The PG holding `page`.
    pub fn pg_of(&self, page: u64) -> u32 {
        (page % u64::from(self.pg_count.max(1))) as u32
    }
}

pub fn check_key(key: &[u8]) -> Result<(), QuorumError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(QuorumError::InvalidKey(format!(
            "a key is 1 to {MAX_KEY_BYTES} bytes, not {}",
            key.len()
        )));
    }
    Ok(())
}

pub fn check_value(value: &[u8]) -> Result<(), QuorumError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(QuorumError::ValueTooLarge {
            size_bytes: value.len(),
            limit_bytes: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

/// The value of `key` among a page's entries.
pub fn lookup(entries: &[(Vec<u8>, Vec<u8>)], key: &[u8]) -> Option<Vec<u8>> {
    match entries.binary_search_by(|(k, _)| k.as_slice().cmp(key)) {
        Ok(i) => Some(entries[i].1.clone()),
        // Entries out of order (a segment that broke the contract): look at all of them.
        Err(_) => entries
            .iter()
            .find(|(k, _)| k.as_slice() == key)
            .map(|(_, v)| v.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn keys_map_into_the_volume_and_pages_into_pgs() {
        let g = Geometry {
            pg_count: 4,
            pages_per_pg: 256,
        };
        assert_eq!(g.page_count(), 1024);
        for key in [&b"a"[..], b"user/42", &[0xff; 1024]] {
            let page = g.page_of(key);
            assert!(page < 1024);
            assert_eq!(page, fnv1a64(key) % 1024);
            assert_eq!(g.pg_of(page), (page % 4) as u32);
        }
        assert_eq!(g.pg_of(7), 3);
    }

    #[test]
    fn key_and_value_limits() {
        assert!(matches!(check_key(b""), Err(QuorumError::InvalidKey(_))));
        assert!(check_key(&[1; 1024]).is_ok());
        assert!(matches!(
            check_key(&[1; 1025]),
            Err(QuorumError::InvalidKey(_))
        ));
        assert!(check_value(b"").is_ok());
        assert!(check_value(&vec![0; MAX_VALUE_BYTES]).is_ok());
        assert!(matches!(
            check_value(&vec![0; MAX_VALUE_BYTES + 1]),
            Err(QuorumError::ValueTooLarge {
                size_bytes: 65537,
                limit_bytes: 65536
            })
        ));
    }

    #[test]
    fn lookup_finds_keys_in_sorted_and_unsorted_pages() {
        let sorted = vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"c".to_vec(), b"3".to_vec()),
        ];
        assert_eq!(lookup(&sorted, b"c"), Some(b"3".to_vec()));
        assert_eq!(lookup(&sorted, b"b"), None);
        let unsorted = vec![
            (b"c".to_vec(), b"3".to_vec()),
            (b"a".to_vec(), b"1".to_vec()),
        ];
        assert_eq!(lookup(&unsorted, b"a"), Some(b"1".to_vec()));
    }
}
