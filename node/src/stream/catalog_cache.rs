//! A node's short-lived copies of stream catalog records, so PutRecords, GetRecords and
//! GetShardIterator need not read the meta group linearizably on every request.
//!
//! Why a copy may be used, and for how long (the lease argument):
//!
//! - A copy is taken from a linearizable catalog read and is trusted for [`CATALOG_LEASE`]
//!   counted from the moment that read was *sent*, on this node's monotonic clock. So it
//!   reflects every catalog change acknowledged before it expires... except the changes
//!   committed during its lease.
//! - The catalog changes a stale copy could turn into a wrong answer are handled one by
//!   one. A reshard closes the parents' logs in their data groups before the step is
//!   recorded: a put to a closed shard is answered `Closed` by the data group and the
//!   service reads the catalog again; a shard the copy does not know (a new child), an
//!   iterator of another incarnation, or a closed shard read to its end (whose children
//!   GetRecords must name) make the service read the catalog again too. What the copy
//!   cannot learn from a data group is that an incarnation ended (DeleteStream) or that a
//!   name got a new one (CreateStream after a delete): those two operations wait
//!   [`CATALOG_LEASE`] + [`LEASE_MARGIN`] after they commit before they answer, so every
//!   copy taken before the commit has expired by the time anyone learns of it. A request
//!   that still used such a copy started before the change was acknowledged, and is
//!   ordered before it (its record went to the old incarnation, which the change removes).
//! - Everything else (DescribeStream, ListShards, the worker's decisions, reshard
//!   planning) keeps reading the catalog linearizably, and refreshes the copy.
//!
//! The margin covers the clocks of two nodes running at slightly different rates over one
//! lease (the usual lease assumption: bounded drift, not synchronized time).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::catalog::StreamRecord;
use super::model::StreamName;

/// How long a catalog copy is used, from the moment its read was sent.
pub const CATALOG_LEASE: Duration = Duration::from_millis(500);
/// Added to the lease by the operations that wait for every copy to expire.
pub const LEASE_MARGIN: Duration = Duration::from_millis(100);
/// Streams one node keeps copies of; past this the expired ones are dropped, then all.
const MAX_ENTRIES: usize = 4_096;

struct Entry {
    record: StreamRecord,
    /// When the read that produced `record` was sent.
    read_at: Instant,
}

/// Copies of catalog records under a lease (see the module's comment).
#[derive(Default)]
pub struct CatalogCache {
    entries: Mutex<HashMap<StreamName, Entry>>,
}

impl CatalogCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StreamName, Entry>> {
        // The map holds copies only; a panic elsewhere cannot leave it unusable.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The copy of `name`'s record, if its lease has not run out at `now`.
    pub fn get(&self, name: &StreamName, now: Instant) -> Option<StreamRecord> {
        let entries = self.lock();
        let entry = entries.get(name)?;
        (now.saturating_duration_since(entry.read_at) < CATALOG_LEASE).then(|| entry.record.clone())
    }

    /// Keep `record`, read by a linearizable read sent at `read_at`, unless a copy from a
    /// read sent later is already kept.
    pub fn put(&self, record: &StreamRecord, read_at: Instant) {
        let mut entries = self.lock();
        if entries
            .get(&record.name)
            .is_some_and(|e| e.read_at > read_at)
        {
            return;
        }
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&record.name) {
            let now = Instant::now();
            entries.retain(|_, e| now.saturating_duration_since(e.read_at) < CATALOG_LEASE);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            record.name.clone(),
            Entry {
                record: record.clone(),
                read_at,
            },
        );
    }

    /// Forget `name`'s copy (a read found the stream gone, or this node changed it).
    pub fn forget(&self, name: &StreamName) {
        self.lock().remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::catalog::StreamMode;

    fn record(name: &str, incarnation: u64) -> StreamRecord {
        StreamRecord::new(
            StreamName::parse(name).unwrap(),
            incarnation,
            2,
            StreamMode::Provisioned,
            0,
        )
        .unwrap()
    }

    #[test]
    fn a_copy_lives_for_the_lease_counted_from_its_read() {
        let cache = CatalogCache::default();
        let name = StreamName::parse("s").unwrap();
        let t0 = Instant::now();
        assert!(cache.get(&name, t0).is_none());
        cache.put(&record("s", 1), t0);
        assert_eq!(cache.get(&name, t0).unwrap().incarnation, 1);
        let almost = t0 + CATALOG_LEASE - Duration::from_millis(1);
        assert!(cache.get(&name, almost).is_some());
        assert!(cache.get(&name, t0 + CATALOG_LEASE).is_none());
        // A clock read before the copy's own read does not make it expire.
        assert!(cache
            .get(
                &name,
                t0.checked_sub(Duration::from_millis(5)).unwrap_or(t0)
            )
            .is_some());
        cache.forget(&name);
        assert!(cache.get(&name, t0).is_none());
    }

    #[test]
    fn a_read_sent_earlier_never_replaces_one_sent_later() {
        let cache = CatalogCache::default();
        let name = StreamName::parse("s").unwrap();
        let t0 = Instant::now();
        let later = t0 + Duration::from_millis(10);
        cache.put(&record("s", 2), later);
        // An older read that answered last (the stream recreated in between).
        cache.put(&record("s", 1), t0);
        assert_eq!(cache.get(&name, later).unwrap().incarnation, 2);
        cache.put(&record("s", 3), later + Duration::from_millis(1));
        assert_eq!(cache.get(&name, later).unwrap().incarnation, 3);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = CatalogCache::default();
        let t0 = Instant::now();
        for i in 0..MAX_ENTRIES + 10 {
            cache.put(&record(&format!("s{i}"), 1), t0);
        }
        assert!(cache.lock().len() <= MAX_ENTRIES);
        let last = StreamName::parse(&format!("s{}", MAX_ENTRIES + 9)).unwrap();
        assert!(cache.get(&last, t0).is_some());
    }
}
