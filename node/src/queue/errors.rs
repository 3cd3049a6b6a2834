//! Errors of the queue store that reach a client, each with the code a real SQS client
//! expects. SQS's JSON protocol names an error twice: the `__type` of the body (the
//! Smithy shape, which boto3 reads) and the legacy query code in the `x-amzn-query-error`
//! header (the only one the AWS SDK for Rust reads). Both come from here.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum QueueError {
    #[error("The specified queue does not exist.")]
    QueueDoesNotExist,
    #[error("A queue already exists with the same name and a different value for attribute {0}")]
    QueueNameExists(String),
    #[error("Unknown Attribute {0}.")]
    InvalidAttributeName(String),
    #[error("Invalid value for the parameter {name}. {reason}")]
    InvalidAttributeValue { name: String, reason: String },
    #[error("Value {value} for parameter {name} is invalid. Reason: {reason}")]
    InvalidParameterValue {
        name: String,
        value: String,
        reason: String,
    },
    #[error("The request must contain the parameter {0}.")]
    MissingParameter(String),
    #[error("Invalid characters found in the message body or attributes: {0}")]
    InvalidMessageContents(String),
    #[error("The input receipt handle \"{0}\" is not a valid receipt handle.")]
    ReceiptHandleIsInvalid(String),
    #[error("Message does not exist or is not available for visibility timeout change.")]
    MessageNotInflight,
    #[error("Only one PurgeQueue operation on {0} is allowed every 60 seconds.")]
    PurgeQueueInProgress(String),
    #[error("Id {0} repeated.")]
    BatchEntryIdsNotDistinct(String),
    #[error("There should be at least one {0} in the request.")]
    EmptyBatchRequest(String),
    #[error("Maximum number of entries per request are 10. You have sent {0}.")]
    TooManyEntriesInBatchRequest(usize),
    #[error("A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long: {0}")]
    InvalidBatchEntryId(String),
    #[error("Batch requests cannot be longer than 1048576 bytes. You have sent {0} bytes.")]
    BatchRequestTooLong(usize),
    #[error("{0}")]
    UnsupportedOperation(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    OverLimit(String),
    #[error("{0}")]
    InvalidAddress(String),
}

impl QueueError {
    pub fn invalid_value(name: &str, value: impl ToString, reason: impl Into<String>) -> Self {
        QueueError::InvalidParameterValue {
            name: name.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    pub fn invalid_attribute(name: &str, reason: impl Into<String>) -> Self {
        QueueError::InvalidAttributeValue {
            name: name.to_string(),
            reason: reason.into(),
        }
    }

    /// The legacy query-protocol code: the `x-amzn-query-error` header and a batch entry's
    /// `Code`.
    pub fn query_code(&self) -> &'static str {
        match self {
            QueueError::QueueDoesNotExist => "AWS.SimpleQueueService.NonExistentQueue",
            QueueError::QueueNameExists(_) => "QueueAlreadyExists",
            QueueError::InvalidAttributeName(_) => "InvalidAttributeName",
            QueueError::InvalidAttributeValue { .. } => "InvalidAttributeValue",
            QueueError::InvalidParameterValue { .. } => "InvalidParameterValue",
            QueueError::MissingParameter(_) => "MissingParameter",
            QueueError::InvalidMessageContents(_) => "InvalidMessageContents",
            QueueError::ReceiptHandleIsInvalid(_) => "ReceiptHandleIsInvalid",
            QueueError::MessageNotInflight => "AWS.SimpleQueueService.MessageNotInflight",
            QueueError::PurgeQueueInProgress(_) => "AWS.SimpleQueueService.PurgeQueueInProgress",
            QueueError::BatchEntryIdsNotDistinct(_) => {
                "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
            }
            QueueError::EmptyBatchRequest(_) => "AWS.SimpleQueueService.EmptyBatchRequest",
            QueueError::TooManyEntriesInBatchRequest(_) => {
                "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
            }
            QueueError::InvalidBatchEntryId(_) => "AWS.SimpleQueueService.InvalidBatchEntryId",
            QueueError::BatchRequestTooLong(_) => "AWS.SimpleQueueService.BatchRequestTooLong",
            QueueError::UnsupportedOperation(_) => "AWS.SimpleQueueService.UnsupportedOperation",
            QueueError::ResourceNotFound(_) => "ResourceNotFoundException",
            QueueError::OverLimit(_) => "OverLimit",
            QueueError::InvalidAddress(_) => "InvalidAddress",
        }
    }

    /// The Smithy shape name (`__type` is `com.amazonaws.sqs#<shape>`); errors SQS does
    /// not model are named by their query code, or by AWS's common error name.
    pub fn shape(&self) -> &'static str {
        match self {
            QueueError::QueueDoesNotExist => "QueueDoesNotExist",
            QueueError::QueueNameExists(_) => "QueueNameExists",
            QueueError::MessageNotInflight => "MessageNotInflight",
            QueueError::PurgeQueueInProgress(_) => "PurgeQueueInProgress",
            QueueError::BatchEntryIdsNotDistinct(_) => "BatchEntryIdsNotDistinct",
            QueueError::EmptyBatchRequest(_) => "EmptyBatchRequest",
            QueueError::TooManyEntriesInBatchRequest(_) => "TooManyEntriesInBatchRequest",
            QueueError::InvalidBatchEntryId(_) => "InvalidBatchEntryId",
            QueueError::BatchRequestTooLong(_) => "BatchRequestTooLong",
            QueueError::UnsupportedOperation(_) => "UnsupportedOperation",
            // Outside SQS's model, the JSON protocol names these as AWS's common errors.
            QueueError::InvalidParameterValue { .. } => "InvalidParameterValueException",
            QueueError::MissingParameter(_) => "MissingRequiredParameterException",
            other => other.query_code(),
        }
    }

    /// Every queue error is the sender's fault and answered with 400, as SQS does.
    pub fn http_status(&self) -> u16 {
        400
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rust_sdk_and_boto3_names_agree_with_sqs() {
        let e = QueueError::QueueDoesNotExist;
        assert_eq!(e.query_code(), "AWS.SimpleQueueService.NonExistentQueue");
        assert_eq!(e.shape(), "QueueDoesNotExist");
        let e = QueueError::QueueNameExists("VisibilityTimeout".into());
        assert_eq!(e.query_code(), "QueueAlreadyExists");
        assert_eq!(e.shape(), "QueueNameExists");
        let e = QueueError::invalid_value("DelaySeconds", 901, "too large");
        assert_eq!(e.query_code(), "InvalidParameterValue");
        assert_eq!(e.shape(), "InvalidParameterValueException");
    }
}
