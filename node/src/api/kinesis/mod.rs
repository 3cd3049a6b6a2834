//! Kinesis Data Streams on the HTTP edge: AWS JSON 1.1 (`POST /`,
//! `X-Amz-Target: Kinesis_20131202.<Operation>`, `Content-Type:
//! application/x-amz-json-1.1`), SigV4 with the edge's credentials (`aws_json`), errors as
//! Kinesis renders them (`errors`). Each operation parses its JSON shape (`wire`), calls
//! the stream service and renders the answer; `streams` and `records` hold the operations
//! by concern.
//!
//! Operations Kinesis has that Stratus does not (enhanced fan-out, encryption, resource
//! policies, account settings) answer `InvalidArgumentException` naming the operation:
//! Kinesis has no "unsupported" code, and that one tells SDKs not to retry. CBOR
//! (`application/x-amz-cbor-1.1`) is not served.

mod errors;
mod records;
mod streams;
mod wire;

use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use serde_json::Value;

pub use errors::KinesisError;
use wire::parse;

use super::aws_json::{self, SignedJson};
use super::s3::access::Authorizer;
use super::s3::auth::AccessKeys;
use crate::stream::model::StreamError;
use crate::stream::service::StreamService;

/// The `X-Amz-Target` prefix of Kinesis requests.
pub const TARGET_PREFIX: &str = "Kinesis_20131202.";
/// Largest request body read: a 5 MiB PutRecords in base64 with 500 partition keys and
/// JSON framing.
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Kinesis operations Stratus does not serve (they answer InvalidArgumentException).
const NOT_SERVED: [&str; 17] = [
    "RegisterStreamConsumer",
    "DeregisterStreamConsumer",
    "DescribeStreamConsumer",
    "ListStreamConsumers",
    "SubscribeToShard",
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

pub struct KinesisApi {
    service: Arc<StreamService>,
    keys: Arc<dyn AccessKeys>,
    authorizer: Arc<dyn Authorizer>,
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
        }
    }

    /// Whether a request is for Kinesis (by its target header).
    pub fn claims(req: &Request) -> bool {
        aws_json::target(req).is_some_and(|t| t.starts_with(TARGET_PREFIX))
    }

    pub async fn handle(&self, req: Request) -> Response {
        let id = crate::queue::service::random_uuid();
        match self.serve(req).await {
            Ok(value) => aws_json::ok_response(&value, errors::CONTENT_TYPE, &id),
            Err(e) => {
                if e.status >= 500 {
                    tracing::warn!(code = %e.code, "kinesis request failed: {}", e.message);
                }
                e.render(&id)
            }
        }
    }

    async fn serve(&self, req: Request) -> Result<Value, KinesisError> {
        let call =
            aws_json::read_signed(req, TARGET_PREFIX, MAX_BODY_BYTES, self.keys.as_ref()).await?;
        if !call.is_post {
            return Err(KinesisError::serialization(
                "Kinesis's JSON protocol takes POST requests.",
            ));
        }
        self.authorize(&call)?;
        self.dispatch(&call.operation, &call.body).await
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
            "GetRecords" => records::get_records(s, parse(body)?).await,
            op if NOT_SERVED.contains(&op) => Err(StreamError::invalid(format!(
                "{op} is not supported by Stratus (enhanced fan-out, encryption, resource policies and account settings are not implemented)."
            ))
            .into()),
            op => Err(KinesisError::unknown_operation(op)),
        }
    }
}
