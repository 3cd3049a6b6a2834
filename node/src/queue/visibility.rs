//! Where a receive finds messages: a queue's two visibility indexes and their floors.
//!
//! Both indexes are keyed (visible_at_ms, seq). `waiting` holds the messages never
//! received (available, or delayed until their visible_at); `received` holds the messages
//! received at least once (in flight until their visible_at, visible again after it). A
//! message has exactly one row, in the index its receive count names, unless it is moving
//! to another queue (then it has none).
//!
//! Why two indexes and floors: RocksDB keeps a deleted row as a tombstone until compaction,
//! and an iterator steps over every tombstone between where it seeks and the next live row.
//! Every receive and delete leaves one. With one index scanned from its start, each receive
//! walked the queue's whole delivered history since the last compaction (≈ 60% of a node's
//! CPU after a minute of load, and growing). Now:
//! - each index keeps a **floor**, stored in its own row: a position no greater than any row
//!   the index holds. Inserts lower it; a receive raises it to the first row it left in
//!   place. Scans seek to the floor, so tombstones below it are never visited again;
//! - in-flight messages live apart from waiting ones, so sends (which lower the waiting
//!   floor to "now") never make a receive walk back over the tombstones that deletes of
//!   in-flight messages leave ahead of "now".
//!
//! The same row keeps a floor for the queue's messages (sequence numbers only grow): FIFO
//! group scans and retention sweeps seek to the oldest message, not to the first deleted one.
//!
//! The floors row is absent in queues created before it existed: floors 0, a full scan once.

use std::collections::VecDeque;

use super::keys::{self, KIND_RECEIVED, KIND_WAITING};
use super::state::StoredMessage;
use crate::store::{decode, encode, StateRead, StateTxn, StoreError};

/// Rows fetched per page, at most (the first page is as small as the caller needs).
const MAX_PAGE: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    Waiting,
    Received,
}

impl Index {
    pub fn of(m: &StoredMessage) -> Index {
        if m.receive_count == 0 {
            Index::Waiting
        } else {
            Index::Received
        }
    }

    fn kind(self) -> u8 {
        match self {
            Index::Waiting => KIND_WAITING,
            Index::Received => KIND_RECEIVED,
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

const BOTH: [Index; 2] = [Index::Waiting, Index::Received];

/// The floors of one queue's indexes and of its messages, loaded with its record and saved
/// with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Floors {
    /// No row of index i is below `at[i]`.
    at: [u64; 2],
    /// No message has a sequence number below this one. Sequence numbers only grow, so it
    /// only rises: to the oldest message still there, when a scan looks for it. FIFO group
    /// scans and retention sweeps (both in sequence order) start from it.
    messages: u64,
    /// The lowest position inserted into index i by the command being applied (a scan
    /// that raises a floor must not raise it past them).
    inserted: [u64; 2],
    /// As stored (the floors row is written only when they moved).
    loaded: ([u64; 2], u64),
}

/// Floors of 0: a scan from each index's start (a queue from before floors existed).
impl Default for Floors {
    fn default() -> Floors {
        Floors {
            at: [0; 2],
            messages: 0,
            inserted: [u64::MAX; 2],
            loaded: ([0; 2], 0),
        }
    }
}

/// The floors row: (index floors, message floor).
type StoredFloors = ([u64; 2], u64);

impl Floors {
    /// The floors of a new queue: both indexes are empty.
    pub fn empty() -> Floors {
        Floors {
            at: [u64::MAX; 2],
            ..Floors::default()
        }
    }

    pub fn load(state: &dyn StateRead, queue: &str) -> Result<Floors, StoreError> {
        let (at, messages) = match state.get(&keys::floors(queue))? {
            Some(bytes) => decode::<StoredFloors>("queue floors", &bytes)?,
            None => ([0, 0], 0),
        };
        Ok(Floors {
            at,
            messages,
            loaded: (at, messages),
            ..Floors::default()
        })
    }

    /// Writes the floors if the command moved them.
    pub fn save(&self, txn: &mut dyn StateTxn, queue: &str) {
        let now: StoredFloors = (self.at, self.messages);
        if now != self.loaded {
            txn.put(&keys::floors(queue), encode(&now));
        }
    }

    /// The sequence number of the queue's oldest message (or `next_seq` when it has none),
    /// found from the message floor, which rises to it.
    pub fn oldest_message(
        &mut self,
        state: &dyn StateRead,
        queue: &str,
        next_seq: u64,
    ) -> Result<u64, StoreError> {
        let prefix = keys::space(keys::KIND_MESSAGE, queue);
        let from = keys::message(queue, self.messages);
        let oldest = match state.scan(&prefix, &from, 1)?.first() {
            Some((key, _)) => keys::trailing_seq(key).unwrap_or(self.messages),
            None => next_seq,
        };
        self.messages = self.messages.max(oldest);
        Ok(self.messages)
    }

    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// After a purge: both indexes are empty.
    pub fn reset_empty(&mut self) {
        self.at = [u64::MAX; 2];
        self.inserted = [u64::MAX; 2];
    }

    pub fn get(&self, index: Index) -> u64 {
        self.at[index.slot()]
    }

    fn lower(&mut self, index: Index, position: u64) {
        let i = index.slot();
        self.at[i] = self.at[i].min(position);
        self.inserted[i] = self.inserted[i].min(position);
    }

    /// Raise index's floor to `bound` (a lower bound of every row that was there before this
    /// command), but never past what this command inserted.
    fn raise(&mut self, index: Index, bound: u64) {
        let i = index.slot();
        self.at[i] = self.at[i].max(bound.min(self.inserted[i]));
    }
}

/// Add `m`'s row (at its visible_at) to the index its receive count names. The row's value
/// is the message's group (FIFO), so a receive passes over the rows of a group it has
/// already looked at without reading their messages.
pub fn insert(
    txn: &mut dyn StateTxn,
    floors: &mut Floors,
    queue: &str,
    seq: u64,
    m: &StoredMessage,
) {
    let index = Index::of(m);
    let group = m.group_id.as_deref().unwrap_or_default();
    txn.put(
        &row_key(index, queue, m.visible_at_ms, seq),
        group.as_bytes().to_vec(),
    );
    floors.lower(index, m.visible_at_ms);
}

/// Remove `m`'s row (where `m`, as stored, says it is).
pub fn remove(txn: &mut dyn StateTxn, queue: &str, seq: u64, m: &StoredMessage) {
    txn.delete(&row_key(Index::of(m), queue, m.visible_at_ms, seq));
}

/// The kinds of the index rows (for deleting a queue's rows).
pub const KINDS: [u8; 2] = [KIND_WAITING, KIND_RECEIVED];

fn row_key(index: Index, queue: &str, visible_at: u64, seq: u64) -> Vec<u8> {
    keys::indexed(index.kind(), queue, visible_at, seq)
}

/// One index row as a scan found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub index: Index,
    pub visible_at: u64,
    pub seq: u64,
    /// The message's group as the row names it (empty: none, or a row from before rows
    /// named it).
    pub group: Vec<u8>,
}

impl Row {
    pub fn key(&self, queue: &str) -> Vec<u8> {
        row_key(self.index, queue, self.visible_at, self.seq)
    }

    /// Whether `m` (as stored now) still has this row; a row that does not match its
    /// message is stale (left by an older layout, or already moved by this command).
    pub fn matches(&self, m: &StoredMessage) -> bool {
        Index::of(m) == self.index && m.visible_at_ms == self.visible_at
    }
}

/// One index read forward from its floor a page at a time.
struct Cursor {
    index: Index,
    prefix: Vec<u8>,
    from: Vec<u8>,
    rows: VecDeque<(u64, u64, Vec<u8>)>,
    page: usize,
    exhausted: bool,
    /// The position of the last row taken off this cursor.
    last_taken: Option<u64>,
}

impl Cursor {
    fn new(index: Index, queue: &str, floor: u64, page: usize) -> Cursor {
        let prefix = keys::space(index.kind(), queue);
        Cursor {
            index,
            from: keys::indexed(index.kind(), queue, floor, 0),
            prefix,
            rows: VecDeque::new(),
            page: page.clamp(1, MAX_PAGE),
            exhausted: false,
            last_taken: None,
        }
    }

    fn head(&mut self, state: &dyn StateRead) -> Result<Option<(u64, u64)>, StoreError> {
        if self.rows.is_empty() && !self.exhausted {
            let page = state.scan(&self.prefix, &self.from, self.page)?;
            self.exhausted = page.len() < self.page;
            if let Some((last, _)) = page.last() {
                self.from = keys::successor(last);
            }
            let at = self.prefix.len();
            for (key, group) in page {
                if let Some((visible_at, seq)) = keys::parse_indexed(&key, at) {
                    self.rows.push_back((visible_at, seq, group));
                }
            }
            self.page = (self.page * 4).min(MAX_PAGE);
        }
        Ok(self.rows.front().map(|(at, seq, _)| (*at, *seq)))
    }

    /// Take the head row off; its group.
    fn take(&mut self) -> Vec<u8> {
        match self.rows.pop_front() {
            Some((visible_at, _, group)) => {
                self.last_taken = Some(visible_at);
                group
            }
            None => Vec::new(),
        }
    }

    /// A lower bound of the rows this cursor has not taken.
    fn untaken_bound(&self, floor: u64) -> u64 {
        match self.rows.front() {
            Some((visible_at, _, _)) => *visible_at,
            None if self.exhausted => u64::MAX,
            None => self.last_taken.unwrap_or(floor),
        }
    }
}

/// The rows of both indexes that are due (visible_at <= now), merged in (visible_at, seq)
/// order, read from the floors. The caller takes each row and either consumes it (delivers,
/// moves or removes the message: its row is gone) or [`keep`](Due::keep)s it; `finish`
/// raises the floors to the first row left in place.
pub struct Due {
    cursors: [Cursor; 2],
    now: u64,
    kept: [u64; 2],
    seen: usize,
}

impl Due {
    /// `want`: how many rows the caller expects to consume (sizes the first page).
    pub fn new(queue: &str, floors: &Floors, now: u64, want: usize) -> Due {
        let page = want + 1;
        Due {
            cursors: BOTH.map(|i| Cursor::new(i, queue, floors.get(i), page)),
            now,
            kept: [u64::MAX; 2],
            seen: 0,
        }
    }

    /// The next due row, or None when no row is due any more.
    pub fn next(&mut self, state: &dyn StateRead) -> Result<Option<Row>, StoreError> {
        let mut best: Option<(usize, (u64, u64))> = None;
        for (i, c) in self.cursors.iter_mut().enumerate() {
            if let Some(head) = c.head(state)? {
                if head.0 <= self.now && best.is_none_or(|(_, b)| head < b) {
                    best = Some((i, head));
                }
            }
        }
        let Some((i, (visible_at, seq))) = best else {
            return Ok(None);
        };
        let group = self.cursors[i].take();
        self.seen += 1;
        Ok(Some(Row {
            index: self.cursors[i].index,
            visible_at,
            seq,
            group,
        }))
    }

    /// Rows taken so far.
    pub fn seen(&self) -> usize {
        self.seen
    }

    /// The caller left `row` in place: the floor of its index stays at or below it.
    pub fn keep(&mut self, row: &Row) {
        let k = &mut self.kept[row.index.slot()];
        *k = (*k).min(row.visible_at);
    }

    /// When the earliest row not yet due becomes due (call after `next` returned None).
    pub fn next_visible(&mut self, state: &dyn StateRead) -> Result<Option<u64>, StoreError> {
        let mut out: Option<u64> = None;
        for c in self.cursors.iter_mut() {
            if let Some((visible_at, _)) = c.head(state)? {
                out = Some(out.map_or(visible_at, |o| o.min(visible_at)));
            }
        }
        Ok(out)
    }

    /// Raise the floors past what this scan consumed.
    pub fn finish(self, floors: &mut Floors) {
        for (c, kept) in self.cursors.iter().zip(self.kept) {
            let bound = c.untaken_bound(floors.get(c.index)).min(kept);
            floors.raise(c.index, bound);
        }
    }
}

/// The rows of `index` past `now` (in flight or delayed), counted up to `budget`.
pub fn count_after(
    state: &dyn StateRead,
    floors: &Floors,
    queue: &str,
    index: Index,
    now: u64,
    budget: usize,
) -> Result<u64, StoreError> {
    let prefix = keys::space(index.kind(), queue);
    let from = keys::indexed(index.kind(), queue, floors.get(index).max(now + 1), 0);
    Ok(state.scan(&prefix, &from, budget)?.len() as u64)
}
