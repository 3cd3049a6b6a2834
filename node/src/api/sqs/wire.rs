//! SQS's JSON request and response shapes (AWS JSON 1.0, member names as SQS spells them)
//! and their conversion to and from the queue service's types.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::queue::model::{AttributeValue, MessageAttributes};
use crate::queue::QueueError;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireAttributeValue {
    pub data_type: Option<String>,
    pub string_value: Option<String>,
    /// Base64, as the JSON protocol carries blobs.
    pub binary_value: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OutAttributeValue {
    pub data_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary_value: Option<String>,
}

pub fn attributes_in(
    wire: Option<BTreeMap<String, WireAttributeValue>>,
) -> Result<MessageAttributes, QueueError> {
    let mut out = MessageAttributes::new();
    for (name, v) in wire.unwrap_or_default() {
        let data_type = v.data_type.ok_or_else(|| {
            QueueError::invalid_value(
                "MessageAttribute.DataType",
                &name,
                format!("The message attribute '{name}' must contain a non-empty attribute type."),
            )
        })?;
        let binary_value = match v.binary_value {
            Some(b) => Some(STANDARD.decode(b.as_bytes()).map_err(|_| {
                QueueError::invalid_value(
                    "MessageAttribute.BinaryValue",
                    &name,
                    "The binary value is not valid base64.",
                )
            })?),
            None => None,
        };
        out.insert(
            name,
            AttributeValue {
                data_type,
                string_value: v.string_value,
                binary_value,
            },
        );
    }
    Ok(out)
}

pub fn attribute_out(v: &AttributeValue) -> OutAttributeValue {
    OutAttributeValue {
        data_type: v.data_type.clone(),
        string_value: v.string_value.clone(),
        binary_value: v.binary_value.as_ref().map(|b| STANDARD.encode(b)),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueUrlOnly {
    pub queue_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateQueueInput {
    pub queue_name: Option<String>,
    pub attributes: Option<BTreeMap<String, String>>,
    #[serde(rename = "tags")]
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetQueueUrlInput {
    pub queue_name: Option<String>,
    #[serde(rename = "QueueOwnerAWSAccountId")]
    pub queue_owner_aws_account_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListQueuesInput {
    pub queue_name_prefix: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetQueueAttributesInput {
    pub queue_url: Option<String>,
    pub attribute_names: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetQueueAttributesInput {
    pub queue_url: Option<String>,
    pub attributes: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagQueueInput {
    pub queue_url: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagQueueInput {
    pub queue_url: Option<String>,
    pub tag_keys: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessageInput {
    pub queue_url: Option<String>,
    #[serde(flatten)]
    pub entry: SendEntry,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendEntry {
    pub id: Option<String>,
    pub message_body: Option<String>,
    pub delay_seconds: Option<i64>,
    pub message_attributes: Option<BTreeMap<String, WireAttributeValue>>,
    pub message_system_attributes: Option<BTreeMap<String, WireAttributeValue>>,
    pub message_deduplication_id: Option<String>,
    pub message_group_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessageBatchInput {
    pub queue_url: Option<String>,
    pub entries: Option<Vec<SendEntry>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReceiveMessageInput {
    pub queue_url: Option<String>,
    pub attribute_names: Option<Vec<String>>,
    pub message_system_attribute_names: Option<Vec<String>>,
    pub message_attribute_names: Option<Vec<String>>,
    pub max_number_of_messages: Option<i64>,
    pub visibility_timeout: Option<i64>,
    pub wait_time_seconds: Option<i64>,
    pub receive_request_attempt_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteMessageInput {
    pub queue_url: Option<String>,
    pub receipt_handle: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReceiptEntry {
    pub id: Option<String>,
    pub receipt_handle: Option<String>,
    pub visibility_timeout: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchOfReceipts {
    pub queue_url: Option<String>,
    pub entries: Option<Vec<ReceiptEntry>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeVisibilityInput {
    pub queue_url: Option<String>,
    pub receipt_handle: Option<String>,
    pub visibility_timeout: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadLetterSourcesInput {
    pub queue_url: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartMoveTaskInput {
    pub source_arn: Option<String>,
    pub destination_arn: Option<String>,
    pub max_number_of_messages_per_second: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskHandleInput {
    pub task_handle: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListMoveTasksInput {
    pub source_arn: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchFailure {
    pub id: String,
    pub sender_fault: bool,
    pub code: String,
    pub message: String,
}

impl BatchFailure {
    pub fn of(id: &str, e: &QueueError) -> Self {
        BatchFailure {
            id: id.to_string(),
            sender_fault: true,
            code: e.query_code().to_string(),
            message: e.to_string(),
        }
    }
}

/// A number field that must be a non-negative integer fitting u32.
pub fn seconds_field(name: &str, value: Option<i64>) -> Result<Option<u32>, QueueError> {
    match value {
        None => Ok(None),
        Some(v) => u32::try_from(v)
            .map(Some)
            .map_err(|_| QueueError::invalid_value(name, v, "It must be a non-negative integer.")),
    }
}

pub fn required<T>(name: &str, value: Option<T>) -> Result<T, QueueError> {
    value.ok_or_else(|| QueueError::MissingParameter(name.to_string()))
}
