//! Kinesis's JSON shapes (AWS JSON 1.1, member names as Kinesis spells them) and their
//! conversion to and from the stream service's types: record data as base64 strings,
//! timestamps as epoch seconds (fractional numbers), hash keys as decimal strings. CBOR
//! requests reach these shapes as JSON too (`protocol`).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::KinesisError;
use crate::stream::catalog::{ShardRecord, StreamRecord};
use crate::stream::log::ReadRecord;
use crate::stream::model::{StreamError, StreamName, ACCOUNT_ID, REGION};
use crate::stream::service::RecordsPage;

/// Parse a request body: a JSON object of the operation's shape (an operation without
/// input still takes `{}`, as every SDK sends).
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, KinesisError> {
    let bad = |e: String| {
        KinesisError::serialization(format!(
            "The request body is not an object of this operation's shape: {e}"
        ))
    };
    // Straight into the operation's types (no `Value` tree in between: a PutRecords body
    // is up to 10 MB). serde would also take a JSON array for a struct, so the body must
    // open an object; whether it is valid JSON is the deserializer's to say.
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(_) => return Err(bad("the body is not a JSON object".into())),
        None => return Err(bad("the body is empty".into())),
    }
    serde_json::from_slice(body).map_err(|e| bad(e.to_string()))
}

/// A time as AWS JSON 1.1 writes it: epoch seconds, fractional.
pub fn timestamp(ms: u64) -> Value {
    json!(ms as f64 / 1000.0)
}

/// A time a client sent: epoch seconds as a number (or a numeric string), or RFC 3339.
pub fn millis_of(field: &str, v: &Value) -> Result<u64, KinesisError> {
    let bad = || {
        KinesisError::serialization(format!(
            "{field} must be a timestamp (epoch seconds or RFC 3339), not {v}"
        ))
    };
    let seconds = match v {
        Value::Number(n) => n.as_f64().ok_or_else(bad)?,
        Value::String(s) => match s.parse::<f64>() {
            Ok(x) => x,
            Err(_) => {
                let t =
                    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                        .map_err(|_| bad())?;
                return u64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| bad());
            }
        },
        _ => return Err(bad()),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(bad());
    }
    Ok((seconds * 1000.0).round() as u64)
}

/// An integer member within `min..=max`, or the ValidationException Kinesis gives.
pub fn int_in(field: &str, v: Option<i64>, min: i64, max: i64) -> Result<Option<u32>, StreamError> {
    match v {
        None => Ok(None),
        Some(n) if n < min => Err(StreamError::constraint(
            field,
            n,
            &format!("Member must have value greater than or equal to {min}"),
        )),
        Some(n) if n > max => Err(StreamError::constraint(
            field,
            n,
            &format!("Member must have value less than or equal to {max}"),
        )),
        Some(n) => Ok(Some(n as u32)),
    }
}

pub fn required<T>(field: &str, v: Option<T>) -> Result<T, StreamError> {
    v.ok_or_else(|| {
        StreamError::validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// The stream a request names by StreamName, StreamARN or both (which must agree).
pub fn stream_of(name: Option<&str>, arn: Option<&str>) -> Result<StreamName, StreamError> {
    let from_arn = match arn {
        None => None,
        Some(arn) => Some(parse_arn(arn)?),
    };
    match (name, from_arn) {
        (None, None) => Err(StreamError::invalid(
            "Either StreamName or StreamARN should be provided.",
        )),
        (Some(n), None) => StreamName::parse(n),
        (None, Some(a)) => Ok(a),
        (Some(n), Some(a)) => {
            let n = StreamName::parse(n)?;
            if n != a {
                return Err(StreamError::invalid(format!(
                    "StreamName {n} and StreamARN {} name different streams.",
                    a.arn()
                )));
            }
            Ok(n)
        }
    }
}

/// `arn:aws:kinesis:<region>:<account>:stream/<name>`; another account's or region's
/// stream does not exist here.
fn parse_arn(arn: &str) -> Result<StreamName, StreamError> {
    let bad = || {
        StreamError::constraint(
            "streamARN",
            arn,
            "Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
        )
    };
    let rest = arn.strip_prefix("arn:").ok_or_else(bad)?;
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let [partition, service, region, account, resource] = parts[..] else {
        return Err(bad());
    };
    let name = resource.strip_prefix("stream/").ok_or_else(bad)?;
    if !partition.starts_with("aws")
        || service != "kinesis"
        || account.len() != 12
        || !account.bytes().all(|b| b.is_ascii_digit())
        || name.is_empty()
    {
        return Err(bad());
    }
    let name = StreamName::parse(name)?;
    if account != ACCOUNT_ID || region != REGION {
        return Err(StreamError::not_found(&name));
    }
    Ok(name)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamRef {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
}

impl StreamRef {
    pub fn stream(&self) -> Result<StreamName, StreamError> {
        stream_of(self.stream_name.as_deref(), self.stream_arn.as_deref())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamModeDetails {
    pub stream_mode: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateStreamInput {
    pub stream_name: Option<String>,
    pub shard_count: Option<i64>,
    pub stream_mode_details: Option<StreamModeDetails>,
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteStreamInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub enforce_consumer_deletion: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub limit: Option<i64>,
    pub exclusive_start_shard_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsInput {
    pub limit: Option<i64>,
    pub exclusive_start_stream_name: Option<String>,
    pub next_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShardFilterInput {
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    pub shard_id: Option<String>,
    pub timestamp: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub next_token: Option<String>,
    pub exclusive_start_shard_id: Option<String>,
    pub max_results: Option<i64>,
    pub shard_filter: Option<ShardFilterInput>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub data: Option<String>,
    pub partition_key: Option<String>,
    pub explicit_hash_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsEntry {
    pub data: Option<String>,
    pub partition_key: Option<String>,
    pub explicit_hash_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub records: Option<Vec<PutRecordsEntry>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub shard_id: Option<String>,
    pub shard_iterator_type: Option<String>,
    pub starting_sequence_number: Option<String>,
    pub timestamp: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsInput {
    pub shard_iterator: Option<String>,
    pub limit: Option<i64>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SplitShardInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub shard_to_split: Option<String>,
    pub new_starting_hash_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MergeShardsInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub shard_to_merge: Option<String>,
    pub adjacent_shard_to_merge: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateShardCountInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub target_shard_count: Option<i64>,
    pub scaling_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetentionInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub retention_period_hours: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddTagsInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemoveTagsInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub tag_keys: Option<Vec<String>>,
}

/// TagResource, UntagResource, ListTagsForResource: a stream named by its ARN.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceTagsInput {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
    pub tag_keys: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub exclusive_start_tag_key: Option<String>,
    pub limit: Option<i64>,
}

/// Record data: base64 in JSON.
pub fn data_of(field: &str, data: Option<String>) -> Result<Vec<u8>, KinesisError> {
    let data = required(field, data)?;
    STANDARD
        .decode(data.as_bytes())
        .map_err(|_| KinesisError::serialization(format!("{field} is not valid base64")))
}

pub fn shard_json(s: &ShardRecord) -> Value {
    let mut shard = json!({
        "ShardId": s.id.to_string(),
        "HashKeyRange": {
            "StartingHashKey": s.range.start.to_string(),
            "EndingHashKey": s.range.end.to_string(),
        },
        "SequenceNumberRange": {
            "StartingSequenceNumber": s.starting().render(),
        },
    });
    if let Some(p) = s.parent {
        shard["ParentShardId"] = json!(p.to_string());
    }
    if let Some(p) = s.adjacent_parent {
        shard["AdjacentParentShardId"] = json!(p.to_string());
    }
    if let Some(end) = s.ending {
        shard["SequenceNumberRange"]["EndingSequenceNumber"] = json!(end.render());
    }
    shard
}

/// A child shard as GetRecords names it at the end of its parent.
pub fn child_shard_json(s: &ShardRecord) -> Value {
    let parents: Vec<String> = s
        .parent
        .iter()
        .chain(s.adjacent_parent.iter())
        .map(|p| p.to_string())
        .collect();
    json!({
        "ShardId": s.id.to_string(),
        "ParentShards": parents,
        "HashKeyRange": {
            "StartingHashKey": s.range.start.to_string(),
            "EndingHashKey": s.range.end.to_string(),
        },
    })
}

/// GetRecords' answer as JSON text, written straight into one buffer: the same document
/// as building a `Value` per record and rendering it (a unit test holds the two equal),
/// without a map, a base64 `String` and an escape scan per record. Base64 never needs
/// escaping; partition keys and iterators go through serde_json's string escaping.
pub fn get_records_body(page: &RecordsPage) -> Vec<u8> {
    let record_bytes: usize = page
        .records
        .iter()
        .map(|r| r.record.data.len().div_ceil(3) * 4 + r.record.partition_key.len() + 160)
        .sum();
    let mut out = Vec::with_capacity(record_bytes + 1024);
    out.extend_from_slice(b"{\"Records\":[");
    for (i, r) in page.records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"SequenceNumber\":\"");
        r.sequence.render_into(&mut out);
        out.extend_from_slice(b"\",\"ApproximateArrivalTimestamp\":");
        write_json(&mut out, &(r.record.arrival_ms as f64 / 1000.0));
        out.extend_from_slice(b",\"Data\":\"");
        base64_into(&mut out, &r.record.data);
        out.extend_from_slice(b"\",\"PartitionKey\":");
        write_json(&mut out, r.record.partition_key.as_str());
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"MillisBehindLatest\":");
    write_json(&mut out, &page.millis_behind_latest);
    if let Some(next) = &page.next_iterator {
        out.extend_from_slice(b",\"NextShardIterator\":");
        write_json(&mut out, next.as_str());
    }
    if let Some(children) = &page.child_shards {
        out.extend_from_slice(b",\"ChildShards\":");
        let children: Vec<Value> = children.iter().map(child_shard_json).collect();
        write_json(&mut out, &children);
    }
    out.push(b'}');
    out
}

/// GetRecords' answer as a JSON tree: the document `get_records_body` writes as text
/// (the CBOR protocol renders it from this).
pub fn get_records_json(page: &RecordsPage) -> Value {
    let mut tree = json!({
        "Records": page.records.iter().map(record_json).collect::<Vec<_>>(),
        "MillisBehindLatest": page.millis_behind_latest,
    });
    if let Some(next) = &page.next_iterator {
        tree["NextShardIterator"] = json!(next);
    }
    if let Some(children) = &page.child_shards {
        tree["ChildShards"] = json!(children.iter().map(child_shard_json).collect::<Vec<_>>());
    }
    tree
}

/// Append `value`'s JSON text (a number, an escaped string, a small tree).
fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing to a Vec cannot fail, and these values (numbers, strings, `Value`s) always
    // serialize; should it ever fail, the field renders as null rather than as half a value.
    let start = out.len();
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(start);
        out.extend_from_slice(b"null");
    }
}

/// Append `data` in standard base64 (with padding).
fn base64_into(out: &mut Vec<u8>, data: &[u8]) {
    let start = out.len();
    let len = base64::encoded_len(data.len(), true).unwrap_or(0);
    out.resize(start + len, 0);
    match STANDARD.encode_slice(data, &mut out[start..]) {
        Ok(written) => out.truncate(start + written),
        Err(_) => {
            out.truncate(start);
            out.extend_from_slice(STANDARD.encode(data).as_bytes());
        }
    }
}

pub fn record_json(r: &ReadRecord) -> Value {
    json!({
        "SequenceNumber": r.sequence.render(),
        "ApproximateArrivalTimestamp": timestamp(r.record.arrival_ms),
        "Data": STANDARD.encode(&r.record.data),
        "PartitionKey": r.record.partition_key,
    })
}

pub fn mode_json(record: &StreamRecord) -> Value {
    json!({ "StreamMode": record.mode.as_str() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_named_by_name_or_arn() {
        let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/orders";
        assert_eq!(stream_of(Some("orders"), None).unwrap().as_str(), "orders");
        assert_eq!(stream_of(None, Some(arn)).unwrap().as_str(), "orders");
        assert_eq!(
            stream_of(Some("orders"), Some(arn)).unwrap().as_str(),
            "orders"
        );
        let code = |n: Option<&str>, a: Option<&str>| stream_of(n, a).unwrap_err().code();
        assert_eq!(code(Some("other"), Some(arn)), "InvalidArgumentException");
        assert_eq!(code(None, None), "InvalidArgumentException");
        assert_eq!(code(None, Some("arn:aws:s3:::b")), "ValidationException");
        assert_eq!(code(None, Some("orders")), "ValidationException");
        assert_eq!(code(Some("bad name"), None), "ValidationException");
        assert_eq!(
            code(
                None,
                Some("arn:aws:kinesis:us-east-1:123456789012:stream/orders")
            ),
            "ResourceNotFoundException"
        );
    }

    #[test]
    fn bodies_and_fields_parse_or_fail_with_aws_errors() {
        let e = parse::<PutRecordInput>(b"{not json").unwrap_err();
        assert_eq!(e.code, "SerializationException");
        let e = parse::<PutRecordInput>(br#"{"Data": 5}"#).unwrap_err();
        assert_eq!(e.code, "SerializationException");
        let ok: PutRecordInput =
            parse(br#"{"StreamARN":"x","Data":"aGk=","PartitionKey":"k"}"#).unwrap();
        assert_eq!(data_of("Data", ok.data).unwrap(), b"hi");
        assert!(data_of("Data", Some("!!".into())).is_err());
        assert_eq!(
            data_of("Data", None).unwrap_err().code,
            "ValidationException"
        );
        let empty: ListStreamsInput = parse(b"{}").unwrap();
        assert!(empty.limit.is_none());
        for bad in [&b""[..], b"[1, 2]", b"[]", b"null", b"5"] {
            assert_eq!(
                parse::<ListStreamsInput>(bad).unwrap_err().code,
                "SerializationException"
            );
        }
        assert_eq!(
            int_in("limit", Some(0), 1, 10).unwrap_err().code(),
            "ValidationException"
        );
        assert_eq!(int_in("limit", Some(10), 1, 10).unwrap(), Some(10));
    }

    #[test]
    fn get_records_text_is_the_document_the_value_tree_renders() {
        use crate::stream::log::StoredRecord;
        use crate::stream::model::{HashRange, SequenceNumber, ShardId};
        let rec = |position, key: &str, data: &[u8], arrival_ms| ReadRecord {
            sequence: SequenceNumber { shard: 3, position },
            record: StoredRecord {
                partition_key: key.into(),
                data: data.to_vec(),
                arrival_ms,
            },
        };
        let child = ShardRecord {
            id: ShardId(4),
            range: HashRange { start: 0, end: 99 },
            parent: Some(ShardId(3)),
            adjacent_parent: None,
            created_ms: 5,
            ending: None,
            closed_ms: None,
        };
        let pages = [
            RecordsPage {
                records: vec![
                    rec(1, "k", b"", 1_000),
                    rec(
                        2,
                        "quote\" back\\ ctl\u{1} \u{e9}\u{1F600}",
                        b"\x00\xff\x10ab",
                        1_700_000_000_123,
                    ),
                    rec(u64::MAX, "k", &[7; 1025], 1),
                ],
                next_iterator: Some("AAA+/=\"".into()),
                millis_behind_latest: 42,
                child_shards: None,
            },
            RecordsPage {
                records: vec![],
                next_iterator: None,
                millis_behind_latest: 0,
                child_shards: Some(vec![child]),
            },
        ];
        for page in &pages {
            let tree = get_records_json(page);
            let text = get_records_body(page);
            // The same members with the same values (numbers too: `1.0` stays a float).
            let parsed: Value = serde_json::from_slice(&text).unwrap();
            assert_eq!(parsed, tree);
        }
    }

    #[test]
    fn timestamps_are_epoch_seconds() {
        assert_eq!(timestamp(1_500), json!(1.5));
        assert_eq!(millis_of("t", &json!(1.5)).unwrap(), 1_500);
        assert_eq!(millis_of("t", &json!(2)).unwrap(), 2_000);
        assert_eq!(millis_of("t", &json!("3.25")).unwrap(), 3_250);
        assert_eq!(
            millis_of("t", &json!("1970-01-01T00:00:04Z")).unwrap(),
            4_000
        );
        assert!(millis_of("t", &json!(-1)).is_err());
        assert!(millis_of("t", &json!({})).is_err());
    }
}
