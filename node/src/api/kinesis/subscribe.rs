//! SubscribeToShard on the edge: the request is checked and answered with a normal JSON
//! error if it cannot start (unknown consumer or shard, a bad StartingPosition, the same
//! consumer and shard again within five seconds); otherwise the answer is 200
//! `application/vnd.amazon.eventstream` and its body a stream of event-stream messages
//! (`event_stream`): an `initial-response` event (the SDKs wait for it before `send()`
//! returns), then a `SubscribeToShardEvent` per batch of records (`stream::subscription`),
//! and an `exception` message if the subscription fails midway.
//!
//! It is served over whatever HTTP the connection speaks: HTTP/1.1 (a chunked body; what
//! the AWS SDK for Rust uses over plain `http://`) or HTTP/2 with prior knowledge (h2c,
//! one stream per subscription; what HTTP/2-only clients such as the Java SDK v2's Netty
//! client need). The event payloads are JSON, or CBOR when the request was CBOR
//! (`protocol`), each message's `:content-type` saying which.

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::HeaderValue;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::KinesisError;
use super::event_stream::{self, Message};
use super::protocol::Protocol;
use super::wire::{child_shard_json, millis_of, record_json, required};
use crate::stream::consumer::ConsumerArn;
use crate::stream::model::StreamError;
use crate::stream::service::{now_ms, shard_named, IteratorStart, StreamService};
use crate::stream::subscription::{Subscription, SubscriptionEvent, SubscriptionLedger};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartingPositionInput {
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    pub sequence_number: Option<String>,
    pub timestamp: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeInput {
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: Option<String>,
    pub shard_id: Option<String>,
    pub starting_position: Option<StartingPositionInput>,
}

/// Where a subscription starts, checked as Kinesis checks StartingPosition.
pub fn start_of(p: StartingPositionInput) -> Result<IteratorStart, KinesisError> {
    let kind = required("startingPosition.type", p.kind)?;
    let takes_sequence = matches!(
        kind.as_str(),
        "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER"
    );
    if !takes_sequence && p.sequence_number.is_some() {
        return Err(StreamError::invalid(format!(
            "SequenceNumber must not be provided for StartingPosition type {kind}."
        ))
        .into());
    }
    if kind != "AT_TIMESTAMP" && p.timestamp.is_some() {
        return Err(StreamError::invalid(format!(
            "Timestamp must not be provided for StartingPosition type {kind}."
        ))
        .into());
    }
    let sequence = |v: Option<String>| -> Result<String, KinesisError> {
        v.ok_or_else(|| {
            StreamError::invalid(format!(
                "SequenceNumber must be provided for StartingPosition type {kind}."
            ))
            .into()
        })
    };
    Ok(match kind.as_str() {
        "TRIM_HORIZON" => IteratorStart::TrimHorizon,
        "LATEST" => IteratorStart::Latest,
        "AT_SEQUENCE_NUMBER" => IteratorStart::AtSequence(sequence(p.sequence_number)?),
        "AFTER_SEQUENCE_NUMBER" => IteratorStart::AfterSequence(sequence(p.sequence_number)?),
        "AT_TIMESTAMP" => {
            let t = p.timestamp.ok_or_else(|| {
                StreamError::invalid(
                    "Timestamp must be provided for StartingPosition type AT_TIMESTAMP.",
                )
            })?;
            IteratorStart::AtTimestamp(millis_of("Timestamp", &t)?)
        }
        other => {
            return Err(StreamError::constraint(
                "startingPosition.type",
                other,
                "Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, AT_TIMESTAMP, TRIM_HORIZON, LATEST]",
            )
            .into())
        }
    })
}

/// Check the request and open the subscription, or the error to answer with.
pub async fn subscribe(
    s: &Arc<StreamService>,
    ledger: &Mutex<SubscriptionLedger>,
    input: SubscribeInput,
) -> Result<Subscription, KinesisError> {
    let arn = ConsumerArn::parse(&required("consumerARN", input.consumer_arn)?)?;
    let shard = required("shardId", input.shard_id)?;
    let start = start_of(required("startingPosition", input.starting_position)?)?;
    let consumer = s.consumer_by_arn(&arn).await?;
    let record = s.stream(&arn.stream).await?;
    let shard = shard_named(&record, &shard)?.clone();
    let position = s
        .start_position(&record, &shard, start, "SubscribeToShard")
        .await?;
    ledger
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .start(&consumer.arn(), shard.id, now_ms())?;
    Ok(Subscription::new(
        s.clone(),
        record,
        consumer,
        shard.id,
        position,
    ))
}

/// The event-stream message an event becomes, its payload in the request's protocol.
pub fn message_of(event: SubscriptionEvent, protocol: Protocol) -> Message {
    match event {
        SubscriptionEvent::Records {
            records,
            continuation,
            millis_behind_latest,
            child_shards,
        } => {
            let mut payload = json!({
                "Records": records.iter().map(record_json).collect::<Vec<_>>(),
                "MillisBehindLatest": millis_behind_latest,
            });
            if let Some(c) = continuation {
                payload["ContinuationSequenceNumber"] = json!(c.render());
            }
            if let Some(children) = child_shards {
                payload["ChildShards"] =
                    json!(children.iter().map(child_shard_json).collect::<Vec<_>>());
            }
            Message::event(
                "SubscribeToShardEvent",
                protocol.event_content_type(),
                protocol.payload(&payload),
            )
        }
        SubscriptionEvent::Failed(e) => {
            let e = KinesisError::from(e);
            Message::exception(
                &e.code,
                protocol.event_content_type(),
                protocol.payload(&json!({ "message": e.message })),
            )
        }
    }
}

/// The 200 answer whose body pushes the subscription's events.
pub fn response(subscription: Subscription, protocol: Protocol, request_id: &str) -> Response {
    let initial = Message::event(
        "initial-response",
        protocol.event_content_type(),
        protocol.payload(&json!({})),
    )
    .encode();
    let first = futures::stream::once(async move {
        Ok::<Bytes, std::convert::Infallible>(Bytes::from(initial))
    });
    let events = futures::stream::unfold(subscription, move |mut sub| async move {
        let event = sub.next_event().await?;
        Some((Ok(Bytes::from(message_of(event, protocol).encode())), sub))
    });
    let mut resp = Response::new(Body::from_stream(futures::StreamExt::chain(first, events)));
    let headers = resp.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static(event_stream::CONTENT_TYPE),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::model::SequenceNumber;

    fn position(v: Value) -> Result<IteratorStart, String> {
        start_of(serde_json::from_value(v).unwrap()).map_err(|e| e.code)
    }

    #[test]
    fn starting_positions_are_checked_as_kinesis_checks_them() {
        assert_eq!(
            position(json!({"Type": "LATEST"})),
            Ok(IteratorStart::Latest)
        );
        assert_eq!(
            position(json!({"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": "5"})),
            Ok(IteratorStart::AfterSequence("5".into()))
        );
        assert_eq!(
            position(json!({"Type": "AT_TIMESTAMP", "Timestamp": 1.5})),
            Ok(IteratorStart::AtTimestamp(1_500))
        );
        let code = |v| position(v).unwrap_err();
        assert_eq!(code(json!({})), "ValidationException");
        assert_eq!(code(json!({"Type": "NEWEST"})), "ValidationException");
        assert_eq!(
            code(json!({"Type": "AT_SEQUENCE_NUMBER"})),
            "InvalidArgumentException"
        );
        assert_eq!(
            code(json!({"Type": "LATEST", "SequenceNumber": "1"})),
            "InvalidArgumentException"
        );
        assert_eq!(
            code(json!({"Type": "AT_TIMESTAMP"})),
            "InvalidArgumentException"
        );
    }

    #[test]
    fn events_become_the_messages_the_sdks_read() {
        let m = message_of(
            SubscriptionEvent::Records {
                records: Vec::new(),
                continuation: Some(SequenceNumber {
                    shard: 0,
                    position: 3,
                }),
                millis_behind_latest: 0,
                child_shards: None,
            },
            Protocol::Json,
        );
        assert_eq!(m.header(":content-type"), Some("application/json"));
        assert_eq!(m.header(":message-type"), Some("event"));
        assert_eq!(m.header(":event-type"), Some("SubscribeToShardEvent"));
        let payload: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(payload["Records"], json!([]));
        assert!(payload["ContinuationSequenceNumber"].is_string());
        assert!(payload.get("ChildShards").is_none());
        let failed = message_of(
            SubscriptionEvent::Failed(StreamError::ResourceNotFound("gone".into()).into()),
            Protocol::Json,
        );
        assert_eq!(failed.header(":message-type"), Some("exception"));
        assert_eq!(
            failed.header(":exception-type"),
            Some("ResourceNotFoundException")
        );
        let (back, _) = event_stream::decode(&failed.encode()).unwrap();
        assert_eq!(back, failed);
        let payload: Value = serde_json::from_slice(&back.payload).unwrap();
        assert!(payload["message"].as_str().unwrap().contains("gone"));
    }

    #[test]
    fn cbor_subscriptions_get_cbor_payloads() {
        use crate::api::cbor::{self, Cbor};
        use crate::stream::log::{ReadRecord, StoredRecord};
        let record = ReadRecord {
            sequence: SequenceNumber {
                shard: 0,
                position: 1,
            },
            record: StoredRecord {
                partition_key: "k".into(),
                data: vec![0, 0xff],
                arrival_ms: 1_700_000_000_250,
            },
        };
        let m = message_of(
            SubscriptionEvent::Records {
                records: vec![record.clone()],
                continuation: Some(record.sequence),
                millis_behind_latest: 0,
                child_shards: None,
            },
            Protocol::Cbor,
        );
        assert_eq!(
            m.header(":content-type"),
            Some("application/x-amz-cbor-1.1")
        );
        let payload = cbor::decode(&m.payload).unwrap();
        let Some(Cbor::Array(records)) = payload.get("Records") else {
            panic!("{payload:?}")
        };
        assert_eq!(records[0].get("Data"), Some(&Cbor::Bytes(vec![0, 0xff])));
        assert_eq!(
            records[0].get("ApproximateArrivalTimestamp"),
            Some(&Cbor::Tag(1, Box::new(Cbor::Int(1_700_000_000_250))))
        );
        assert_eq!(
            payload.get("ContinuationSequenceNumber"),
            Some(&Cbor::text(record.sequence.render()))
        );
        let failed = message_of(
            SubscriptionEvent::Failed(StreamError::ResourceNotFound("gone".into()).into()),
            Protocol::Cbor,
        );
        assert_eq!(
            failed.header(":content-type"),
            Some("application/x-amz-cbor-1.1")
        );
        assert!(matches!(
            cbor::decode(&failed.payload).unwrap().get("message"),
            Some(Cbor::Text(m)) if m.contains("gone")
        ));
    }
}
