//! Where the nodes place a workload's data: the data group of a key, computed exactly as
//! `node/src/cluster/routing.rs` computes it (64-bit FNV-1a of the key, modulo the number
//! of data groups, from 1; a published hash the nodes fix for good). Only used to aim the
//! nemesis's leader-targeted faults at the groups a workload's requests go to; nothing
//! checked depends on it.

/// 64-bit FNV-1a, the nodes' `stable_hash`.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The data group (from 1) of `key` in a cluster of `data_groups` data groups.
pub fn data_group_for_key(key: &[u8], data_groups: u64) -> u64 {
    1 + stable_hash(key) % data_groups.max(1)
}

/// The data group of queue `name`: the key `queue/<name>` (`group_for_queue`).
pub fn queue_group(name: &str, data_groups: u64) -> u64 {
    data_group_for_key(format!("queue/{name}").as_bytes(), data_groups)
}

/// The data group of one shard's log: the key `stream/<stream>/<shard>`, the shard as
/// Kinesis names it (`shardId-000000000003`) (`group_for_shard`).
pub fn shard_group(stream: &str, shard: &str, data_groups: u64) -> u64 {
    data_group_for_key(format!("stream/{stream}/{shard}").as_bytes(), data_groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_the_published_fnv1a() {
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(data_group_for_key(b"x", 0), 1);
    }

    #[test]
    fn shards_are_placed_by_stream_and_shard_id() {
        assert_eq!(
            shard_group("a", "shardId-000000000000", 6),
            data_group_for_key(b"stream/a/shardId-000000000000", 6)
        );
        // A stream's shards spread over the groups, as the node's own test expects.
        let groups: std::collections::BTreeSet<u64> = (0..64)
            .map(|i| shard_group("clicks", &format!("shardId-{i:012}"), 6))
            .collect();
        assert_eq!(groups.len(), 6);
    }
}
