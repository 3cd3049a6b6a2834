//! The two protocols Kinesis is spoken in, chosen by the request's `Content-Type`:
//! AWS CBOR 1.1 for `application/x-amz-cbor-1.1` (the AWS SDK for Java's default, v1 and
//! v2, hence the KCL's), AWS JSON 1.1 for anything else.
//!
//! The operations work in JSON only. A CBOR body is decoded (`api::cbor`) into the JSON
//! document the JSON protocol would have carried, after SigV4 was checked over the bytes
//! received; answers, errors and SubscribeToShard's event payloads are rendered back into
//! CBOR. Where the two differ:
//!
//! - **Blobs** are byte strings in CBOR, base64 text in JSON. Coming in, every byte string
//!   becomes base64 text (`wire` decodes it where the shape has a blob, and a byte string
//!   where the shape wants text is refused there as a type error); going out, the members
//!   the Kinesis model types as blobs (`BLOB_MEMBERS`) become byte strings.
//! - **Timestamps** are tag 1 around integer epoch *milliseconds* in CBOR, epoch seconds
//!   with a fraction in JSON. AWS's CBOR departs here from RFC 8949 (whose tag 1 counts
//!   seconds): the AWS SDKs for Java write `Instant.toEpochMilli()` under tag 1 and read
//!   payload timestamps as epoch milliseconds (`AwsCborProtocolFactory`: payload format
//!   `UNIX_TIMESTAMP_MILLIS`), and Kinesis answers them so; seconds would read as January
//!   1970. Coming in, a tag-1 number anywhere, or a bare number in a timestamp member, is
//!   milliseconds (integer or float); a tag-0 RFC 3339 string is taken too. Going out, the
//!   members the model types as timestamps (`TIMESTAMP_MEMBERS`) are tag 1 + integer ms.
//!
//! Everything else maps one to one: integers, floats, text, arrays, booleans, null
//! (CBOR's undefined reads as null); maps must have text keys, each once.

use axum::body::Bytes;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Number, Value};

use super::errors::{KinesisError, CONTENT_TYPE as JSON_CONTENT_TYPE};
use super::wire;
use crate::api::aws_json;
use crate::api::cbor::{self, Cbor, Limits};
use crate::stream::service::RecordsPage;

/// The media type of AWS CBOR 1.1.
pub const CBOR_CONTENT_TYPE: &str = "application/x-amz-cbor-1.1";

/// Members the Kinesis model types as blobs (record data, in PutRecord, PutRecords,
/// GetRecords and SubscribeToShardEvent).
const BLOB_MEMBERS: [&str; 1] = ["Data"];

/// Members the Kinesis model types as timestamps, in requests (`Timestamp` of
/// GetShardIterator, StartingPosition and ShardFilter; ListStreamConsumers'
/// `StreamCreationTimestamp`) and in answers (records, stream descriptions and summaries,
/// consumers).
const TIMESTAMP_MEMBERS: [&str; 4] = [
    "Timestamp",
    "ApproximateArrivalTimestamp",
    "StreamCreationTimestamp",
    "ConsumerCreationTimestamp",
];

/// CBOR tag 1: epoch-based date/time.
const EPOCH_TAG: u64 = 1;
/// CBOR tag 0: an RFC 3339 date/time string.
const DATE_TIME_TAG: u64 = 0;
/// CBOR tag 55799: "this is CBOR", meaning nothing for the item it tags.
const SELF_DESCRIBED_TAG: u64 = 55799;

/// What a Kinesis request body may hold: the deepest shape is three levels (PutRecords'
/// entries), the largest 500 entries of three members.
const REQUEST_LIMITS: Limits = Limits {
    max_depth: 32,
    max_items: 100_000,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Json,
    Cbor,
}

impl Protocol {
    /// The protocol a request speaks, by its `Content-Type` (parameters ignored).
    pub fn of(headers: &HeaderMap) -> Protocol {
        let media_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::trim);
        match media_type {
            Some(t) if t.eq_ignore_ascii_case(CBOR_CONTENT_TYPE) => Protocol::Cbor,
            _ => Protocol::Json,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::Json => JSON_CONTENT_TYPE,
            Protocol::Cbor => CBOR_CONTENT_TYPE,
        }
    }

    /// The `:content-type` of SubscribeToShard's event messages.
    pub fn event_content_type(self) -> &'static str {
        match self {
            Protocol::Json => "application/json",
            Protocol::Cbor => CBOR_CONTENT_TYPE,
        }
    }

    /// The request body as the JSON text the operations parse.
    pub fn request_json(self, body: Bytes) -> Result<Bytes, KinesisError> {
        match self {
            Protocol::Json => Ok(body),
            Protocol::Cbor => cbor_request_to_json(&body).map(Bytes::from),
        }
    }

    /// A document (an answer, an error, an event) in this protocol.
    pub fn payload(self, value: &Value) -> Vec<u8> {
        match self {
            Protocol::Json => value.to_string().into_bytes(),
            Protocol::Cbor => cbor::encode(&json_to_cbor(value, None)),
        }
    }

    /// A 200 answer carrying `value`.
    pub fn ok(self, value: &Value, request_id: &str) -> Response {
        aws_json::ok_json_text(self.payload(value), self.content_type(), request_id)
    }

    /// GetRecords' 200 answer: JSON text rendered straight from the page
    /// (`wire::get_records_body`, the benchmarked path), or CBOR through the JSON tree.
    pub fn ok_records(self, page: &RecordsPage, request_id: &str) -> Response {
        let body = match self {
            Protocol::Json => wire::get_records_body(page),
            Protocol::Cbor => self.payload(&wire::get_records_json(page)),
        };
        aws_json::ok_json_text(body, self.content_type(), request_id)
    }

    /// An error answer: `{"__type", "message"}` in this protocol, with its status.
    pub fn error(self, e: &KinesisError, request_id: &str) -> Response {
        let body = self.payload(&json!({ "__type": e.code, "message": e.message }));
        e.render_as(body, self.content_type(), request_id)
    }
}

fn cbor_request_to_json(body: &[u8]) -> Result<Vec<u8>, KinesisError> {
    let bad = |why: String| {
        KinesisError::serialization(format!(
            "The request body is not a CBOR map of this operation's shape: {why}"
        ))
    };
    let item = cbor::decode_with(body, REQUEST_LIMITS).map_err(|e| bad(e.to_string()))?;
    let value = cbor_to_json(item, None).map_err(bad)?;
    if !value.is_object() {
        return Err(bad("the body is not a CBOR map".into()));
    }
    serde_json::to_vec(&value).map_err(|e| bad(e.to_string()))
}

fn is_timestamp(member: Option<&str>) -> bool {
    member.is_some_and(|m| TIMESTAMP_MEMBERS.contains(&m))
}

/// Epoch milliseconds (a CBOR number) as the JSON protocol's epoch seconds.
fn seconds_of_millis(item: &Cbor) -> Option<Value> {
    let ms = match item {
        Cbor::Int(n) => *n as f64,
        Cbor::Float(x) => *x,
        _ => return None,
    };
    Number::from_f64(ms / 1000.0).map(Value::Number)
}

/// A request item as JSON (`member`: the map key it is the value of).
fn cbor_to_json(item: Cbor, member: Option<&str>) -> Result<Value, String> {
    Ok(match item {
        Cbor::Int(_) | Cbor::Float(_) if is_timestamp(member) => seconds_of_millis(&item)
            .ok_or_else(|| format!("{} is not a finite timestamp", member.unwrap_or("")))?,
        Cbor::Int(n) => match (i64::try_from(n), u64::try_from(n)) {
            (Ok(i), _) => Value::from(i),
            (_, Ok(u)) => Value::from(u),
            _ => Number::from_f64(n as f64)
                .map(Value::Number)
                .ok_or("an integer out of range")?,
        },
        Cbor::Float(x) => Number::from_f64(x)
            .map(Value::Number)
            .ok_or("a float that is not finite (NaN or infinity)")?,
        Cbor::Bytes(b) => Value::String(STANDARD.encode(b)),
        Cbor::Text(s) => Value::String(s),
        Cbor::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| cbor_to_json(i, None))
                .collect::<Result<_, _>>()?,
        ),
        Cbor::Map(pairs) => {
            let mut object = Map::with_capacity(pairs.len());
            for (key, value) in pairs {
                let Cbor::Text(key) = key else {
                    return Err(format!("a map key is not a text string: {key:?}"));
                };
                let value = cbor_to_json(value, Some(&key))?;
                if object.insert(key.clone(), value).is_some() {
                    return Err(format!("the member {key} appears twice"));
                }
            }
            Value::Object(object)
        }
        Cbor::Tag(EPOCH_TAG, inner) => seconds_of_millis(&inner)
            .ok_or("tag 1 (epoch time) must hold a finite number of epoch milliseconds")?,
        Cbor::Tag(DATE_TIME_TAG, inner) => match *inner {
            Cbor::Text(s) => Value::String(s),
            _ => return Err("tag 0 (date/time) must hold a text string".into()),
        },
        Cbor::Tag(SELF_DESCRIBED_TAG, inner) => cbor_to_json(*inner, member)?,
        Cbor::Tag(tag, _) => return Err(format!("CBOR tag {tag} has no meaning in Kinesis")),
        Cbor::Bool(b) => Value::Bool(b),
        Cbor::Null | Cbor::Undefined => Value::Null,
    })
}

/// An answer's JSON value as CBOR, with blobs and timestamps in CBOR's forms.
fn json_to_cbor(value: &Value, member: Option<&str>) -> Cbor {
    match value {
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(*b),
        Value::Number(n) if is_timestamp(member) => {
            let ms = (n.as_f64().unwrap_or(0.0) * 1000.0).round() as i128;
            Cbor::Tag(EPOCH_TAG, Box::new(Cbor::Int(ms)))
        }
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Cbor::Int(i128::from(i)),
            (_, Some(u)) => Cbor::Int(i128::from(u)),
            _ => n.as_f64().map_or(Cbor::Null, Cbor::Float),
        },
        Value::String(s) if member.is_some_and(|m| BLOB_MEMBERS.contains(&m)) => {
            match STANDARD.decode(s) {
                Ok(bytes) => Cbor::Bytes(bytes),
                // The operations render every blob in base64; anything else stays text.
                Err(_) => Cbor::Text(s.clone()),
            }
        }
        Value::String(s) => Cbor::Text(s.clone()),
        Value::Array(items) => Cbor::Array(items.iter().map(|i| json_to_cbor(i, None)).collect()),
        Value::Object(members) => Cbor::Map(
            members
                .iter()
                .map(|(k, v)| (Cbor::Text(k.clone()), json_to_cbor(v, Some(k))))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::log::{ReadRecord, StoredRecord};
    use crate::stream::model::SequenceNumber;

    fn text(s: &str) -> Cbor {
        Cbor::text(s)
    }

    fn request(item: &Cbor) -> Result<Value, KinesisError> {
        let json = Protocol::Cbor.request_json(Bytes::from(cbor::encode(item)))?;
        Ok(serde_json::from_slice(&json).unwrap())
    }

    #[test]
    fn the_protocol_is_chosen_by_content_type() {
        let of = |ct: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(ct) = ct {
                h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            }
            Protocol::of(&h)
        };
        assert_eq!(of(Some("application/x-amz-cbor-1.1")), Protocol::Cbor);
        assert_eq!(
            of(Some("Application/X-Amz-Cbor-1.1; charset=binary")),
            Protocol::Cbor
        );
        assert_eq!(of(Some("application/x-amz-json-1.1")), Protocol::Json);
        assert_eq!(of(Some("application/json")), Protocol::Json);
        assert_eq!(of(None), Protocol::Json);
    }

    #[test]
    fn cbor_requests_become_the_json_the_operations_parse() {
        let put = Cbor::Map(vec![
            (text("StreamName"), text("s")),
            (text("Data"), Cbor::Bytes(vec![0, 1, 0xff])),
            (text("PartitionKey"), text("k")),
        ]);
        assert_eq!(
            request(&put).unwrap(),
            json!({"StreamName": "s", "Data": "AAH/", "PartitionKey": "k"})
        );
        let iterator = Cbor::Map(vec![
            (text("ShardIteratorType"), text("AT_TIMESTAMP")),
            (
                text("Timestamp"),
                Cbor::Tag(1, Box::new(Cbor::Int(1_700_000_000_123))),
            ),
            (
                text("StartingPosition"),
                Cbor::Map(vec![(text("Timestamp"), Cbor::Int(1_500))]),
            ),
            (
                text("ShardFilter"),
                Cbor::Map(vec![(
                    text("Timestamp"),
                    Cbor::Tag(0, Box::new(text("2023-11-14T22:13:20Z"))),
                )]),
            ),
            (text("Limit"), Cbor::Float(2.5)),
            (text("Undefined"), Cbor::Undefined),
            (text("Negative"), Cbor::Int(-7)),
            (text("Big"), Cbor::Int(u64::MAX.into())),
        ]);
        let v = request(&iterator).unwrap();
        assert_eq!(v["Timestamp"], json!(1_700_000_000.123));
        assert_eq!(
            wire::millis_of("Timestamp", &v["Timestamp"]).unwrap(),
            1_700_000_000_123
        );
        assert_eq!(v["StartingPosition"]["Timestamp"], json!(1.5));
        assert_eq!(v["ShardFilter"]["Timestamp"], json!("2023-11-14T22:13:20Z"));
        assert_eq!(v["Limit"], json!(2.5));
        assert_eq!(v["Undefined"], Value::Null);
        assert_eq!(v["Negative"], json!(-7));
        assert_eq!(v["Big"], json!(u64::MAX));
        // The self-described-CBOR tag around the body changes nothing.
        let tagged = Cbor::Tag(55799, Box::new(put));
        assert_eq!(request(&tagged).unwrap()["Data"], json!("AAH/"));
    }

    #[test]
    fn bad_cbor_requests_are_serialization_errors() {
        let refused = |item: Cbor| {
            let e = request(&item).unwrap_err();
            assert_eq!(e.code, "SerializationException", "{item:?}");
            assert_eq!(e.status, 400);
            e.message
        };
        assert!(refused(Cbor::Array(vec![])).contains("not a CBOR map"));
        assert!(refused(Cbor::Map(vec![(Cbor::Int(1), Cbor::Null)])).contains("text string"));
        assert!(refused(Cbor::Map(vec![
            (text("A"), Cbor::Null),
            (text("A"), Cbor::Null)
        ]))
        .contains("twice"));
        assert!(refused(Cbor::Map(vec![(
            text("T"),
            Cbor::Tag(1, Box::new(text("soon")))
        )]))
        .contains("tag 1"));
        assert!(refused(Cbor::Map(vec![(
            text("T"),
            Cbor::Tag(2, Box::new(Cbor::Bytes(vec![1])))
        )]))
        .contains("tag 2"));
        assert!(refused(Cbor::Map(vec![(text("F"), Cbor::Float(f64::NAN))])).contains("finite"));
        for raw in [&b""[..], b"\xa1\x61", b"\xff", b"{\"StreamName\":\"s\"}"] {
            let e = Protocol::Cbor
                .request_json(Bytes::copy_from_slice(raw))
                .unwrap_err();
            assert_eq!(e.code, "SerializationException", "{raw:?}");
            assert!(e.message.contains("CBOR"), "{}", e.message);
        }
    }

    #[test]
    fn answers_carry_blobs_as_bytes_and_timestamps_as_epoch_millis() {
        let answer = json!({
            "StreamDescriptionSummary": {
                "StreamName": "s",
                "StreamCreationTimestamp": wire::timestamp(1_700_000_000_123),
                "OpenShardCount": 2,
                "HasMore": false,
            },
            "Consumers": [{ "ConsumerCreationTimestamp": wire::timestamp(5_000) }],
            "Records": [{ "Data": "AAH/", "ApproximateArrivalTimestamp": 1.5 }],
        });
        let item = cbor::decode(&Protocol::Cbor.payload(&answer)).unwrap();
        let summary = item.get("StreamDescriptionSummary").unwrap();
        assert_eq!(
            summary.get("StreamCreationTimestamp"),
            Some(&Cbor::Tag(1, Box::new(Cbor::Int(1_700_000_000_123))))
        );
        assert_eq!(summary.get("OpenShardCount"), Some(&Cbor::Int(2)));
        assert_eq!(summary.get("HasMore"), Some(&Cbor::Bool(false)));
        assert_eq!(summary.get("StreamName"), Some(&text("s")));
        let Some(Cbor::Array(consumers)) = item.get("Consumers") else {
            panic!("{item:?}")
        };
        assert_eq!(
            consumers[0].get("ConsumerCreationTimestamp"),
            Some(&Cbor::Tag(1, Box::new(Cbor::Int(5_000))))
        );
        let Some(Cbor::Array(records)) = item.get("Records") else {
            panic!("{item:?}")
        };
        assert_eq!(records[0].get("Data"), Some(&Cbor::Bytes(vec![0, 1, 0xff])));
        assert_eq!(
            records[0].get("ApproximateArrivalTimestamp"),
            Some(&Cbor::Tag(1, Box::new(Cbor::Int(1_500))))
        );
        // JSON answers are the JSON text, unchanged.
        assert_eq!(
            Protocol::Json.payload(&answer),
            answer.to_string().into_bytes()
        );
    }

    #[test]
    fn get_records_in_cbor_is_the_json_page_with_cbor_blobs_and_times() {
        let page = RecordsPage {
            records: vec![ReadRecord {
                sequence: SequenceNumber {
                    shard: 1,
                    position: 9,
                },
                record: StoredRecord {
                    partition_key: "k".into(),
                    data: vec![7; 300],
                    arrival_ms: 1_700_000_000_001,
                },
            }],
            next_iterator: Some("it".into()),
            millis_behind_latest: 3,
            child_shards: None,
        };
        let resp = Protocol::Cbor.ok_records(&page, "rid");
        assert_eq!(resp.headers()["content-type"], CBOR_CONTENT_TYPE);
        let json: Value = serde_json::from_slice(&wire::get_records_body(&page)).unwrap();
        let item = cbor::decode(&Protocol::Cbor.payload(&json)).unwrap();
        let Some(Cbor::Array(records)) = item.get("Records") else {
            panic!("{item:?}")
        };
        assert_eq!(records[0].get("Data"), Some(&Cbor::Bytes(vec![7; 300])));
        assert_eq!(
            records[0].get("ApproximateArrivalTimestamp"),
            Some(&Cbor::Tag(1, Box::new(Cbor::Int(1_700_000_000_001))))
        );
        assert_eq!(
            records[0].get("SequenceNumber"),
            Some(&text(&page.records[0].sequence.render()))
        );
        assert_eq!(item.get("MillisBehindLatest"), Some(&Cbor::Int(3)));
        assert_eq!(item.get("NextShardIterator"), Some(&text("it")));
    }

    #[test]
    fn errors_render_in_the_request_protocol() {
        let e = KinesisError::new(400, "ResourceNotFoundException", "gone");
        let resp = Protocol::Cbor.error(&e, "rid");
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.headers()["content-type"], CBOR_CONTENT_TYPE);
        assert_eq!(
            resp.headers()["x-amzn-errortype"],
            "ResourceNotFoundException"
        );
        let body = Protocol::Cbor.payload(&json!({ "__type": e.code, "message": e.message }));
        assert_eq!(
            cbor::decode(&body).unwrap(),
            Cbor::Map(vec![
                (text("__type"), text("ResourceNotFoundException")),
                (text("message"), text("gone")),
            ])
        );
        let json = Protocol::Json.error(&e, "rid");
        assert_eq!(json.headers()["content-type"], JSON_CONTENT_TYPE);
    }
}
