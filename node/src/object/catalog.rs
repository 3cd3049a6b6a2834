//! The bucket catalog, kept in the meta group (group 0): every bucket name in the cluster,
//! its owner and its life-cycle state. It makes names globally unique and answers
//! ListBuckets; everything else about a bucket lives in the data group its name hashes to
//! (`state`).
//!
//! Creating or deleting a bucket touches two Raft groups, so neither is atomic. The catalog
//! entry's state makes every half-done step visible and every step idempotent, so a crash
//! anywhere is repaired by running the same operation again (by the client's retry, or by
//! a reconciler that looks at entries left `Creating` or `Deleting`):
//!
//! ```text
//! create(name, owner):
//!   1. meta  Register{name, owner, created_ms}  absent -> Creating; same owner -> the entry
//!            (Active: BucketAlreadyOwnedByYou, Deleting: OperationAborted,
//!             Creating: an earlier create stopped half way, go on);
//!            other owner -> BucketAlreadyExists
//!   2. data  CreateBucket{name, owner, created_ms: entry.created_ms}   (idempotent)
//!   3. meta  Activate{name}                                             (idempotent)
//! delete(name):
//!   1. meta  BeginDelete{name}     Active -> Deleting (Creating: OperationAborted)
//!   2. data  DeleteBucket{name}    Deleted, or NoSuchBucket when an earlier try got here;
//!                                  BucketNotEmpty -> meta CancelDelete, answer BucketNotEmpty
//!   3. meta  Unregister{name}      Deleting -> gone                     (idempotent)
//! ```
//!
//! Invariant: a data group holds a bucket only while the catalog has its entry (CreateBucket
//! runs under a `Creating` entry, Unregister runs after DeleteBucket), so a name is never
//! held in a data group by someone the catalog does not know. ListBuckets shows `Active`
//! entries only. A create that failed for good (its data group refused) is rolled back
//! with Unregister, which accepts `Creating` and `Deleting` entries but never `Active` ones.

use serde::{Deserialize, Serialize};

use super::model::{BucketName, ObjectError};
use crate::store::{decode, encode, StateRead, StateTxn, StoreError};

/// First byte of every catalog key in the meta group's state (1 is the cluster record).
pub const BUCKET_CATALOG_TAG: u8 = 2;
/// Largest page of ListBuckets.
pub const MAX_LIST_BUCKETS: u32 = 10_000;
/// Catalog rows one List may read (entries of other owners or in passing states are skipped).
const LIST_ROW_BUDGET: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogState {
    Creating,
    Active,
    Deleting,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub name: BucketName,
    pub owner: String,
    pub created_ms: u64,
    pub state: CatalogState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogCommand {
    Register {
        name: BucketName,
        owner: String,
        created_ms: u64,
    },
    Activate {
        name: BucketName,
    },
    BeginDelete {
        name: BucketName,
    },
    CancelDelete {
        name: BucketName,
    },
    Unregister {
        name: BucketName,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogQuery {
    Lookup {
        name: BucketName,
    },
    /// Active buckets in name order, of one owner or of all.
    List {
        owner: Option<String>,
        start_after: Option<BucketName>,
        limit: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogReply {
    /// `created`: this call added the entry; otherwise it is the existing one.
    Registered {
        entry: CatalogEntry,
        created: bool,
    },
    Updated(CatalogEntry),
    Unregistered {
        removed: bool,
    },
    Entry(Option<CatalogEntry>),
    /// `next_start_after` is set when more entries may follow.
    Buckets {
        buckets: Vec<CatalogEntry>,
        next_start_after: Option<BucketName>,
    },
}

pub type CatalogResult = Result<CatalogReply, ObjectError>;

fn entry_key(name: &BucketName) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.as_str().len() + 1);
    k.push(BUCKET_CATALOG_TAG);
    k.extend_from_slice(name.as_str().as_bytes());
    k
}

fn load(state: &dyn StateRead, name: &BucketName) -> Result<Option<CatalogEntry>, StoreError> {
    match state.get(&entry_key(name))? {
        Some(bytes) => Ok(Some(decode("bucket catalog entry", &bytes)?)),
        None => Ok(None),
    }
}

fn busy(name: &BucketName, state: CatalogState) -> ObjectError {
    let doing = match state {
        CatalogState::Creating => "being created",
        CatalogState::Deleting => "being deleted",
        CatalogState::Active => "in use",
    };
    ObjectError::OperationAborted(format!("bucket {name} is {doing}; try again"))
}

/// Move an entry to `to` if it is in one of `from` (already in `to`: no change).
fn transition(
    txn: &mut dyn StateTxn,
    name: &BucketName,
    from: &[CatalogState],
    to: CatalogState,
) -> Result<CatalogResult, StoreError> {
    let Some(mut entry) = load(txn, name)? else {
        return Ok(Err(ObjectError::NoSuchBucket(name.to_string())));
    };
    if entry.state == to {
        return Ok(Ok(CatalogReply::Updated(entry)));
    }
    if !from.contains(&entry.state) {
        return Ok(Err(busy(name, entry.state)));
    }
    entry.state = to;
    txn.put(&entry_key(name), encode(&entry));
    Ok(Ok(CatalogReply::Updated(entry)))
}

pub fn apply(txn: &mut dyn StateTxn, command: CatalogCommand) -> Result<CatalogResult, StoreError> {
    use CatalogState::*;
    match command {
        CatalogCommand::Register {
            name,
            owner,
            created_ms,
        } => Ok(match load(txn, &name)? {
            Some(entry) if entry.owner == owner => Ok(CatalogReply::Registered {
                entry,
                created: false,
            }),
            Some(_) => Err(ObjectError::BucketAlreadyExists),
            None => {
                let entry = CatalogEntry {
                    name: name.clone(),
                    owner,
                    created_ms,
                    state: Creating,
                };
                txn.put(&entry_key(&name), encode(&entry));
                Ok(CatalogReply::Registered {
                    entry,
                    created: true,
                })
            }
        }),
        CatalogCommand::Activate { name } => transition(txn, &name, &[Creating], Active),
        CatalogCommand::BeginDelete { name } => transition(txn, &name, &[Active], Deleting),
        CatalogCommand::CancelDelete { name } => transition(txn, &name, &[Deleting], Active),
        CatalogCommand::Unregister { name } => Ok(match load(txn, &name)? {
            None => Ok(CatalogReply::Unregistered { removed: false }),
            Some(entry) if entry.state == Active => Err(busy(&name, Active)),
            Some(_) => {
                txn.delete(&entry_key(&name));
                Ok(CatalogReply::Unregistered { removed: true })
            }
        }),
    }
}

pub fn read(state: &dyn StateRead, query: CatalogQuery) -> Result<CatalogResult, StoreError> {
    match query {
        CatalogQuery::Lookup { name } => Ok(Ok(CatalogReply::Entry(load(state, &name)?))),
        CatalogQuery::List {
            owner,
            start_after,
            limit,
        } => {
            let limit = limit.min(MAX_LIST_BUCKETS) as usize;
            let prefix = [BUCKET_CATALOG_TAG];
            let mut from = match &start_after {
                Some(name) => {
                    let mut k = entry_key(name);
                    k.push(0);
                    k
                }
                None => prefix.to_vec(),
            };
            let mut buckets = Vec::new();
            let mut rows_read = 0usize;
            let mut last_read: Option<BucketName> = None;
            loop {
                if limit == 0 {
                    return Ok(Ok(CatalogReply::Buckets {
                        buckets,
                        next_start_after: None,
                    }));
                }
                if rows_read >= LIST_ROW_BUDGET {
                    return Ok(Ok(CatalogReply::Buckets {
                        buckets,
                        next_start_after: last_read,
                    }));
                }
                let batch = (limit - buckets.len() + 1).clamp(16, 1000);
                let rows = state.scan(&prefix, &from, batch)?;
                rows_read += rows.len();
                let exhausted = rows.len() < batch;
                for (raw, value) in rows {
                    let entry: CatalogEntry = decode("bucket catalog entry", &value)?;
                    from = raw;
                    from.push(0);
                    let listed = entry.state == CatalogState::Active
                        && owner.as_ref().is_none_or(|o| *o == entry.owner);
                    if listed {
                        if buckets.len() == limit {
                            return Ok(Ok(CatalogReply::Buckets {
                                next_start_after: buckets
                                    .last()
                                    .map(|b: &CatalogEntry| b.name.clone()),
                                buckets,
                            }));
                        }
                        buckets.push(entry.clone());
                    }
                    last_read = Some(entry.name);
                }
                if exhausted {
                    return Ok(Ok(CatalogReply::Buckets {
                        buckets,
                        next_start_after: None,
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemState;

    fn name(n: &str) -> BucketName {
        BucketName::parse(n).unwrap()
    }

    fn run(s: &mut MemState, command: CatalogCommand) -> CatalogResult {
        apply(s, command).unwrap()
    }

    fn register(s: &mut MemState, n: &str, owner: &str) -> CatalogResult {
        run(
            s,
            CatalogCommand::Register {
                name: name(n),
                owner: owner.into(),
                created_ms: 10,
            },
        )
    }

    fn state_of(s: &MemState, n: &str) -> Option<CatalogState> {
        match read(s, CatalogQuery::Lookup { name: name(n) }).unwrap() {
            Ok(CatalogReply::Entry(entry)) => entry.map(|e| e.state),
            other => panic!("{other:?}"),
        }
    }

    fn list(
        s: &MemState,
        owner: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> (Vec<String>, Option<String>) {
        match read(
            s,
            CatalogQuery::List {
                owner: owner.map(Into::into),
                start_after: after.map(name),
                limit,
            },
        )
        .unwrap()
        {
            Ok(CatalogReply::Buckets {
                buckets,
                next_start_after,
            }) => (
                buckets.into_iter().map(|b| b.name.to_string()).collect(),
                next_start_after.map(|n| n.to_string()),
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_are_unique_and_registration_is_idempotent_per_owner() {
        let mut s = MemState::default();
        assert!(matches!(
            register(&mut s, "photos", "alice"),
            Ok(CatalogReply::Registered { created: true, .. })
        ));
        // A retry by the same owner sees the half-created entry and can finish the create.
        match register(&mut s, "photos", "alice") {
            Ok(CatalogReply::Registered { entry, created }) => {
                assert!(!created);
                assert_eq!(entry.state, CatalogState::Creating);
                assert_eq!(entry.created_ms, 10);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            register(&mut s, "photos", "bob"),
            Err(ObjectError::BucketAlreadyExists)
        );
        // Not listed until active.
        assert_eq!(list(&s, None, None, 100).0, Vec::<String>::new());
        run(
            &mut s,
            CatalogCommand::Activate {
                name: name("photos"),
            },
        )
        .unwrap();
        run(
            &mut s,
            CatalogCommand::Activate {
                name: name("photos"),
            },
        )
        .unwrap();
        assert_eq!(state_of(&s, "photos"), Some(CatalogState::Active));
        assert_eq!(list(&s, None, None, 100).0, ["photos"]);
    }

    #[test]
    fn delete_goes_through_deleting_and_can_be_cancelled() {
        let mut s = MemState::default();
        register(&mut s, "logs", "alice").unwrap();
        // A half-created bucket cannot be deleted, nor can an active one be unregistered.
        assert_eq!(
            run(&mut s, CatalogCommand::BeginDelete { name: name("logs") })
                .unwrap_err()
                .code(),
            "OperationAborted"
        );
        run(&mut s, CatalogCommand::Activate { name: name("logs") }).unwrap();
        assert_eq!(
            run(&mut s, CatalogCommand::Unregister { name: name("logs") })
                .unwrap_err()
                .code(),
            "OperationAborted"
        );
        run(&mut s, CatalogCommand::BeginDelete { name: name("logs") }).unwrap();
        run(&mut s, CatalogCommand::BeginDelete { name: name("logs") }).unwrap();
        assert_eq!(list(&s, None, None, 10).0, Vec::<String>::new());
        // A create racing the delete is told to retry.
        assert!(matches!(
            register(&mut s, "logs", "alice"),
            Ok(CatalogReply::Registered {
                entry: CatalogEntry {
                    state: CatalogState::Deleting,
                    ..
                },
                created: false
            })
        ));
        // The data group said BucketNotEmpty: back to active.
        run(&mut s, CatalogCommand::CancelDelete { name: name("logs") }).unwrap();
        assert_eq!(state_of(&s, "logs"), Some(CatalogState::Active));
        run(&mut s, CatalogCommand::BeginDelete { name: name("logs") }).unwrap();
        assert_eq!(
            run(&mut s, CatalogCommand::Unregister { name: name("logs") }),
            Ok(CatalogReply::Unregistered { removed: true })
        );
        assert_eq!(
            run(&mut s, CatalogCommand::Unregister { name: name("logs") }),
            Ok(CatalogReply::Unregistered { removed: false })
        );
        assert_eq!(state_of(&s, "logs"), None);
        assert_eq!(
            run(&mut s, CatalogCommand::BeginDelete { name: name("logs") })
                .unwrap_err()
                .code(),
            "NoSuchBucket"
        );
        // The name is free again, for anyone.
        assert!(register(&mut s, "logs", "bob").is_ok());
    }

    #[test]
    fn list_pages_by_name_and_filters_by_owner() {
        let mut s = MemState::default();
        for (n, owner) in [
            ("b-one", "alice"),
            ("a-two", "bob"),
            ("c-three", "alice"),
            ("d-four", "alice"),
        ] {
            register(&mut s, n, owner).unwrap();
            run(&mut s, CatalogCommand::Activate { name: name(n) }).unwrap();
        }
        register(&mut s, "bb-pending", "alice").unwrap();
        assert_eq!(
            list(&s, None, None, 100).0,
            ["a-two", "b-one", "c-three", "d-four"]
        );
        let (page, next) = list(&s, Some("alice"), None, 2);
        assert_eq!(page, ["b-one", "c-three"]);
        assert_eq!(next.as_deref(), Some("c-three"));
        let (page, next) = list(&s, Some("alice"), next.as_deref(), 2);
        assert_eq!(page, ["d-four"]);
        assert_eq!(next, None);
        assert_eq!(list(&s, None, None, 0).0, Vec::<String>::new());
    }
}
