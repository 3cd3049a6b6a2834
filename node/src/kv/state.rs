//! The KV store's deterministic state: pure functions over a group's key-value view.
//! A user key `k` is stored under `[KV_TAG] ++ k` with a [`Versioned`] value.

use super::model::{KvCommand, KvQuery, KvReply, Versioned};
use crate::store::{decode, encode, StateRead, StateTxn, StoreError};

/// First byte of every KV key in a data group's state.
pub const KV_TAG: u8 = 1;

fn data_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(KV_TAG);
    k.extend_from_slice(key);
    k
}

fn load(state: &dyn StateRead, key: &[u8]) -> Result<Option<Versioned>, StoreError> {
    match state.get(&data_key(key))? {
        Some(bytes) => Ok(Some(decode("kv value", &bytes)?)),
        None => Ok(None),
    }
}

fn store(txn: &mut dyn StateTxn, key: &[u8], value: Vec<u8>, version: u64) -> Versioned {
    let v = Versioned { value, version };
    txn.put(&data_key(key), encode(&v));
    v
}

pub fn apply(
    txn: &mut dyn StateTxn,
    command: KvCommand,
    log_index: u64,
) -> Result<KvReply, StoreError> {
    Ok(match command {
        KvCommand::Put { key, value } => {
            store(txn, &key, value, log_index);
            KvReply::Put { version: log_index }
        }
        KvCommand::Delete { key } => {
            let existed = load(txn, &key)?.is_some();
            txn.delete(&data_key(&key));
            KvReply::Deleted { existed }
        }
        KvCommand::Cas { key, expected, new } => {
            let current = load(txn, &key)?;
            if current.as_ref().map(|v| &v.value) != expected.as_ref() {
                return Ok(KvReply::Cas {
                    succeeded: false,
                    current,
                });
            }
            let current = match new {
                Some(value) => Some(store(txn, &key, value, log_index)),
                None => {
                    txn.delete(&data_key(&key));
                    None
                }
            };
            KvReply::Cas {
                succeeded: true,
                current,
            }
        }
    })
}

pub fn read(state: &dyn StateRead, query: KvQuery) -> Result<KvReply, StoreError> {
    Ok(match query {
        KvQuery::Get { key } => KvReply::Got(load(state, &key)?),
        KvQuery::Scan {
            prefix,
            start_after,
            limit,
        } => {
            let prefix_key = data_key(&prefix);
            let mut from = data_key(&start_after);
            // Strictly after `start_after`: the next possible key is start_after ++ 0x00.
            if !start_after.is_empty() {
                from.push(0);
            }
            let rows = state.scan(&prefix_key, &from, limit as usize + 1)?;
            let truncated = rows.len() > limit as usize;
            let mut entries = Vec::with_capacity(rows.len().min(limit as usize));
            for (key, value) in rows.into_iter().take(limit as usize) {
                entries.push((key[1..].to_vec(), decode("kv value", &value)?));
            }
            KvReply::Scanned { entries, truncated }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemState;

    fn cas(key: &str, expected: Option<&str>, new: Option<&str>) -> KvCommand {
        KvCommand::Cas {
            key: key.into(),
            expected: expected.map(Into::into),
            new: new.map(Into::into),
        }
    }

    #[test]
    fn put_get_delete_carry_versions() {
        let mut s = MemState::default();
        let put = KvCommand::Put {
            key: b"a".to_vec(),
            value: b"1".to_vec(),
        };
        assert_eq!(apply(&mut s, put, 7).unwrap(), KvReply::Put { version: 7 });
        let got = read(&s, KvQuery::Get { key: b"a".to_vec() }).unwrap();
        assert_eq!(
            got,
            KvReply::Got(Some(Versioned {
                value: b"1".to_vec(),
                version: 7
            }))
        );
        let del = KvCommand::Delete { key: b"a".to_vec() };
        assert_eq!(
            apply(&mut s, del.clone(), 8).unwrap(),
            KvReply::Deleted { existed: true }
        );
        assert_eq!(
            apply(&mut s, del, 9).unwrap(),
            KvReply::Deleted { existed: false }
        );
        assert_eq!(
            read(&s, KvQuery::Get { key: b"a".to_vec() }).unwrap(),
            KvReply::Got(None)
        );
    }

    #[test]
    fn cas_succeeds_only_on_a_match() {
        let mut s = MemState::default();
        // Absent expected: create only if missing.
        assert!(matches!(
            apply(&mut s, cas("k", None, Some("1")), 1).unwrap(),
            KvReply::Cas {
                succeeded: true,
                ..
            }
        ));
        match apply(&mut s, cas("k", None, Some("2")), 2).unwrap() {
            KvReply::Cas { succeeded, current } => {
                assert!(!succeeded);
                assert_eq!(current.unwrap().value, b"1");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            apply(&mut s, cas("k", Some("1"), Some("3")), 3).unwrap(),
            KvReply::Cas {
                succeeded: true,
                ..
            }
        ));
        assert!(matches!(
            apply(&mut s, cas("k", Some("1"), Some("4")), 4).unwrap(),
            KvReply::Cas {
                succeeded: false,
                ..
            }
        ));
        // Expected value, no new value: delete on match.
        assert!(matches!(
            apply(&mut s, cas("k", Some("3"), None), 5).unwrap(),
            KvReply::Cas {
                succeeded: true,
                current: None
            }
        ));
        assert_eq!(
            read(&s, KvQuery::Get { key: b"k".to_vec() }).unwrap(),
            KvReply::Got(None)
        );
    }

    #[test]
    fn scan_pages_through_a_prefix_in_order() {
        let mut s = MemState::default();
        for k in ["a/3", "a/1", "b/1", "a/2", "a"] {
            apply(
                &mut s,
                KvCommand::Put {
                    key: k.into(),
                    value: k.into(),
                },
                1,
            )
            .unwrap();
        }
        let scan = |start: &str, limit| {
            read(
                &s,
                KvQuery::Scan {
                    prefix: b"a/".to_vec(),
                    start_after: start.into(),
                    limit,
                },
            )
            .unwrap()
        };
        match scan("", 2) {
            KvReply::Scanned { entries, truncated } => {
                let keys: Vec<_> = entries
                    .iter()
                    .map(|(k, _)| String::from_utf8(k.clone()).unwrap())
                    .collect();
                assert_eq!(keys, ["a/1", "a/2"]);
                assert!(truncated);
            }
            other => panic!("{other:?}"),
        }
        match scan("a/2", 10) {
            KvReply::Scanned { entries, truncated } => {
                assert_eq!(entries.len(), 1);
                assert_eq!(entries[0].0, b"a/3");
                assert!(!truncated);
            }
            other => panic!("{other:?}"),
        }
    }
}
