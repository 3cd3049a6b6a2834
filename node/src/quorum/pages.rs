//! Page images of a segment: a page is a sorted map of keys to values, and a log record's
//! redo is a list of put/delete operations applied in order. Pure: the segment host reads
//! the image and the records and writes the result (`segment_store` keeps the CRCs).

use std::collections::BTreeMap;

/// One page's entries in key order.
pub type Page = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageOp {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
}

/// Apply one record's operations, in order.
pub fn apply(page: &mut Page, ops: impl IntoIterator<Item = PageOp>) {
    for op in ops {
        match op {
            PageOp::Put { key, value } => {
                page.insert(key, value);
            }
            PageOp::Delete { key } => {
                page.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> PageOp {
        PageOp::Put {
            key: k.as_bytes().to_vec(),
            value: v.as_bytes().to_vec(),
        }
    }

    fn del(k: &str) -> PageOp {
        PageOp::Delete {
            key: k.as_bytes().to_vec(),
        }
    }

    #[test]
    fn ops_apply_in_order_and_entries_stay_sorted() {
        let mut page = Page::new();
        apply(
            &mut page,
            [put("b", "1"), put("a", "2"), del("b"), put("c", "3")],
        );
        apply(&mut page, [put("a", "4"), del("missing")]);
        let entries: Vec<(&[u8], &[u8])> = page
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        assert_eq!(
            entries,
            vec![(&b"a"[..], &b"4"[..]), (&b"c"[..], &b"3"[..])]
        );
    }
}
