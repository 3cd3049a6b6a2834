//! Key layout of the queue store inside a data group's state.
//!
//! Every key starts with [`QUEUE_TAG`] (byte 0 belongs to the Raft host, 1 to KV, 2 to
//! objects), then a kind byte, then the queue name with its length in front (names are at
//! most 80 bytes), then the kind's own suffix. Numbers are big-endian so keys sort by them.
//!
//! ```text
//! [3][1][len][queue]                          queue record
//! [3][2][len][queue][seq]                     message (seq: per-queue send order)
//! [3][3][len][queue][visible_at_ms][seq]      waiting index: messages never received
//! [3][4][len][queue][glen][group][seq]        FIFO: a message group's messages in order
//! [3][5][len][queue][dedup key]               FIFO deduplication window
//! [3][6][len][queue][attempt id]              FIFO ReceiveRequestAttemptId window
//! [3][7][len][queue][seq]                     a message on its way to another queue
//! [3][8][len][queue][visible_at_ms][seq]      received index: messages received at least once
//! [3][9][len][queue]                          floors of the two indexes (`visibility`)
//! ```

pub const QUEUE_TAG: u8 = 3;
pub const KIND_QUEUE: u8 = 1;
pub const KIND_MESSAGE: u8 = 2;
pub const KIND_WAITING: u8 = 3;
pub const KIND_GROUP: u8 = 4;
pub const KIND_DEDUP: u8 = 5;
pub const KIND_ATTEMPT: u8 = 6;
pub const KIND_MOVING: u8 = 7;
pub const KIND_RECEIVED: u8 = 8;
pub const KIND_FLOORS: u8 = 9;
pub const ALL_KINDS: [u8; 9] = [
    KIND_QUEUE,
    KIND_MESSAGE,
    KIND_WAITING,
    KIND_GROUP,
    KIND_DEDUP,
    KIND_ATTEMPT,
    KIND_MOVING,
    KIND_RECEIVED,
    KIND_FLOORS,
];

/// The prefix of every key of `kind` for `queue`.
pub fn space(kind: u8, queue: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + queue.len() + 24);
    k.push(QUEUE_TAG);
    k.push(kind);
    k.push(queue.len() as u8);
    k.extend_from_slice(queue.as_bytes());
    k
}

/// The prefix of every key of `kind`, whatever the queue.
pub fn kind_prefix(kind: u8) -> Vec<u8> {
    vec![QUEUE_TAG, kind]
}

pub fn queue(queue: &str) -> Vec<u8> {
    space(KIND_QUEUE, queue)
}

pub fn message(queue: &str, seq: u64) -> Vec<u8> {
    let mut k = space(KIND_MESSAGE, queue);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// A row of a visibility index (`kind` is [`KIND_WAITING`] or [`KIND_RECEIVED`]).
pub fn indexed(kind: u8, queue: &str, visible_at_ms: u64, seq: u64) -> Vec<u8> {
    let mut k = space(kind, queue);
    k.extend_from_slice(&visible_at_ms.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn floors(queue: &str) -> Vec<u8> {
    space(KIND_FLOORS, queue)
}

pub fn group_space(queue: &str, group: &str) -> Vec<u8> {
    let mut k = space(KIND_GROUP, queue);
    k.push(group.len() as u8);
    k.extend_from_slice(group.as_bytes());
    k
}

pub fn group(queue: &str, group: &str, seq: u64) -> Vec<u8> {
    let mut k = group_space(queue, group);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn dedup(queue: &str, dedup_key: &str) -> Vec<u8> {
    let mut k = space(KIND_DEDUP, queue);
    k.extend_from_slice(dedup_key.as_bytes());
    k
}

pub fn attempt(queue: &str, attempt_id: &str) -> Vec<u8> {
    let mut k = space(KIND_ATTEMPT, queue);
    k.extend_from_slice(attempt_id.as_bytes());
    k
}

pub fn moving(queue: &str, seq: u64) -> Vec<u8> {
    let mut k = space(KIND_MOVING, queue);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// The (visible_at_ms, seq) of a visibility-index key of a queue whose space is `prefix_len` long.
pub fn parse_indexed(key: &[u8], prefix_len: usize) -> Option<(u64, u64)> {
    Some((u64_at(key, prefix_len)?, u64_at(key, prefix_len + 8)?))
}

/// The trailing sequence number of a message, group or moving key.
pub fn trailing_seq(key: &[u8]) -> Option<u64> {
    u64_at(key, key.len().checked_sub(8)?)
}

/// The smallest key greater than `key`: where a scan resumes after it.
pub fn successor(key: &[u8]) -> Vec<u8> {
    let mut k = key.to_vec();
    k.push(0);
    k
}

/// The queue name of any queue-store key.
pub fn queue_of(key: &[u8]) -> Option<&str> {
    let len = *key.get(2)? as usize;
    std::str::from_utf8(key.get(3..3 + len)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_their_numbers_and_parse_back() {
        let visible = |at, seq| indexed(KIND_WAITING, "q", at, seq);
        assert!(visible(5, 9) < visible(6, 1));
        assert!(message("q", 1) < message("q", 256));
        let p = space(KIND_WAITING, "q").len();
        assert_eq!(parse_indexed(&visible(5, 9), p), Some((5, 9)));
        assert_eq!(trailing_seq(&group("q", "g", 42)), Some(42));
        assert_eq!(queue_of(&moving("orders", 3)), Some("orders"));
        // A queue's space never holds another queue's keys (the length comes first).
        assert!(!message("qq", 1).starts_with(&space(KIND_MESSAGE, "q")));
    }
}
