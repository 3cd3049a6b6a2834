//! Queue operations: create, look up, list, delete, attributes, tags, purge and
//! dead-letter sources.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::wire::{
    required, CreateQueueInput, DeadLetterSourcesInput, GetQueueAttributesInput, GetQueueUrlInput,
    ListQueuesInput, QueueUrlOnly, SetQueueAttributesInput, TagQueueInput, UntagQueueInput,
};
use super::{queue_in, Call, SqsError};
use crate::queue::model::{requested_attributes, QueueName, ACCOUNT_ID};
use crate::queue::service::{QueueService, QueueView};
use crate::queue::state::QueueQuery;
use crate::queue::QueueError;

/// ListQueues and ListDeadLetterSourceQueues page size: at most 1000.
const MAX_LIST: i64 = 1000;

pub async fn create(
    s: &QueueService,
    call: &Call,
    input: CreateQueueInput,
) -> Result<Value, SqsError> {
    let name = QueueName::parse(&required("QueueName", input.queue_name)?)?;
    let attributes = input.attributes.unwrap_or_default();
    s.create_queue(&name, &attributes, input.tags.unwrap_or_default())
        .await?;
    Ok(json!({ "QueueUrl": call.queue_url(&name) }))
}

pub async fn get_url(
    s: &QueueService,
    call: &Call,
    input: GetQueueUrlInput,
) -> Result<Value, SqsError> {
    let name = required("QueueName", input.queue_name)?;
    let name = QueueName::parse(&name).map_err(|_| QueueError::QueueDoesNotExist)?;
    if input
        .queue_owner_aws_account_id
        .is_some_and(|a| a != ACCOUNT_ID)
    {
        return Err(QueueError::QueueDoesNotExist.into());
    }
    s.get(&name).await?;
    Ok(json!({ "QueueUrl": call.queue_url(&name) }))
}

fn page_limit(max_results: Option<i64>) -> Result<Option<u32>, SqsError> {
    match max_results {
        None => Ok(None),
        Some(m) if (1..=MAX_LIST).contains(&m) => Ok(Some(m as u32)),
        Some(m) => {
            Err(QueueError::invalid_value("MaxResults", m, "Must be between 1 and 1000.").into())
        }
    }
}

fn token_in(token: Option<String>) -> Result<Option<String>, SqsError> {
    match token {
        None => Ok(None),
        Some(t) if t.is_empty() => Ok(None),
        Some(t) => URL_SAFE_NO_PAD
            .decode(t.as_bytes())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(Some)
            .ok_or_else(|| {
                QueueError::invalid_value("NextToken", t, "Invalid NextToken value.").into()
            }),
    }
}

/// A page of names and, when asked for a page size and more follow, its NextToken.
fn page(call: &Call, names: Vec<QueueName>, more: bool, paged: bool, field: &str) -> Value {
    let mut out = Map::new();
    if !names.is_empty() {
        out.insert(
            field.to_string(),
            Value::from(names.iter().map(|n| call.queue_url(n)).collect::<Vec<_>>()),
        );
    }
    if paged && more {
        if let Some(last) = names.last() {
            out.insert(
                "NextToken".into(),
                Value::from(URL_SAFE_NO_PAD.encode(last.as_str())),
            );
        }
    }
    Value::Object(out)
}

pub async fn list(
    s: &QueueService,
    call: &Call,
    input: ListQueuesInput,
) -> Result<Value, SqsError> {
    let limit = page_limit(input.max_results)?;
    let after = token_in(input.next_token)?;
    let prefix = input.queue_name_prefix.unwrap_or_default();
    let (names, more) = s
        .list(
            move |after, limit| QueueQuery::List {
                prefix: prefix.clone(),
                after,
                limit,
            },
            after,
            limit.unwrap_or(MAX_LIST as u32),
        )
        .await?;
    Ok(page(call, names, more, limit.is_some(), "QueueUrls"))
}

pub async fn delete(s: &QueueService, input: QueueUrlOnly) -> Result<Value, SqsError> {
    s.delete_queue(&queue_in(input.queue_url)?).await?;
    Ok(json!({}))
}

/// Every attribute GetQueueAttributes may name, rendered for `view`.
fn attribute_value(view: &QueueView, name: &str) -> Option<String> {
    let r = &view.record;
    let c = &view.counts;
    Some(match name {
        "ApproximateNumberOfMessages" => c.visible.to_string(),
        "ApproximateNumberOfMessagesNotVisible" => c.not_visible.to_string(),
        "ApproximateNumberOfMessagesDelayed" => c.delayed.to_string(),
        "CreatedTimestamp" => (r.created_ms / 1000).to_string(),
        "LastModifiedTimestamp" => (r.modified_ms / 1000).to_string(),
        "QueueArn" => r.name.arn(),
        other => return r.config.attribute(other),
    })
}

pub async fn get_attributes(
    s: &QueueService,
    input: GetQueueAttributesInput,
) -> Result<Value, SqsError> {
    let queue = queue_in(input.queue_url)?;
    let names = requested_attributes(&input.attribute_names.unwrap_or_default())?;
    let view = s.get(&queue).await?;
    let mut out = Map::new();
    for name in names {
        if let Some(v) = attribute_value(&view, name) {
            out.insert(name.to_string(), Value::from(v));
        }
    }
    if out.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({ "Attributes": out }))
}

pub async fn set_attributes(
    s: &QueueService,
    input: SetQueueAttributesInput,
) -> Result<Value, SqsError> {
    let queue = queue_in(input.queue_url)?;
    s.set_attributes(&queue, required("Attributes", input.attributes)?)
        .await?;
    Ok(json!({}))
}

pub async fn purge(s: &QueueService, input: QueueUrlOnly) -> Result<Value, SqsError> {
    s.purge(&queue_in(input.queue_url)?).await?;
    Ok(json!({}))
}

pub async fn tag(s: &QueueService, input: TagQueueInput) -> Result<Value, SqsError> {
    let queue = queue_in(input.queue_url)?;
    s.tag(&queue, required("Tags", input.tags)?).await?;
    Ok(json!({}))
}

pub async fn untag(s: &QueueService, input: UntagQueueInput) -> Result<Value, SqsError> {
    let queue = queue_in(input.queue_url)?;
    s.untag(&queue, required("TagKeys", input.tag_keys)?)
        .await?;
    Ok(json!({}))
}

pub async fn list_tags(s: &QueueService, input: QueueUrlOnly) -> Result<Value, SqsError> {
    let view = s.get(&queue_in(input.queue_url)?).await?;
    if view.record.tags.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({ "Tags": view.record.tags }))
}

pub async fn dead_letter_sources(
    s: &QueueService,
    call: &Call,
    input: DeadLetterSourcesInput,
) -> Result<Value, SqsError> {
    let queue = queue_in(input.queue_url)?;
    let limit = page_limit(input.max_results)?;
    let after = token_in(input.next_token)?;
    let (names, more) = s
        .dead_letter_sources(&queue, after, limit.unwrap_or(MAX_LIST as u32))
        .await?;
    let mut out = page(call, names, more, limit.is_some(), "queueUrls");
    // SQS always returns the (required) list, even when empty.
    if let Value::Object(m) = &mut out {
        m.entry("queueUrls").or_insert_with(|| json!([]));
    }
    Ok(out)
}
