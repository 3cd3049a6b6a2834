//! Stream operations on the edge: create, delete, describe, list streams and shards,
//! retention, tags, limits, and resharding (split, merge, UpdateShardCount).

use std::sync::Arc;

use serde_json::{json, Value};

use super::errors::KinesisError;
use super::wire::{
    self, int_in, mode_json, required, shard_json, timestamp, AddTagsInput, CreateStreamInput,
    DeleteStreamInput, DescribeStreamInput, ListShardsInput, ListStreamsInput, ListTagsInput,
    MergeShardsInput, RemoveTagsInput, ResourceTagsInput, RetentionInput, SplitShardInput,
    StreamRef, UpdateShardCountInput,
};
use crate::stream::catalog::{
    ReshardRequest, StreamMode, StreamRecord, MAX_SHARDS_PER_STREAM, MAX_TAGS,
};
use crate::stream::catalog_state::MAX_LIST_STREAMS;
use crate::stream::model::{parse_hash_key_field, ShardId, StreamError, StreamName};
use crate::stream::paging::{self, ListShardsToken, ShardFilter};
use crate::stream::service::{now_ms, shard_named, StreamService};

type Reply = Result<Value, KinesisError>;

/// Tags one AddTagsToStream or RemoveTagsFromStream may carry.
const MAX_TAGS_PER_CALL: usize = 10;
/// On-demand streams an account may have (DescribeLimits).
const ON_DEMAND_STREAM_LIMIT: u32 = 50;

pub async fn create(s: &StreamService, input: CreateStreamInput) -> Reply {
    let name = StreamName::parse(&required("streamName", input.stream_name)?)?;
    let shard_count = int_in("shardCount", input.shard_count, 1, i64::from(u32::MAX))?;
    let mode = match input.stream_mode_details.and_then(|d| d.stream_mode) {
        Some(m) => Some(StreamMode::parse(&m)?),
        None => None,
    };
    let tags = input.tags.unwrap_or_default();
    if tags.len() > MAX_TAGS {
        return Err(StreamError::constraint(
            "tags",
            format!("{} tags", tags.len()),
            &format!("Member must have length less than or equal to {MAX_TAGS}"),
        )
        .into());
    }
    s.create_stream(name, shard_count, mode, tags).await?;
    Ok(json!({}))
}

pub async fn delete(s: &StreamService, input: DeleteStreamInput) -> Reply {
    // Without EnforceConsumerDeletion a stream with registered consumers is refused.
    s.delete_stream(
        &input.stream.stream()?,
        input.enforce_consumer_deletion.unwrap_or(false),
    )
    .await?;
    Ok(json!({}))
}

fn description(record: &StreamRecord, shards: Vec<Value>, more: bool) -> Value {
    json!({
        "StreamName": record.name.as_str(),
        "StreamARN": record.arn(),
        "StreamStatus": record.status.as_str(),
        "StreamModeDetails": mode_json(record),
        "Shards": shards,
        "HasMoreShards": more,
        "RetentionPeriodHours": record.retention_hours,
        "StreamCreationTimestamp": timestamp(record.created_ms),
        "EnhancedMonitoring": [{ "ShardLevelMetrics": [] }],
        "EncryptionType": "NONE",
    })
}

pub async fn describe(s: &StreamService, input: DescribeStreamInput) -> Reply {
    let name = input.stream.stream()?;
    let limit = int_in("limit", input.limit, 1, 10_000)?.unwrap_or(100) as usize;
    let record = s.stream(&name).await?;
    let after = match &input.exclusive_start_shard_id {
        Some(id) => Some(ShardId::parse(id).map_err(|_| {
            StreamError::ResourceNotFound(format!("Shard {id} does not exist in stream {name}"))
        })?),
        None => None,
    };
    let retention = s.settings().retention_ms(record.retention_hours);
    let shards = paging::select(
        &record,
        ShardFilter::FromTrimHorizon,
        after,
        now_ms(),
        retention,
    );
    let more = shards.len() > limit;
    let page: Vec<Value> = shards.into_iter().take(limit).map(shard_json).collect();
    Ok(json!({ "StreamDescription": description(&record, page, more) }))
}

pub async fn describe_summary(s: &StreamService, input: StreamRef) -> Reply {
    let record = s.stream(&input.stream()?).await?;
    let consumers = s.consumer_count(&record.name).await?;
    Ok(json!({
        "StreamDescriptionSummary": {
            "StreamName": record.name.as_str(),
            "StreamARN": record.arn(),
            "StreamStatus": record.status.as_str(),
            "StreamModeDetails": mode_json(&record),
            "RetentionPeriodHours": record.retention_hours,
            "StreamCreationTimestamp": timestamp(record.created_ms),
            "EnhancedMonitoring": [{ "ShardLevelMetrics": [] }],
            "EncryptionType": "NONE",
            "OpenShardCount": record.open_shard_count(),
            "ConsumerCount": consumers,
        }
    }))
}

pub async fn list_streams(s: &StreamService, input: ListStreamsInput) -> Reply {
    let limit = int_in("limit", input.limit, 1, i64::from(MAX_LIST_STREAMS))?.unwrap_or(100);
    let after = match (&input.next_token, &input.exclusive_start_stream_name) {
        (Some(token), _) => Some(paging::open_list_streams_token(token, s.token_key())?),
        (None, Some(name)) => Some(StreamName::parse(name)?),
        (None, None) => None,
    };
    let (streams, more) = s.list_streams(after, limit).await?;
    let names: Vec<&str> = streams.iter().map(|x| x.name.as_str()).collect();
    let summaries: Vec<Value> = streams
        .iter()
        .map(|x| {
            json!({
                "StreamName": x.name.as_str(),
                "StreamARN": x.name.arn(),
                "StreamStatus": x.status.as_str(),
                "StreamModeDetails": { "StreamMode": x.mode.as_str() },
                "StreamCreationTimestamp": timestamp(x.created_ms),
            })
        })
        .collect();
    let mut out = json!({
        "StreamNames": names,
        "HasMoreStreams": more,
        "StreamSummaries": summaries,
    });
    if let (true, Some(last)) = (more, streams.last()) {
        out["NextToken"] = json!(paging::list_streams_token(&last.name, s.token_key()));
    }
    Ok(out)
}

fn shard_filter(input: Option<wire::ShardFilterInput>) -> Result<ShardFilter, KinesisError> {
    let Some(f) = input else {
        return Ok(ShardFilter::FromTrimHorizon);
    };
    let kind = required("shardFilter.type", f.kind)?;
    let timestamp = |v: Option<Value>| -> Result<u64, KinesisError> {
        let v = v.ok_or_else(|| {
            StreamError::invalid(format!(
                "Timestamp must be provided for ShardFilter type {kind}."
            ))
        })?;
        wire::millis_of("ShardFilter.Timestamp", &v)
    };
    Ok(match kind.as_str() {
        "AFTER_SHARD_ID" => {
            let id = f.shard_id.ok_or_else(|| {
                StreamError::invalid("ShardId must be provided for ShardFilter type AFTER_SHARD_ID.")
            })?;
            ShardFilter::AfterShardId(ShardId::parse(&id)?)
        }
        "AT_TRIM_HORIZON" => ShardFilter::AtTrimHorizon,
        "FROM_TRIM_HORIZON" => ShardFilter::FromTrimHorizon,
        "AT_LATEST" => ShardFilter::AtLatest,
        "AT_TIMESTAMP" => ShardFilter::AtTimestamp(timestamp(f.timestamp)?),
        "FROM_TIMESTAMP" => ShardFilter::FromTimestamp(timestamp(f.timestamp)?),
        other => {
            return Err(StreamError::constraint(
                "shardFilter.type",
                other,
                "Member must satisfy enum value set: [AT_LATEST, AT_TIMESTAMP, AT_TRIM_HORIZON, FROM_TIMESTAMP, FROM_TRIM_HORIZON, AFTER_SHARD_ID]",
            )
            .into())
        }
    })
}

pub async fn list_shards(s: &StreamService, input: ListShardsInput) -> Reply {
    let max = int_in("maxResults", input.max_results, 1, 10_000)?.unwrap_or(1000) as usize;
    let now = now_ms();
    let (record, after, filter) = match &input.next_token {
        Some(token) => {
            if input.stream.stream_name.is_some() || input.exclusive_start_shard_id.is_some() {
                return Err(StreamError::invalid(
                    "NextToken and StreamName or ExclusiveStartShardId cannot be provided together.",
                )
                .into());
            }
            let t = ListShardsToken::decode(token, s.token_key(), now)?;
            let record = s.stream(&t.stream).await?;
            if record.incarnation != t.incarnation {
                return Err(StreamError::not_found(&t.stream).into());
            }
            (record, Some(t.after), t.filter)
        }
        None => {
            let record = s.stream(&input.stream.stream()?).await?;
            let after = match &input.exclusive_start_shard_id {
                Some(id) => Some(ShardId::parse(id)?),
                None => None,
            };
            (record, after, shard_filter(input.shard_filter)?)
        }
    };
    let retention = s.settings().retention_ms(record.retention_hours);
    let shards = paging::select(&record, filter, after, now, retention);
    let more = shards.len() > max;
    let page: Vec<_> = shards.into_iter().take(max).collect();
    let mut out = json!({ "Shards": page.iter().map(|x| shard_json(x)).collect::<Vec<_>>() });
    if let (true, Some(last)) = (more, page.last()) {
        let token = ListShardsToken {
            stream: record.name.clone(),
            incarnation: record.incarnation,
            after: last.id,
            filter,
            issued_ms: now,
        };
        out["NextToken"] = json!(token.encode(s.token_key()));
    }
    Ok(out)
}

pub async fn retention(s: &StreamService, input: RetentionInput, increase: bool) -> Reply {
    let name = input.stream.stream()?;
    let hours = required("retentionPeriodHours", input.retention_period_hours)?;
    let hours = u32::try_from(hours).map_err(|_| {
        StreamError::invalid(format!("Retention period {hours} hours is not valid."))
    })?;
    s.set_retention(&name, hours, increase).await?;
    Ok(json!({}))
}

pub async fn add_tags(s: &StreamService, input: AddTagsInput) -> Reply {
    let name = input.stream.stream()?;
    let tags = required("tags", input.tags)?;
    if tags.is_empty() || tags.len() > MAX_TAGS_PER_CALL {
        return Err(StreamError::constraint(
            "tags",
            format!("{} tags", tags.len()),
            &format!("Member must have length between 1 and {MAX_TAGS_PER_CALL}"),
        )
        .into());
    }
    s.add_tags(&name, tags).await?;
    Ok(json!({}))
}

pub async fn remove_tags(s: &StreamService, input: RemoveTagsInput) -> Reply {
    let name = input.stream.stream()?;
    let keys = required("tagKeys", input.tag_keys)?;
    if keys.is_empty() || keys.len() > MAX_TAGS_PER_CALL {
        return Err(StreamError::constraint(
            "tagKeys",
            format!("{} keys", keys.len()),
            &format!("Member must have length between 1 and {MAX_TAGS_PER_CALL}"),
        )
        .into());
    }
    s.remove_tags(&name, keys).await?;
    Ok(json!({}))
}

pub async fn list_tags(s: &StreamService, input: ListTagsInput) -> Reply {
    let record = s.stream(&input.stream.stream()?).await?;
    let limit = int_in("limit", input.limit, 1, 50)?.unwrap_or(50) as usize;
    let tags: Vec<(&String, &String)> = record
        .tags
        .iter()
        .filter(|(k, _)| {
            input
                .exclusive_start_tag_key
                .as_ref()
                .is_none_or(|start| *k > start)
        })
        .collect();
    let more = tags.len() > limit;
    let page: Vec<Value> = tags
        .into_iter()
        .take(limit)
        .map(|(k, v)| json!({ "Key": k, "Value": v }))
        .collect();
    Ok(json!({ "Tags": page, "HasMoreTags": more }))
}

/// The stream a ResourceARN names (only stream ARNs: Stratus has no consumers).
fn resource_stream(arn: Option<String>) -> Result<StreamName, StreamError> {
    let arn = required("resourceARN", arn)?;
    wire::stream_of(None, Some(&arn))
}

pub async fn tag_resource(s: &StreamService, input: ResourceTagsInput) -> Reply {
    let name = resource_stream(input.resource_arn)?;
    let tags = required("tags", input.tags)?;
    if tags.is_empty() || tags.len() > MAX_TAGS {
        return Err(StreamError::constraint(
            "tags",
            format!("{} tags", tags.len()),
            &format!("Member must have length between 1 and {MAX_TAGS}"),
        )
        .into());
    }
    s.add_tags(&name, tags).await?;
    Ok(json!({}))
}

pub async fn untag_resource(s: &StreamService, input: ResourceTagsInput) -> Reply {
    let name = resource_stream(input.resource_arn)?;
    let keys = required("tagKeys", input.tag_keys)?;
    if keys.is_empty() || keys.len() > MAX_TAGS {
        return Err(StreamError::constraint(
            "tagKeys",
            format!("{} keys", keys.len()),
            &format!("Member must have length between 1 and {MAX_TAGS}"),
        )
        .into());
    }
    s.remove_tags(&name, keys).await?;
    Ok(json!({}))
}

pub async fn list_tags_for_resource(s: &StreamService, input: ResourceTagsInput) -> Reply {
    let record = s.stream(&resource_stream(input.resource_arn)?).await?;
    let tags: Vec<Value> = record
        .tags
        .iter()
        .map(|(k, v)| json!({ "Key": k, "Value": v }))
        .collect();
    Ok(json!({ "Tags": tags }))
}

pub async fn describe_limits(s: &StreamService) -> Reply {
    let (mut open, mut on_demand) = (0u32, 0u32);
    let mut after = None;
    loop {
        let (streams, more) = s.list_streams(after, MAX_LIST_STREAMS).await?;
        for x in &streams {
            open += x.open_shards;
            on_demand += u32::from(x.mode == StreamMode::OnDemand);
        }
        match (more, streams.last()) {
            (true, Some(last)) => after = Some(last.name.clone()),
            _ => break,
        }
    }
    Ok(json!({
        "ShardLimit": MAX_SHARDS_PER_STREAM,
        "OpenShardCount": open,
        "OnDemandStreamCount": on_demand,
        "OnDemandStreamCountLimit": ON_DEMAND_STREAM_LIMIT,
    }))
}

pub async fn split(s: &Arc<StreamService>, input: SplitShardInput) -> Reply {
    let name = input.stream.stream()?;
    let shard = required("shardToSplit", input.shard_to_split)?;
    let key = required("newStartingHashKey", input.new_starting_hash_key)?;
    let new_starting_hash_key = parse_hash_key_field("newStartingHashKey", &key)?;
    let record = s.stream(&name).await?;
    let shard = shard_named(&record, &shard)?.id;
    s.reshard(
        &name,
        ReshardRequest::Split {
            shard,
            new_starting_hash_key,
        },
    )
    .await?;
    Ok(json!({}))
}

pub async fn merge(s: &Arc<StreamService>, input: MergeShardsInput) -> Reply {
    let name = input.stream.stream()?;
    let a = required("shardToMerge", input.shard_to_merge)?;
    let b = required("adjacentShardToMerge", input.adjacent_shard_to_merge)?;
    let record = s.stream(&name).await?;
    let shard = shard_named(&record, &a)?.id;
    let adjacent = shard_named(&record, &b)?.id;
    s.reshard(&name, ReshardRequest::Merge { shard, adjacent })
        .await?;
    Ok(json!({}))
}

pub async fn update_shard_count(s: &Arc<StreamService>, input: UpdateShardCountInput) -> Reply {
    let name = input.stream.stream()?;
    let target = required("targetShardCount", input.target_shard_count)?;
    let target = int_in("targetShardCount", Some(target), 1, 100_000)?.unwrap_or(1);
    match required("scalingType", input.scaling_type)?.as_str() {
        "UNIFORM_SCALING" => {}
        other => {
            return Err(StreamError::constraint(
                "scalingType",
                other,
                "Member must satisfy enum value set: [UNIFORM_SCALING]",
            )
            .into())
        }
    }
    let began = s.reshard(&name, ReshardRequest::Scale { target }).await?;
    // The record as the plan began: the shards it will close are still open in it.
    let current = began.open_shard_count();
    Ok(json!({
        "StreamName": name.as_str(),
        "StreamARN": name.arn(),
        "CurrentShardCount": current,
        "TargetShardCount": target,
    }))
}
