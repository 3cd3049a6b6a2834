//! Kinesis Data Streams on the HTTP edge (HTTP/1.1 and HTTP/2 with prior knowledge on the
//! same port): `POST /`, `X-Amz-Target: Kinesis_20131202.<Operation>`, in AWS JSON 1.1
//! (`Content-Type: application/x-amz-json-1.1`) or AWS CBOR 1.1
//! (`application/x-amz-cbor-1.1`, the Java SDK's default), chosen per request by its
//! content type (`protocol`); SigV4 with the edge's credentials over the body as received
//! (`aws_json`); errors as Kinesis renders them (`errors`). Each operation parses its JSON
//! shape (`wire`; a CBOR body is turned into that JSON first), calls the stream service
//! and renders the answer in the request's protocol; `streams`, `records` and `consumers`
//! hold the operations by concern. SubscribeToShard (`subscribe`) answers with a streamed
//! body of event-stream messages (`event_stream`) instead of one document.
//!
//! Operations Kinesis has that Stratus does not (encryption, resource policies, account
//! settings) answer `InvalidArgumentException` naming the operation:
//! Kinesis has no "unsupported" code, and that one tells SDKs not to retry.

mod consumers;
mod errors;
pub mod event_stream;
pub mod protocol;
mod records;
mod streams;
mod subscribe;
mod wire;

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::response::Response;
use serde_json::Value;

pub use errors::KinesisError;
use protocol::Protocol;
use wire::parse;

use super::aws_json::{self, SignedJson};
use super::s3::access::Authorizer;
use super::s3::auth::AccessKeys;
use crate::stream::model::StreamError;
use crate::stream::service::StreamService;
use crate::stream::subscription::SubscriptionLedger;

/// The `X-Amz-Target` prefix of Kinesis requests.
pub const TARGET_PREFIX: &str = "Kinesis_20131202.";
/// Largest request body read: a 5 MiB PutRecords in base64 with 500 partition keys and
/// JSON framing (in CBOR the same request is smaller: its data are raw bytes).
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Kinesis operations Stratus does not serve (they answer InvalidArgumentException).
const NOT_SERVED: [&str; 12] = [
    "StartStreamEncryption",
    "StopStreamEncryption",
    "EnableEnhancedMonitoring",
    "DisableEnhancedMonitoring",
    "UpdateStreamMode",
    "GetResourcePolicy",
    "PutResourcePolicy",
    "DeleteResourcePolicy",
    "DescribeAccountSettings",
    "UpdateAccountSettings",
    "UpdateMaxRecordSize",
    "UpdateStreamWarmThroughput",
];

/// A successful answer: one document, or SubscribeToShard's event stream.
enum Answer {
    Json(Value),
    /// GetRecords' page (JSON rendered straight from it, `wire::get_records_body`).
    Records(crate::stream::service::RecordsPage),
    Streamed(Response),
}

pub struct KinesisApi {
    service: Arc<StreamService>,
    keys: Arc<dyn AccessKeys>,
    authorizer: Arc<dyn Authorizer>,
    /// When each consumer last subscribed to each shard through this node.
    subscriptions: Mutex<SubscriptionLedger>,
}

impl KinesisApi {
    pub fn new(
        service: Arc<StreamService>,
        keys: Arc<dyn AccessKeys>,
        authorizer: Arc<dyn Authorizer>,
    ) -> Self {
        KinesisApi {
            service,
            keys,
            authorizer,
            subscriptions: Mutex::new(SubscriptionLedger::default()),
        }
    }

    /// Whether a request is for Kinesis (by its target header).
    pub fn claims(req: &Request) -> bool {
        aws_json::target(req).is_some_and(|t| t.starts_with(TARGET_PREFIX))
    }

    pub async fn handle(&self, req: Request) -> Response {
        let id = crate::queue::service::random_uuid();
        let protocol = Protocol::of(req.headers());
        match self.serve(req, protocol, &id).await {
            Ok(Answer::Json(value)) => protocol.ok(&value, &id),
            Ok(Answer::Records(page)) => protocol.ok_records(&page, &id),
            Ok(Answer::Streamed(resp)) => resp,
            Err(e) => {
                if e.status >= 500 {
                    tracing::warn!(code = %e.code, "kinesis request failed: {}", e.message);
                }
                protocol.error(&e, &id)
            }
        }
    }

    async fn serve(
        &self,
        req: Request,
        protocol: Protocol,
        id: &str,
    ) -> Result<Answer, KinesisError> {
        let mut call =
            aws_json::read_signed(req, TARGET_PREFIX, MAX_BODY_BYTES, self.keys.as_ref()).await?;
        if !call.is_post {
            return Err(KinesisError::serialization(
                "Kinesis's JSON and CBOR protocols take POST requests.",
            ));
        }
        // The signature covered the body as sent; from here on it is the JSON document.
        call.body = protocol.request_json(call.body)?;
        self.authorize(&call)?;
        if call.operation == "SubscribeToShard" {
            let subscription =
                subscribe::subscribe(&self.service, &self.subscriptions, parse(&call.body)?)
                    .await?;
            return Ok(Answer::Streamed(subscribe::response(
                subscription,
                protocol,
                id,
            )));
        }
        if call.operation == "GetRecords" {
            let page = records::get_records(&self.service, parse(&call.body)?).await?;
            return Ok(Answer::Records(page));
        }
        self.dispatch(&call.operation, &call.body)
            .await
            .map(Answer::Json)
    }

    /// IAM's seam: may the caller run this operation on this stream?
    fn authorize(&self, call: &SignedJson) -> Result<(), KinesisError> {
        let resource = serde_json::from_slice::<wire::StreamRef>(&call.body)
            .ok()
            .and_then(|r| r.stream().ok())
            .map(|name| name.arn())
            .unwrap_or_else(|| "*".to_string());
        let action = format!("kinesis:{}", call.operation);
        if self
            .authorizer
            .allows(&call.caller.access_key, &action, &resource)
        {
            Ok(())
        } else {
            Err(KinesisError::access_denied(&call.operation))
        }
    }

    async fn dispatch(&self, operation: &str, body: &[u8]) -> Result<Value, KinesisError> {
        let s = &self.service;
        match operation {
            "CreateStream" => streams::create(s, parse(body)?).await,
            "DeleteStream" => streams::delete(s, parse(body)?).await,
            "DescribeStream" => streams::describe(s, parse(body)?).await,
            "DescribeStreamSummary" => streams::describe_summary(s, parse(body)?).await,
            "ListStreams" => streams::list_streams(s, parse(body)?).await,
            "ListShards" => streams::list_shards(s, parse(body)?).await,
            "IncreaseStreamRetentionPeriod" => streams::retention(s, parse(body)?, true).await,
            "DecreaseStreamRetentionPeriod" => streams::retention(s, parse(body)?, false).await,
            "AddTagsToStream" => streams::add_tags(s, parse(body)?).await,
            "RemoveTagsFromStream" => streams::remove_tags(s, parse(body)?).await,
            "ListTagsForStream" => streams::list_tags(s, parse(body)?).await,
            "TagResource" => streams::tag_resource(s, parse(body)?).await,
            "UntagResource" => streams::untag_resource(s, parse(body)?).await,
            "ListTagsForResource" => streams::list_tags_for_resource(s, parse(body)?).await,
            "DescribeLimits" => {
                parse::<serde_json::Map<String, Value>>(body)?;
                streams::describe_limits(s).await
            }
            "SplitShard" => streams::split(s, parse(body)?).await,
            "MergeShards" => streams::merge(s, parse(body)?).await,
            "UpdateShardCount" => streams::update_shard_count(s, parse(body)?).await,
            "PutRecord" => records::put_record(s, parse(body)?).await,
            "PutRecords" => records::put_records(s, parse(body)?).await,
            "GetShardIterator" => records::get_shard_iterator(s, parse(body)?).await,
            "RegisterStreamConsumer" => consumers::register(s, parse(body)?).await,
            "DescribeStreamConsumer" => consumers::describe(s, parse(body)?).await,
            "ListStreamConsumers" => consumers::list(s, parse(body)?).await,
            "DeregisterStreamConsumer" => consumers::deregister(s, parse(body)?).await,
            op if NOT_SERVED.contains(&op) => Err(StreamError::invalid(format!(
                "{op} is not supported by Stratus (encryption, enhanced monitoring, resource policies and account settings are not implemented)."
            ))
            .into()),
            op => Err(KinesisError::unknown_operation(op)),
        }
    }
}
