//! SQS error responses in the JSON protocol: status, `x-amzn-query-error: <code>;Sender`
//! (the only name the AWS SDK for Rust reads) and a body `{"__type", "message"}` (what
//! boto3 reads).

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

use crate::api::sigv4::SigError;
use crate::queue::service::ServiceError;
use crate::queue::QueueError;

pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// An error as the wire shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsError {
    pub status: u16,
    /// `__type` without the namespace.
    pub shape: String,
    /// The legacy query code.
    pub code: String,
    pub sender_fault: bool,
    pub message: String,
}

impl SqsError {
    fn protocol(status: u16, code: &str, message: impl Into<String>) -> Self {
        SqsError {
            status,
            shape: code.to_string(),
            code: code.to_string(),
            sender_fault: status < 500,
            message: message.into(),
        }
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        // A body that is not JSON of the operation's shape.
        QueueError::invalid_value("body", "", message).into()
    }

    pub fn unknown_operation(target: &str) -> Self {
        Self::protocol(
            400,
            "UnknownOperationException",
            format!("The operation {target} is not supported by this endpoint."),
        )
    }

    pub fn too_large(bytes: usize) -> Self {
        Self::protocol(
            400,
            "InvalidParameterValue",
            format!("The request body is too large ({bytes} bytes or more)."),
        )
    }

    pub fn access_denied() -> Self {
        Self::protocol(403, "AccessDenied", "Access to the resource is denied.")
    }

    pub fn render(&self, request_id: &str) -> Response {
        let body = serde_json::json!({
            "__type": format!("com.amazonaws.sqs#{}", self.shape),
            "message": self.message,
        })
        .to_string();
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let fault = if self.sender_fault {
            "Sender"
        } else {
            "Receiver"
        };
        let headers = resp.headers_mut();
        headers.insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
        if let Ok(v) = HeaderValue::from_str(&format!("{};{fault}", self.code)) {
            headers.insert("x-amzn-query-error", v);
        }
        if let Ok(v) = HeaderValue::from_str(request_id) {
            headers.insert("x-amzn-requestid", v);
        }
        resp
    }
}

impl From<QueueError> for SqsError {
    fn from(e: QueueError) -> Self {
        SqsError {
            status: e.http_status(),
            shape: e.shape().to_string(),
            code: e.query_code().to_string(),
            sender_fault: true,
            message: e.to_string(),
        }
    }
}

impl From<ServiceError> for SqsError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Queue(q) => q.into(),
            ServiceError::Unavailable(m) => Self::protocol(503, "ServiceUnavailable", m),
            // As S3's edge does: 503 only when the request surely had no effect.
            ServiceError::OutcomeUnknown(m) | ServiceError::Internal(m) => {
                Self::protocol(500, "InternalFailure", m)
            }
        }
    }
}

impl From<SigError> for SqsError {
    fn from(e: SigError) -> Self {
        let code = match e {
            SigError::Missing => "MissingAuthenticationToken",
            SigError::Malformed(_) => "IncompleteSignature",
            SigError::UnknownKey => "InvalidClientTokenId",
            SigError::Mismatch => "SignatureDoesNotMatch",
            SigError::Skewed(_) => "RequestExpired",
        };
        let status = if matches!(e, SigError::Malformed(_)) {
            400
        } else {
            403
        };
        Self::protocol(status, code, e.to_string())
    }
}
