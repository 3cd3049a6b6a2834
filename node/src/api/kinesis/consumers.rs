//! Enhanced fan-out consumers on the edge: RegisterStreamConsumer, DescribeStreamConsumer,
//! ListStreamConsumers, DeregisterStreamConsumer.
//!
//! RegisterStreamConsumer answers `CREATING`, as Kinesis does; the consumer is usable at
//! once (SubscribeToShard accepts it) and every later read shows it `ACTIVE`. Deregistering
//! removes it at once (Kinesis shows `DELETING` for a while): the next Describe is
//! `ResourceNotFoundException`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::KinesisError;
use super::wire::{required, stream_of, timestamp};
use crate::stream::consumer::{ConsumerArn, ConsumerName, ConsumerRecord, MAX_LIST_CONSUMERS};
use crate::stream::model::{StreamError, StreamName};
use crate::stream::paging::ListConsumersToken;
use crate::stream::service::{now_ms, StreamService};

type Reply = Result<Value, KinesisError>;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub consumer_name: Option<String>,
}

/// DescribeStreamConsumer and DeregisterStreamConsumer: a ConsumerARN, or a StreamARN and
/// a ConsumerName.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerRefInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub consumer_name: Option<String>,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub stream_creation_timestamp: Option<Value>,
}

/// What a request's consumer reference names: one registration (by ARN) or whatever is
/// registered under a name.
struct ConsumerRef {
    stream: StreamName,
    name: ConsumerName,
    created_seconds: Option<u64>,
}

fn stream_arn_of(arn: Option<&str>) -> Result<StreamName, StreamError> {
    let arn = required("streamARN", arn)?;
    stream_of(None, Some(arn))
}

fn consumer_ref(input: ConsumerRefInput) -> Result<ConsumerRef, StreamError> {
    match (input.consumer_arn, input.stream_arn, input.consumer_name) {
        (Some(arn), None, None) => {
            let arn = ConsumerArn::parse(&arn)?;
            Ok(ConsumerRef {
                stream: arn.stream,
                name: arn.name,
                created_seconds: Some(arn.created_seconds),
            })
        }
        (None, Some(stream), Some(name)) => Ok(ConsumerRef {
            stream: stream_of(None, Some(&stream))?,
            name: ConsumerName::parse(&name)?,
            created_seconds: None,
        }),
        _ => Err(StreamError::invalid(
            "Either ConsumerARN, or StreamARN and ConsumerName, must be provided (not both).",
        )),
    }
}

fn consumer_json(c: &ConsumerRecord, status: &str) -> Value {
    json!({
        "ConsumerName": c.name.as_str(),
        "ConsumerARN": c.arn(),
        "ConsumerStatus": status,
        "ConsumerCreationTimestamp": timestamp(c.created_ms),
    })
}

pub async fn register(s: &StreamService, input: RegisterInput) -> Reply {
    let stream = stream_arn_of(input.stream_arn.as_deref())?;
    let name = ConsumerName::parse(&required("consumerName", input.consumer_name)?)?;
    let consumer = s.register_consumer(&stream, name).await?;
    Ok(json!({ "Consumer": consumer_json(&consumer, "CREATING") }))
}

pub async fn describe(s: &StreamService, input: ConsumerRefInput) -> Reply {
    let r = consumer_ref(input)?;
    let consumer = match r.created_seconds {
        Some(created_seconds) => {
            s.consumer_by_arn(&ConsumerArn {
                stream: r.stream,
                name: r.name,
                created_seconds,
            })
            .await?
        }
        None => s.consumer(&r.stream, &r.name).await?,
    };
    let mut description = consumer_json(&consumer, "ACTIVE");
    description["StreamARN"] = json!(consumer.stream.arn());
    Ok(json!({ "ConsumerDescription": description }))
}

pub async fn deregister(s: &StreamService, input: ConsumerRefInput) -> Reply {
    let r = consumer_ref(input)?;
    s.deregister_consumer(&r.stream, r.name, r.created_seconds)
        .await?;
    Ok(json!({}))
}

pub async fn list(s: &StreamService, input: ListInput) -> Reply {
    let stream = stream_arn_of(input.stream_arn.as_deref())?;
    let limit = super::wire::int_in(
        "maxResults",
        input.max_results,
        1,
        i64::from(MAX_LIST_CONSUMERS),
    )?
    .unwrap_or(100);
    let record = s.stream(&stream).await?;
    if let Some(t) = &input.stream_creation_timestamp {
        let at_ms = super::wire::millis_of("StreamCreationTimestamp", t)?;
        // A stream created at another time is another incarnation of the name.
        if at_ms / 1000 != record.created_ms / 1000 {
            return Err(StreamError::not_found(&stream).into());
        }
    }
    let after = match &input.next_token {
        Some(token) => {
            let t = ListConsumersToken::decode(token, s.token_key(), now_ms())?;
            if t.stream != stream || t.incarnation != record.incarnation {
                return Err(StreamError::invalid(format!(
                    "NextToken {token} was not issued for stream {stream}."
                ))
                .into());
            }
            Some(t.after)
        }
        None => None,
    };
    let (consumers, more) = s.list_consumers(&stream, after, limit).await?;
    let mut out = json!({
        "Consumers": consumers
            .iter()
            .map(|c| consumer_json(c, "ACTIVE"))
            .collect::<Vec<_>>(),
    });
    if let (true, Some(last)) = (more, consumers.last()) {
        out["NextToken"] = json!(ListConsumersToken {
            stream: stream.clone(),
            incarnation: record.incarnation,
            after: last.name.clone(),
            issued_ms: now_ms(),
        }
        .encode(s.token_key()));
    }
    Ok(out)
}
