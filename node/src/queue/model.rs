//! Domain types of the queue store: queue names, queue configuration (the settable
//! attributes, typed and validated with SQS's limits), redrive policies, message
//! attributes and the limits SQS enforces on messages.
//!
//! Attribute values arrive as strings (that is SQS's wire format); [`QueueConfig::apply`]
//! parses and checks each one and [`QueueConfig::attribute`] renders it back exactly as
//! SQS does, so GetQueueAttributes returns what CreateQueue was given. No state, no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::errors::QueueError;

/// The account every queue belongs to (LocalStack's default, so tools set up for it work).
pub const ACCOUNT_ID: &str = "000000000000";
pub const REGION: &str = "us-east-1";

pub const MAX_MESSAGE_BYTES: u32 = 1_048_576;
pub const MIN_MESSAGE_BYTES: u32 = 1_024;
pub const MAX_DELAY_SECONDS: u32 = 900;
pub const MAX_VISIBILITY_TIMEOUT_SECONDS: u32 = 43_200;
pub const MIN_RETENTION_SECONDS: u32 = 60;
pub const MAX_RETENTION_SECONDS: u32 = 1_209_600;
pub const DEFAULT_RETENTION_SECONDS: u32 = 345_600;
pub const MAX_WAIT_SECONDS: u32 = 20;
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;
pub const MAX_RECEIVE_MESSAGES: u32 = 10;
pub const MAX_BATCH_ENTRIES: usize = 10;
pub const MAX_QUEUE_TAGS: usize = 50;
/// FIFO deduplication and ReceiveRequestAttemptId windows.
pub const DEDUP_WINDOW_MS: u64 = 5 * 60 * 1000;
/// A second PurgeQueue within this time is refused.
pub const PURGE_INTERVAL_MS: u64 = 60 * 1000;
const MAX_QUEUE_NAME_CHARS: usize = 80;
const MAX_ID_CHARS: usize = 128;

/// A queue's name: 1–80 of `[A-Za-z0-9_-]`, FIFO queues ending in `.fifo`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct QueueName(String);

impl QueueName {
    pub fn parse(name: &str) -> Result<QueueName, QueueError> {
        let stem = name.strip_suffix(".fifo").unwrap_or(name);
        let ok = !stem.is_empty()
            && name.len() <= MAX_QUEUE_NAME_CHARS
            && stem
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(QueueName(name.to_string()))
        } else {
            Err(QueueError::invalid_value(
                "QueueName",
                name,
                "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length. A FIFO queue's name ends in .fifo",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_fifo(&self) -> bool {
        self.0.ends_with(".fifo")
    }

    pub fn arn(&self) -> String {
        format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{}", self.0)
    }

    /// The queue named by an SQS ARN of this account and region.
    pub fn from_arn(arn: &str) -> Option<QueueName> {
        let rest = arn.strip_prefix("arn:aws:sqs:")?;
        let mut parts = rest.splitn(3, ':');
        let (_region, account, name) = (parts.next()?, parts.next()?, parts.next()?);
        (account == ACCOUNT_ID)
            .then(|| QueueName::parse(name).ok())
            .flatten()
    }
}

impl TryFrom<String> for QueueName {
    type Error = QueueError;
    fn try_from(s: String) -> Result<Self, QueueError> {
        QueueName::parse(&s)
    }
}

impl From<QueueName> for String {
    fn from(n: QueueName) -> String {
        n.0
    }
}

impl std::fmt::Display for QueueName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a message that was received too often goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedrivePolicy {
    pub dead_letter_queue: QueueName,
    pub max_receive_count: u32,
}

/// Which source queues may name this queue as their dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RedriveAllow {
    AllowAll,
    DenyAll,
    ByQueue(Vec<QueueName>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DedupScope {
    Queue,
    MessageGroup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThroughputLimit {
    PerQueue,
    PerMessageGroupId,
}

/// Every settable attribute of a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    pub fifo: bool,
    pub delay_seconds: u32,
    pub maximum_message_size: u32,
    pub retention_seconds: u32,
    pub receive_wait_seconds: u32,
    pub visibility_timeout_seconds: u32,
    pub redrive_policy: Option<RedrivePolicy>,
    pub redrive_allow: Option<RedriveAllow>,
    pub policy: Option<String>,
    pub kms_master_key_id: Option<String>,
    pub kms_data_key_reuse_seconds: u32,
    pub sqs_managed_sse: bool,
    pub content_based_dedup: bool,
    pub dedup_scope: DedupScope,
    pub throughput_limit: ThroughputLimit,
}

/// The attributes GetQueueAttributes can name (besides `All`), settable or computed.
pub const ATTRIBUTE_NAMES: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
    "CreatedTimestamp",
    "DelaySeconds",
    "LastModifiedTimestamp",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "Policy",
    "QueueArn",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

const FIFO_ONLY: &[&str] = &[
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

const READ_ONLY: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
];

fn seconds(name: &str, value: &str, min: u32, max: u32) -> Result<u32, QueueError> {
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| {
            QueueError::invalid_attribute(
                name,
                format!("Value {value} for parameter {name} is invalid: it must be an integer from {min} to {max}."),
            )
        })
}

fn boolean(name: &str, value: &str) -> Result<bool, QueueError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(QueueError::invalid_attribute(
            name,
            format!("Value {value} for parameter {name} is invalid: it must be true or false."),
        )),
    }
}

fn parse_redrive_policy(value: &str) -> Result<Option<RedrivePolicy>, QueueError> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    let bad = |why: &str| QueueError::invalid_attribute("RedrivePolicy", why.to_string());
    let json: serde_json::Value =
        serde_json::from_str(value).map_err(|_| bad("Redrive policy is not a valid JSON map."))?;
    let arn = json
        .get("deadLetterTargetArn")
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            bad("Redrive policy does not contain mandatory attribute: deadLetterTargetArn.")
        })?;
    let count = match json.get("maxReceiveCount") {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse::<u64>().ok(),
        _ => {
            return Err(bad(
                "Redrive policy does not contain mandatory attribute: maxReceiveCount.",
            ))
        }
    }
    .filter(|n| (1..=1000).contains(n))
    .ok_or_else(|| {
        bad("Value for parameter maxReceiveCount is invalid: it must be from 1 to 1000.")
    })?;
    let dead_letter_queue = QueueName::from_arn(arn).ok_or_else(|| {
        bad("Dead-letter target ARN is not a valid SQS queue ARN of this account.")
    })?;
    Ok(Some(RedrivePolicy {
        dead_letter_queue,
        max_receive_count: count as u32,
    }))
}

fn parse_redrive_allow(value: &str) -> Result<Option<RedriveAllow>, QueueError> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    let bad = |why: &str| QueueError::invalid_attribute("RedriveAllowPolicy", why.to_string());
    let json: serde_json::Value = serde_json::from_str(value)
        .map_err(|_| bad("Redrive allow policy is not a valid JSON map."))?;
    let permission = json
        .get("redrivePermission")
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            bad("Redrive allow policy does not contain mandatory attribute: redrivePermission.")
        })?;
    let sources = json.get("sourceQueueArns");
    match permission {
        "allowAll" | "denyAll" if sources.is_some() => Err(bad(
            "sourceQueueArns may only be given when redrivePermission is byQueue.",
        )),
        "allowAll" => Ok(Some(RedriveAllow::AllowAll)),
        "denyAll" => Ok(Some(RedriveAllow::DenyAll)),
        "byQueue" => {
            let arns = sources
                .and_then(|v| v.as_array())
                .filter(|a| (1..=10).contains(&a.len()))
                .ok_or_else(|| bad("byQueue needs sourceQueueArns with 1 to 10 queue ARNs."))?;
            let names = arns
                .iter()
                .map(|a| a.as_str().and_then(QueueName::from_arn))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("sourceQueueArns holds a value that is not an SQS queue ARN of this account."))?;
            Ok(Some(RedriveAllow::ByQueue(names)))
        }
        _ => Err(bad(
            "redrivePermission must be allowAll, denyAll or byQueue.",
        )),
    }
}

impl QueueConfig {
    pub fn defaults(fifo: bool) -> QueueConfig {
        QueueConfig {
            fifo,
            delay_seconds: 0,
            maximum_message_size: MAX_MESSAGE_BYTES,
            retention_seconds: DEFAULT_RETENTION_SECONDS,
            receive_wait_seconds: 0,
            visibility_timeout_seconds: 30,
            redrive_policy: None,
            redrive_allow: None,
            policy: None,
            kms_master_key_id: None,
            kms_data_key_reuse_seconds: 300,
            sqs_managed_sse: true,
            content_based_dedup: false,
            dedup_scope: DedupScope::Queue,
            throughput_limit: ThroughputLimit::PerQueue,
        }
    }

    /// A new queue's configuration from CreateQueue's name and attributes.
    pub fn for_create(
        name: &QueueName,
        attributes: &BTreeMap<String, String>,
    ) -> Result<QueueConfig, QueueError> {
        let fifo_asked = match attributes.get("FifoQueue") {
            Some(v) => boolean("FifoQueue", v)?,
            None => false,
        };
        if fifo_asked != name.is_fifo() {
            return Err(QueueError::invalid_value(
                "QueueName",
                name,
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length; a queue whose name ends in .fifo must have FifoQueue=true.",
            ));
        }
        let mut config = QueueConfig::defaults(fifo_asked);
        for (name, value) in attributes {
            if name == "FifoQueue" {
                continue;
            }
            config.apply(name, value)?;
        }
        config.check_fifo_combination()?;
        Ok(config)
    }

    /// Set one attribute from its wire value (SetQueueAttributes; CreateQueue per attribute).
    pub fn apply(&mut self, name: &str, value: &str) -> Result<(), QueueError> {
        if FIFO_ONLY.contains(&name) && !self.fifo {
            return Err(QueueError::InvalidAttributeName(name.to_string()));
        }
        match name {
            "DelaySeconds" => self.delay_seconds = seconds(name, value, 0, MAX_DELAY_SECONDS)?,
            "MaximumMessageSize" => {
                self.maximum_message_size =
                    seconds(name, value, MIN_MESSAGE_BYTES, MAX_MESSAGE_BYTES)?
            }
            "MessageRetentionPeriod" => {
                self.retention_seconds =
                    seconds(name, value, MIN_RETENTION_SECONDS, MAX_RETENTION_SECONDS)?
            }
            "ReceiveMessageWaitTimeSeconds" => {
                self.receive_wait_seconds = seconds(name, value, 0, MAX_WAIT_SECONDS)?
            }
            "VisibilityTimeout" => {
                self.visibility_timeout_seconds =
                    seconds(name, value, 0, MAX_VISIBILITY_TIMEOUT_SECONDS)?
            }
            "RedrivePolicy" => self.redrive_policy = parse_redrive_policy(value)?,
            "RedriveAllowPolicy" => self.redrive_allow = parse_redrive_allow(value)?,
            "Policy" => {
                if !value.is_empty() && serde_json::from_str::<serde_json::Value>(value).is_err() {
                    return Err(QueueError::invalid_attribute(
                        name,
                        "Invalid value for the parameter Policy.",
                    ));
                }
                self.policy = (!value.is_empty()).then(|| value.to_string())
            }
            "KmsMasterKeyId" => {
                self.kms_master_key_id = (!value.is_empty()).then(|| value.to_string())
            }
            "KmsDataKeyReusePeriodSeconds" => {
                self.kms_data_key_reuse_seconds = seconds(name, value, 60, 86_400)?
            }
            "SqsManagedSseEnabled" => self.sqs_managed_sse = boolean(name, value)?,
            "FifoQueue" => {
                // Fixed at creation: setting it to what it is is accepted, as SQS does.
                if boolean(name, value)? != self.fifo {
                    return Err(QueueError::invalid_attribute(
                        name,
                        "FifoQueue cannot be changed after the queue is created.",
                    ));
                }
            }
            "ContentBasedDeduplication" => self.content_based_dedup = boolean(name, value)?,
            "DeduplicationScope" => {
                self.dedup_scope = match value {
                    "queue" => DedupScope::Queue,
                    "messageGroup" => DedupScope::MessageGroup,
                    _ => {
                        return Err(QueueError::invalid_attribute(
                            name,
                            "DeduplicationScope must be queue or messageGroup.",
                        ))
                    }
                }
            }
            "FifoThroughputLimit" => {
                self.throughput_limit = match value {
                    "perQueue" => ThroughputLimit::PerQueue,
                    "perMessageGroupId" => ThroughputLimit::PerMessageGroupId,
                    _ => {
                        return Err(QueueError::invalid_attribute(
                            name,
                            "FifoThroughputLimit must be perQueue or perMessageGroupId.",
                        ))
                    }
                }
            }
            _ if READ_ONLY.contains(&name) => {
                return Err(QueueError::InvalidAttributeName(name.to_string()))
            }
            _ => return Err(QueueError::InvalidAttributeName(name.to_string())),
        }
        Ok(())
    }

    /// SQS refuses per-message-group throughput with queue-wide deduplication.
    pub fn check_fifo_combination(&self) -> Result<(), QueueError> {
        if self.throughput_limit == ThroughputLimit::PerMessageGroupId
            && self.dedup_scope == DedupScope::Queue
        {
            return Err(QueueError::invalid_attribute(
                "FifoThroughputLimit",
                "The perMessageGroupId value is allowed only when the value for DeduplicationScope is messageGroup.",
            ));
        }
        Ok(())
    }

    /// The wire value of a settable attribute (`None` when unset or not of this queue type).
    pub fn attribute(&self, name: &str) -> Option<String> {
        Some(match name {
            "DelaySeconds" => self.delay_seconds.to_string(),
            "MaximumMessageSize" => self.maximum_message_size.to_string(),
            "MessageRetentionPeriod" => self.retention_seconds.to_string(),
            "ReceiveMessageWaitTimeSeconds" => self.receive_wait_seconds.to_string(),
            "VisibilityTimeout" => self.visibility_timeout_seconds.to_string(),
            "RedrivePolicy" => {
                let p = self.redrive_policy.as_ref()?;
                serde_json::json!({
                    "deadLetterTargetArn": p.dead_letter_queue.arn(),
                    "maxReceiveCount": p.max_receive_count,
                })
                .to_string()
            }
            "RedriveAllowPolicy" => match self.redrive_allow.as_ref()? {
                RedriveAllow::AllowAll => r#"{"redrivePermission":"allowAll"}"#.to_string(),
                RedriveAllow::DenyAll => r#"{"redrivePermission":"denyAll"}"#.to_string(),
                RedriveAllow::ByQueue(names) => serde_json::json!({
                    "redrivePermission": "byQueue",
                    "sourceQueueArns": names.iter().map(QueueName::arn).collect::<Vec<_>>(),
                })
                .to_string(),
            },
            "Policy" => self.policy.clone()?,
            "KmsMasterKeyId" => self.kms_master_key_id.clone()?,
            "KmsDataKeyReusePeriodSeconds" => {
                self.kms_master_key_id.as_ref()?;
                self.kms_data_key_reuse_seconds.to_string()
            }
            "SqsManagedSseEnabled" => self.sqs_managed_sse.to_string(),
            "FifoQueue" if self.fifo => "true".to_string(),
            "ContentBasedDeduplication" if self.fifo => self.content_based_dedup.to_string(),
            "DeduplicationScope" if self.fifo => match self.dedup_scope {
                DedupScope::Queue => "queue".to_string(),
                DedupScope::MessageGroup => "messageGroup".to_string(),
            },
            "FifoThroughputLimit" if self.fifo => match self.throughput_limit {
                ThroughputLimit::PerQueue => "perQueue".to_string(),
                ThroughputLimit::PerMessageGroupId => "perMessageGroupId".to_string(),
            },
            _ => return None,
        })
    }

    /// Whether `source` may use this queue as its dead-letter queue.
    pub fn allows_source(&self, source: &QueueName) -> bool {
        match &self.redrive_allow {
            None | Some(RedriveAllow::AllowAll) => true,
            Some(RedriveAllow::DenyAll) => false,
            Some(RedriveAllow::ByQueue(names)) => names.contains(source),
        }
    }
}

/// The names an attribute list asks for: `All` expands to every name; an unknown name is
/// refused.
pub fn requested_attributes(names: &[String]) -> Result<Vec<&'static str>, QueueError> {
    let mut out = Vec::new();
    for name in names {
        if name == "All" {
            return Ok(ATTRIBUTE_NAMES.to_vec());
        }
        match ATTRIBUTE_NAMES.iter().find(|n| **n == name.as_str()) {
            Some(n) => out.push(*n),
            None => return Err(QueueError::InvalidAttributeName(name.clone())),
        }
    }
    Ok(out)
}

/// A message attribute's value, as SendMessage gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeValue {
    pub data_type: String,
    pub string_value: Option<String>,
    pub binary_value: Option<Vec<u8>>,
}

impl AttributeValue {
    /// Bytes this attribute counts toward the message size (name, type and value).
    pub fn size_bytes(&self, name: &str) -> usize {
        name.len()
            + self.data_type.len()
            + self.string_value.as_ref().map_or(0, String::len)
            + self.binary_value.as_ref().map_or(0, Vec::len)
    }

    pub fn is_binary(&self) -> bool {
        self.data_type.starts_with("Binary")
    }
}

pub type MessageAttributes = BTreeMap<String, AttributeValue>;

/// Characters SQS allows in bodies and string attribute values: #x9 | #xA | #xD |
/// #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
pub fn is_allowed_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

pub fn check_text(what: &str, text: &str) -> Result<(), QueueError> {
    match text.chars().find(|c| !is_allowed_char(*c)) {
        None => Ok(()),
        Some(c) => Err(QueueError::InvalidMessageContents(format!(
            "{what} contains the character #x{:X}, which is not allowed",
            c as u32
        ))),
    }
}

fn check_attribute_name(name: &str) -> Result<(), QueueError> {
    let lower = name.to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.");
    if ok {
        Ok(())
    } else {
        Err(QueueError::invalid_value(
            "MessageAttribute.Name",
            name,
            "Message attribute names can contain alphanumerics, hyphens, underscores and periods, up to 256 characters; they cannot start with AWS. or Amazon., start or end with a period, or hold two periods in a row.",
        ))
    }
}

/// Check a message's attributes as SQS does: at most 10, valid names and types, and a
/// value of the kind the type names.
pub fn check_message_attributes(attributes: &MessageAttributes) -> Result<(), QueueError> {
    if attributes.len() > MAX_MESSAGE_ATTRIBUTES {
        return Err(QueueError::invalid_value(
            "MessageAttributes",
            attributes.len(),
            "Number of message attributes cannot exceed 10.",
        ));
    }
    for (name, value) in attributes {
        check_attribute_name(name)?;
        let base = value.data_type.split('.').next().unwrap_or("");
        let custom_ok = value.data_type.len() <= 256
            && value.data_type[base.len()..]
                .strip_prefix('.')
                .is_none_or(|c| !c.is_empty());
        if !matches!(base, "String" | "Number" | "Binary") || !custom_ok {
            return Err(QueueError::invalid_value(
                "MessageAttribute.DataType",
                &value.data_type,
                format!("The type of message (user) attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."),
            ));
        }
        let has_value = if base == "Binary" {
            value.string_value.is_none()
                && value.binary_value.as_ref().is_some_and(|v| !v.is_empty())
        } else {
            value.binary_value.is_none()
                && value.string_value.as_ref().is_some_and(|v| !v.is_empty())
        };
        if !has_value {
            return Err(QueueError::invalid_value(
                "MessageAttribute.Value",
                name,
                format!("The message (user) attribute '{name}' must contain a non-empty value of the type its DataType names."),
            ));
        }
        if let Some(s) = &value.string_value {
            check_text(&format!("The value of message attribute '{name}'"), s)?;
            if base == "Number" && !is_sqs_number(s) {
                return Err(QueueError::invalid_value(
                    "MessageAttribute.Value",
                    s,
                    format!(
                        "Can't cast the value of message (user) attribute '{name}' to a number."
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// SQS numbers: up to 38 digits of precision, between 10^-128 and 10^+126.
fn is_sqs_number(s: &str) -> bool {
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    digits > 0 && digits <= 38 && s.trim().parse::<f64>().is_ok_and(f64::is_finite)
}

/// A batch entry id: 1–80 of `[A-Za-z0-9_-]`.
pub fn check_batch_id(id: &str) -> Result<(), QueueError> {
    if !id.is_empty()
        && id.len() <= 80
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(QueueError::InvalidBatchEntryId(id.to_string()))
    }
}

/// A MessageGroupId, MessageDeduplicationId or ReceiveRequestAttemptId: 1–128 characters
/// of alphanumerics and punctuation.
pub fn check_token(name: &str, value: &str) -> Result<(), QueueError> {
    if !value.is_empty()
        && value.len() <= MAX_ID_CHARS
        && value.bytes().all(|b| b.is_ascii_graphic())
    {
        Ok(())
    } else {
        Err(QueueError::invalid_value(
            name,
            value,
            format!("{name} can contain up to 128 alphanumeric and punctuation characters."),
        ))
    }
}

/// Queue tags: at most 50; keys 1–128 characters, values up to 256.
pub fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), QueueError> {
    if tags.len() > MAX_QUEUE_TAGS {
        return Err(QueueError::invalid_value(
            "Tags",
            tags.len(),
            "Too many tags added for queue (at most 50).",
        ));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(QueueError::invalid_value(
                "Tag",
                k,
                "Tag keys must be 1 to 128 characters and values at most 256.",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_follow_sqs_rules() {
        assert!(QueueName::parse("orders-1_a").is_ok());
        assert!(QueueName::parse("orders.fifo").unwrap().is_fifo());
        assert!(QueueName::parse("").is_err());
        assert!(QueueName::parse(".fifo").is_err());
        assert!(QueueName::parse("a b").is_err());
        assert!(QueueName::parse(&"x".repeat(81)).is_err());
        assert!(QueueName::parse(&"x".repeat(80)).is_ok());
        let q = QueueName::parse("q1").unwrap();
        assert_eq!(q.arn(), "arn:aws:sqs:us-east-1:000000000000:q1");
        assert_eq!(QueueName::from_arn(&q.arn()), Some(q));
        assert_eq!(
            QueueName::from_arn("arn:aws:sqs:us-east-1:123456789012:q1"),
            None
        );
    }

    #[test]
    fn attributes_are_checked_and_rendered_back() {
        let name = QueueName::parse("q").unwrap();
        let c = QueueConfig::for_create(
            &name,
            &attrs(&[("VisibilityTimeout", "5"), ("DelaySeconds", "900")]),
        )
        .unwrap();
        assert_eq!(c.attribute("VisibilityTimeout").as_deref(), Some("5"));
        assert_eq!(c.attribute("DelaySeconds").as_deref(), Some("900"));
        assert_eq!(c.attribute("FifoQueue"), None);
        for (k, v) in [
            ("DelaySeconds", "901"),
            ("VisibilityTimeout", "-1"),
            ("MessageRetentionPeriod", "59"),
            ("MaximumMessageSize", "1048577"),
            ("ReceiveMessageWaitTimeSeconds", "21"),
        ] {
            let e = QueueConfig::for_create(&name, &attrs(&[(k, v)])).unwrap_err();
            assert_eq!(e.query_code(), "InvalidAttributeValue", "{k}={v}");
        }
        let e = QueueConfig::for_create(&name, &attrs(&[("Colour", "blue")])).unwrap_err();
        assert_eq!(e, QueueError::InvalidAttributeName("Colour".into()));
        let e = QueueConfig::for_create(&name, &attrs(&[("ContentBasedDeduplication", "true")]))
            .unwrap_err();
        assert_eq!(e.query_code(), "InvalidAttributeName");
    }

    #[test]
    fn fifo_needs_the_suffix_and_consistent_settings() {
        let fifo = QueueName::parse("q.fifo").unwrap();
        assert!(QueueConfig::for_create(&fifo, &attrs(&[])).is_err());
        let c = QueueConfig::for_create(
            &fifo,
            &attrs(&[("FifoQueue", "true"), ("ContentBasedDeduplication", "true")]),
        )
        .unwrap();
        assert!(c.fifo && c.content_based_dedup);
        assert_eq!(c.attribute("DeduplicationScope").as_deref(), Some("queue"));
        let e = QueueConfig::for_create(
            &fifo,
            &attrs(&[
                ("FifoQueue", "true"),
                ("FifoThroughputLimit", "perMessageGroupId"),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.query_code(), "InvalidAttributeValue");
        let plain = QueueName::parse("q").unwrap();
        assert!(QueueConfig::for_create(&plain, &attrs(&[("FifoQueue", "true")])).is_err());
    }

    #[test]
    fn redrive_policies_parse_and_render() {
        let mut c = QueueConfig::defaults(false);
        c.apply(
            "RedrivePolicy",
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"3"}"#,
        )
        .unwrap();
        let p = c.redrive_policy.clone().unwrap();
        assert_eq!(
            (p.dead_letter_queue.as_str(), p.max_receive_count),
            ("dlq", 3)
        );
        assert_eq!(
            c.attribute("RedrivePolicy").unwrap(),
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":3}"#
        );
        assert!(c
            .apply("RedrivePolicy", r#"{"maxReceiveCount":3}"#)
            .is_err());
        assert!(c
            .apply("RedrivePolicy", r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":0}"#)
            .is_err());
        c.apply("RedrivePolicy", "").unwrap();
        assert!(c.redrive_policy.is_none());
        c.apply(
            "RedriveAllowPolicy",
            r#"{"redrivePermission":"byQueue","sourceQueueArns":["arn:aws:sqs:us-east-1:000000000000:src"]}"#,
        )
        .unwrap();
        assert!(c.allows_source(&QueueName::parse("src").unwrap()));
        assert!(!c.allows_source(&QueueName::parse("other").unwrap()));
        assert!(c
            .apply("RedriveAllowPolicy", r#"{"redrivePermission":"byQueue"}"#)
            .is_err());
    }

    #[test]
    fn message_contents_and_attributes_are_checked() {
        assert!(check_text("body", "hello\tworld\u{10000}").is_ok());
        assert!(check_text("body", "a\u{0}b").is_err());
        assert!(check_text("body", "\u{FFFE}").is_err());
        let string = |v: &str| AttributeValue {
            data_type: "String".into(),
            string_value: Some(v.into()),
            binary_value: None,
        };
        let mut a = MessageAttributes::new();
        a.insert("ok".into(), string("v"));
        a.insert(
            "n".into(),
            AttributeValue {
                data_type: "Number.int".into(),
                string_value: Some("-12.5e3".into()),
                binary_value: None,
            },
        );
        assert!(check_message_attributes(&a).is_ok());
        let mut bad = a.clone();
        bad.insert("AWS.x".into(), string("v"));
        assert!(check_message_attributes(&bad).is_err());
        let mut bad = a.clone();
        bad.insert(
            "t".into(),
            AttributeValue {
                data_type: "Blob".into(),
                string_value: Some("v".into()),
                binary_value: None,
            },
        );
        assert!(check_message_attributes(&bad).is_err());
        let mut bad = a.clone();
        bad.insert(
            "n2".into(),
            AttributeValue {
                data_type: "Number".into(),
                string_value: Some("twelve".into()),
                binary_value: None,
            },
        );
        assert!(check_message_attributes(&bad).is_err());
        let many: MessageAttributes = (0..11).map(|i| (format!("a{i}"), string("v"))).collect();
        assert!(check_message_attributes(&many).is_err());
    }
}
