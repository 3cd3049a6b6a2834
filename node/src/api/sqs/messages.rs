//! Message operations: send, receive, delete and visibility changes, single and batched.

use serde_json::{json, Map, Value};

use super::digest::{md5_of_all, md5_of_attributes, md5_of_body};
use super::wire::{
    attribute_out, attributes_in, required, seconds_field, BatchFailure, BatchOfReceipts,
    ChangeVisibilityInput, DeleteMessageInput, ReceiveMessageInput, SendEntry,
    SendMessageBatchInput, SendMessageInput,
};
use super::{queue_in, Call, SqsError};
use crate::queue::model::{AttributeValue, MessageAttributes};
use crate::queue::service::{
    check_batch, QueueService, ReceiveRequest, ReceivedMessage, SendRequest,
};
use crate::queue::state::SentMessage;
use crate::queue::QueueError;

/// The only system attribute a sender may set.
const TRACE_HEADER: &str = "AWSTraceHeader";
const SYSTEM_ATTRIBUTES: &[&str] = &[
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageDeduplicationId",
    "MessageGroupId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
];

/// A wire entry as the service's request; the trace header as its own attribute map too
/// (for MD5OfMessageSystemAttributes).
fn send_request(entry: SendEntry) -> Result<(SendRequest, MessageAttributes), QueueError> {
    let attributes = attributes_in(entry.message_attributes)?;
    let system = attributes_in(entry.message_system_attributes)?;
    if let Some(name) = system.keys().find(|k| k.as_str() != TRACE_HEADER) {
        return Err(QueueError::invalid_value(
            "MessageSystemAttributes",
            name,
            "AWSTraceHeader is the only system attribute a message may be sent with.",
        ));
    }
    let trace_header = match system.get(TRACE_HEADER) {
        Some(v) if v.data_type == "String" && v.string_value.is_some() => v.string_value.clone(),
        Some(_) => {
            return Err(QueueError::invalid_value(
                "MessageSystemAttributes",
                TRACE_HEADER,
                "AWSTraceHeader must be a String.",
            ))
        }
        None => None,
    };
    let request = SendRequest {
        body: entry.message_body,
        attributes,
        trace_header,
        delay_seconds: seconds_field("DelaySeconds", entry.delay_seconds)?,
        group_id: entry.message_group_id,
        dedup_id: entry.message_deduplication_id,
    };
    Ok((request, system))
}

fn sent_json(
    sent: &SentMessage,
    request: &SendRequest,
    system: &MessageAttributes,
    fifo: bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("MessageId".into(), Value::from(sent.message_id.clone()));
    out.insert(
        "MD5OfMessageBody".into(),
        Value::from(md5_of_body(request.body.as_deref().unwrap_or_default())),
    );
    if let Some(md5) = md5_of_all(&request.attributes) {
        out.insert("MD5OfMessageAttributes".into(), Value::from(md5));
    }
    if let Some(md5) = md5_of_all(system) {
        out.insert("MD5OfMessageSystemAttributes".into(), Value::from(md5));
    }
    if fifo {
        out.insert(
            "SequenceNumber".into(),
            Value::from(crate::queue::service::sequence_number(sent.seq)),
        );
    }
    out
}

pub async fn send(
    s: &QueueService,
    call: &Call,
    input: SendMessageInput,
) -> Result<Value, SqsError> {
    let queue = queue_in(input.queue_url)?;
    let (request, system) = send_request(input.entry)?;
    let mut results = s
        .send(&queue, vec![request.clone()], &call.caller.access_key)
        .await?;
    let sent = results.remove(0)?;
    Ok(Value::Object(sent_json(
        &sent,
        &request,
        &system,
        queue.is_fifo(),
    )))
}

pub async fn send_batch(
    s: &QueueService,
    call: &Call,
    input: SendMessageBatchInput,
) -> Result<Value, SqsError> {
    let queue = queue_in(input.queue_url)?;
    let entries = input.entries.unwrap_or_default();
    let ids: Vec<String> = entries
        .iter()
        .map(|e| e.id.clone().unwrap_or_default())
        .collect();
    let mut parsed = Vec::new();
    let mut failed = Vec::new();
    let mut total = 0;
    for (id, entry) in ids.iter().zip(entries) {
        match send_request(entry) {
            Ok((request, system)) => {
                total += request.size_bytes();
                parsed.push((id.clone(), request, system));
            }
            Err(e) => failed.push(BatchFailure::of(id, &e)),
        }
    }
    check_batch(
        &ids.iter().map(String::as_str).collect::<Vec<_>>(),
        total,
        "SendMessageBatchRequestEntry",
    )?;
    let requests = parsed.iter().map(|(_, r, _)| r.clone()).collect();
    let results = s.send(&queue, requests, &call.caller.access_key).await?;
    let mut successful = Vec::new();
    for ((id, request, system), result) in parsed.iter().zip(results) {
        match result {
            Ok(sent) => {
                let mut entry = sent_json(&sent, request, system, queue.is_fifo());
                entry.insert("Id".into(), Value::from(id.clone()));
                successful.push(Value::Object(entry));
            }
            Err(e) => failed.push(BatchFailure::of(id, &e)),
        }
    }
    Ok(json!({ "Successful": successful, "Failed": failed }))
}

/// Which message attributes a receive asked for: `All`/`.*`, `prefix.*` (any name that
/// starts with the prefix), or exact names.
fn wanted_attribute(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| {
        p == "All"
            || p == ".*"
            || p == name
            || p.strip_suffix(".*")
                .is_some_and(|prefix| name.starts_with(prefix))
    })
}

fn message_json(
    m: &ReceivedMessage,
    system_names: &[String],
    attribute_patterns: &[String],
) -> Value {
    let msg = &m.message;
    let mut out = Map::new();
    out.insert("MessageId".into(), Value::from(msg.message_id.clone()));
    out.insert(
        "ReceiptHandle".into(),
        Value::from(m.receipt_handle.clone()),
    );
    out.insert("MD5OfBody".into(), Value::from(md5_of_body(&msg.body)));
    out.insert("Body".into(), Value::from(msg.body.clone()));
    let all = system_names.iter().any(|n| n == "All");
    let mut attrs = Map::new();
    for name in SYSTEM_ATTRIBUTES {
        if !all && !system_names.iter().any(|n| n == name) {
            continue;
        }
        let value = match *name {
            "SenderId" => Some(msg.sender_id.clone()),
            "SentTimestamp" => Some(msg.sent_ms.to_string()),
            "ApproximateReceiveCount" => Some(msg.receive_count.to_string()),
            "ApproximateFirstReceiveTimestamp" => msg.first_receive_ms.map(|t| t.to_string()),
            "SequenceNumber" => m.sequence_number.clone(),
            "MessageDeduplicationId" => msg.dedup_id.clone(),
            "MessageGroupId" => msg.group_id.clone(),
            "AWSTraceHeader" => msg.trace_header.clone(),
            "DeadLetterQueueSourceArn" => msg.dead_letter_source.as_ref().map(|q| q.arn()),
            _ => None,
        };
        if let Some(v) = value {
            attrs.insert(name.to_string(), Value::from(v));
        }
    }
    if !attrs.is_empty() {
        out.insert("Attributes".into(), Value::Object(attrs));
    }
    let selected: Vec<(&String, &AttributeValue)> = msg
        .attributes
        .iter()
        .filter(|(k, _)| wanted_attribute(attribute_patterns, k))
        .collect();
    if let Some(md5) = md5_of_attributes(selected.iter().copied()) {
        out.insert("MD5OfMessageAttributes".into(), Value::from(md5));
        let rendered: Map<String, Value> = selected
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    serde_json::to_value(attribute_out(v)).unwrap_or(Value::Null),
                )
            })
            .collect();
        out.insert("MessageAttributes".into(), Value::Object(rendered));
    }
    Value::Object(out)
}

pub async fn receive(s: &QueueService, input: ReceiveMessageInput) -> Result<Value, SqsError> {
    let queue = queue_in(input.queue_url)?;
    let max = match input.max_number_of_messages {
        Some(n) if !(1..=10).contains(&n) => {
            return Err(QueueError::invalid_value(
                "MaxNumberOfMessages",
                n,
                "Must be between 1 and 10, if provided.",
            )
            .into())
        }
        other => other.map(|n| n as u32),
    };
    let request = ReceiveRequest {
        max_messages: max,
        visibility_timeout_seconds: seconds_field("VisibilityTimeout", input.visibility_timeout)?,
        wait_seconds: seconds_field("WaitTimeSeconds", input.wait_time_seconds)?,
        attempt_id: input.receive_request_attempt_id,
    };
    let mut system_names = input.attribute_names.unwrap_or_default();
    system_names.extend(input.message_system_attribute_names.unwrap_or_default());
    let patterns = input.message_attribute_names.unwrap_or_default();
    let messages = s.receive(&queue, request).await?;
    if messages.is_empty() {
        return Ok(json!({}));
    }
    let rendered: Vec<Value> = messages
        .iter()
        .map(|m| message_json(m, &system_names, &patterns))
        .collect();
    Ok(json!({ "Messages": rendered }))
}

pub async fn delete(s: &QueueService, input: DeleteMessageInput) -> Result<Value, SqsError> {
    let queue = queue_in(input.queue_url)?;
    let handle = required("ReceiptHandle", input.receipt_handle)?;
    s.delete_messages(&queue, &[handle]).await?.remove(0)?;
    Ok(json!({}))
}

fn batch_reply(ids: &[String], results: Vec<Result<(), QueueError>>) -> Value {
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for (id, r) in ids.iter().zip(results) {
        match r {
            Ok(()) => successful.push(json!({ "Id": id })),
            Err(e) => {
                failed.push(serde_json::to_value(BatchFailure::of(id, &e)).unwrap_or(Value::Null))
            }
        }
    }
    json!({ "Successful": successful, "Failed": failed })
}

fn batch_ids(input: &BatchOfReceipts, entry_name: &str) -> Result<Vec<String>, SqsError> {
    let ids: Vec<String> = input
        .entries
        .iter()
        .flatten()
        .map(|e| e.id.clone().unwrap_or_default())
        .collect();
    check_batch(
        &ids.iter().map(String::as_str).collect::<Vec<_>>(),
        0,
        entry_name,
    )?;
    Ok(ids)
}

pub async fn delete_batch(s: &QueueService, input: BatchOfReceipts) -> Result<Value, SqsError> {
    let ids = batch_ids(&input, "DeleteMessageBatchRequestEntry")?;
    let queue = queue_in(input.queue_url)?;
    let handles: Vec<String> = input
        .entries
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.receipt_handle.unwrap_or_default())
        .collect();
    let results = s.delete_messages(&queue, &handles).await?;
    Ok(batch_reply(&ids, results))
}

pub async fn change_visibility(
    s: &QueueService,
    input: ChangeVisibilityInput,
) -> Result<Value, SqsError> {
    let queue = queue_in(input.queue_url)?;
    let handle = required("ReceiptHandle", input.receipt_handle)?;
    let timeout = required(
        "VisibilityTimeout",
        seconds_field("VisibilityTimeout", input.visibility_timeout)?,
    )?;
    s.change_visibility(&queue, &[(handle, timeout)])
        .await?
        .remove(0)?;
    Ok(json!({}))
}

pub async fn change_visibility_batch(
    s: &QueueService,
    input: BatchOfReceipts,
) -> Result<Value, SqsError> {
    let ids = batch_ids(&input, "ChangeMessageVisibilityBatchRequestEntry")?;
    let queue = queue_in(input.queue_url)?;
    let mut entries = Vec::new();
    let mut early: Vec<Option<QueueError>> = Vec::new();
    for e in input.entries.unwrap_or_default() {
        match seconds_field("VisibilityTimeout", e.visibility_timeout) {
            Ok(t) => {
                entries.push((e.receipt_handle.unwrap_or_default(), t.unwrap_or(0)));
                early.push(None);
            }
            Err(err) => {
                entries.push((String::new(), 0));
                early.push(Some(err));
            }
        }
    }
    let mut results = s.change_visibility(&queue, &entries).await?;
    for (r, e) in results.iter_mut().zip(early) {
        if let Some(e) = e {
            *r = Err(e);
        }
    }
    Ok(batch_reply(&ids, results))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_name_patterns() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(wanted_attribute(&p(&["All"]), "x"));
        assert!(wanted_attribute(&p(&[".*"]), "x"));
        assert!(wanted_attribute(&p(&["bar.*"]), "bar.baz"));
        assert!(wanted_attribute(&p(&["bar.*"]), "barbaz"));
        assert!(!wanted_attribute(&p(&["bar.*"]), "ba"));
        assert!(wanted_attribute(&p(&["x"]), "x"));
        assert!(!wanted_attribute(&p(&["y"]), "x"));
        assert!(!wanted_attribute(&p(&[]), "x"));
    }
}
