//! Record operations on the edge: PutRecord, PutRecords, GetShardIterator, GetRecords.

use serde_json::{json, Value};

use super::errors::KinesisError;
use super::wire::{
    data_of, millis_of, required, stream_of, GetRecordsInput, GetShardIteratorInput,
    PutRecordInput, PutRecordsInput,
};
use crate::stream::model::{StreamError, MAX_GET_RECORDS};
use crate::stream::service::{IteratorStart, PutEntry, RecordsPage, ServiceError, StreamService};

type Reply = Result<Value, KinesisError>;

pub async fn put_record(s: &StreamService, input: PutRecordInput) -> Reply {
    let name = input.stream.stream()?;
    // SequenceNumberForOrdering needs no handling: a shard's records are ordered by
    // arrival, and a client's successive puts arrive in order.
    let entry = PutEntry {
        partition_key: required("partitionKey", input.partition_key)?,
        explicit_hash_key: input.explicit_hash_key,
        data: data_of("Data", input.data)?,
    };
    let put = s.put_record(&name, entry).await?;
    Ok(json!({
        "ShardId": put.shard.to_string(),
        "SequenceNumber": put.sequence.render(),
        "EncryptionType": "NONE",
    }))
}

pub async fn put_records(s: &StreamService, input: PutRecordsInput) -> Reply {
    let name = input.stream.stream()?;
    let records = required("records", input.records)?;
    let mut entries = Vec::with_capacity(records.len());
    for (i, r) in records.into_iter().enumerate() {
        entries.push(PutEntry {
            partition_key: required(
                &format!("records.{}.member.partitionKey", i + 1),
                r.partition_key,
            )?,
            explicit_hash_key: r.explicit_hash_key,
            data: data_of(&format!("records.{}.member.data", i + 1), r.data)?,
        });
    }
    let outcomes = s.put_records(&name, entries).await?;
    let mut failed = 0;
    let results: Vec<Value> = outcomes
        .into_iter()
        .map(|o| match o {
            Ok(put) => json!({
                "ShardId": put.shard.to_string(),
                "SequenceNumber": put.sequence.render(),
            }),
            Err(e) => {
                failed += 1;
                // Kinesis reports a record's failure as one of these two codes.
                let code = match &e {
                    ServiceError::Stream(s @ StreamError::ProvisionedThroughputExceeded(..)) => {
                        s.code()
                    }
                    _ => "InternalFailure",
                };
                json!({ "ErrorCode": code, "ErrorMessage": e.to_string() })
            }
        })
        .collect();
    Ok(json!({
        "FailedRecordCount": failed,
        "Records": results,
        "EncryptionType": "NONE",
    }))
}

pub async fn get_shard_iterator(s: &StreamService, input: GetShardIteratorInput) -> Reply {
    let name = input.stream.stream()?;
    let shard = required("shardId", input.shard_id)?;
    let kind = required("shardIteratorType", input.shard_iterator_type)?;
    let sequence = |v: Option<String>| -> Result<String, KinesisError> {
        v.ok_or_else(|| {
            StreamError::invalid(format!(
                "StartingSequenceNumber must be provided for ShardIteratorType {kind}."
            ))
            .into()
        })
    };
    let takes_sequence = matches!(
        kind.as_str(),
        "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER"
    );
    if !takes_sequence && input.starting_sequence_number.is_some() {
        return Err(StreamError::invalid(format!(
            "StartingSequenceNumber must not be provided for ShardIteratorType {kind}."
        ))
        .into());
    }
    let start = match kind.as_str() {
        "TRIM_HORIZON" => IteratorStart::TrimHorizon,
        "LATEST" => IteratorStart::Latest,
        "AT_SEQUENCE_NUMBER" => IteratorStart::AtSequence(sequence(input.starting_sequence_number)?),
        "AFTER_SEQUENCE_NUMBER" => {
            IteratorStart::AfterSequence(sequence(input.starting_sequence_number)?)
        }
        "AT_TIMESTAMP" => {
            let t = input.timestamp.ok_or_else(|| {
                StreamError::invalid("Timestamp must be provided for ShardIteratorType AT_TIMESTAMP.")
            })?;
            IteratorStart::AtTimestamp(millis_of("Timestamp", &t)?)
        }
        other => {
            return Err(StreamError::constraint(
                "shardIteratorType",
                other,
                "Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, AT_TIMESTAMP, TRIM_HORIZON, LATEST]",
            )
            .into())
        }
    };
    let iterator = s.get_shard_iterator(&name, &shard, start).await?;
    Ok(json!({ "ShardIterator": iterator }))
}

/// GetRecords' page, which the protocol renders (`Protocol::ok_records`).
pub async fn get_records(
    s: &StreamService,
    input: GetRecordsInput,
) -> Result<RecordsPage, KinesisError> {
    let token = required("shardIterator", input.shard_iterator)?;
    let limit = super::wire::int_in("limit", input.limit, 1, i64::from(MAX_GET_RECORDS))?;
    let stream = match &input.stream_arn {
        Some(arn) => Some(stream_of(None, Some(arn))?),
        None => None,
    };
    Ok(s.get_records(&token, limit, stream.as_ref()).await?)
}
