//! Key -> data group. A stable hash (64-bit FNV-1a, fixed here forever: changing it would
//! move every key) modulo the number of data groups, fixed at cluster creation.

use super::directory::GroupId;

pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Data groups are numbered 1..=data_groups (group 0 is meta).
pub fn data_group_for_key(key: &[u8], data_groups: u64) -> GroupId {
    1 + stable_hash(key) % data_groups.max(1)
}

/// The data group holding a bucket's metadata (its record, versions and uploads).
pub fn group_for_bucket(bucket: &str, data_groups: u64) -> GroupId {
    data_group_for_key(bucket.as_bytes(), data_groups)
}

/// The data group holding a queue (its record and messages). Queue names are hashed with
/// a prefix so a queue and a bucket of the same name are placed independently.
pub fn group_for_queue(queue: &str, data_groups: u64) -> GroupId {
    let mut key = b"queue/".to_vec();
    key.extend_from_slice(queue.as_bytes());
    data_group_for_key(&key, data_groups)
}

/// The data group holding one shard's log: the hash of `stream/<name>/<shard>`, so a
/// stream's shards spread over the data groups (and a stream's name is placed apart from
/// a queue or bucket of the same name). The shard is its number as Kinesis shows it.
pub fn group_for_shard(stream: &str, shard: &str, data_groups: u64) -> GroupId {
    let key = format!("stream/{stream}/{shard}");
    data_group_for_key(key.as_bytes(), data_groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_the_published_fnv1a() {
        assert_eq!(stable_hash(b""), 0xcbf29ce484222325);
        assert_eq!(stable_hash(b"a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn a_stream_s_shards_spread_over_the_data_groups() {
        let groups: std::collections::BTreeSet<GroupId> = (0..64)
            .map(|i| group_for_shard("clicks", &format!("shardId-{i:012}"), 6))
            .collect();
        assert_eq!(groups.len(), 6);
        assert_eq!(
            group_for_shard("a", "shardId-000000000000", 6),
            data_group_for_key(b"stream/a/shardId-000000000000", 6)
        );
    }

    #[test]
    fn keys_spread_over_every_data_group() {
        let mut counts = [0u32; 6];
        for i in 0..6000 {
            let g = data_group_for_key(format!("key-{i}").as_bytes(), 6);
            assert!((1..=6).contains(&g));
            counts[(g - 1) as usize] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "{counts:?}");
        }
    }
}
