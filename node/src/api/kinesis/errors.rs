//! Kinesis error responses: an HTTP status, the error's name in the body's `__type` (what
//! boto3 and the AWS SDKs read) and in `x-amzn-ErrorType`, and a `message`; the body is
//! JSON or CBOR as the request was (`protocol`).
//!
//! Client errors are 400. A write whose outcome is unknown answers 500 `InternalFailure`
//! (the client may retry, the write may have happened); 503 `ServiceUnavailable` only when
//! the request surely had no effect.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

use crate::api::aws_json::JsonRequestError;
use crate::api::sigv4::SigError;
use crate::stream::model::StreamError;
use crate::stream::service::ServiceError;

pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl KinesisError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        KinesisError {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// A body that is not JSON of the operation's shape.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(400, "SerializationException", message)
    }

    pub fn unknown_operation(operation: &str) -> Self {
        Self::new(
            400,
            "UnknownOperationException",
            format!("The operation {operation} is not known to Kinesis."),
        )
    }

    pub fn access_denied(operation: &str) -> Self {
        Self::new(
            400,
            "AccessDeniedException",
            format!("User is not authorized to perform kinesis:{operation}."),
        )
    }

    /// The error's answer: its status, `body` (the error document in the request's
    /// protocol, `protocol::Protocol::error`), `x-amzn-errortype` and the request id.
    pub fn render_as(
        &self,
        body: Vec<u8>,
        content_type: &'static str,
        request_id: &str,
    ) -> Response {
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = resp.headers_mut();
        headers.insert("content-type", HeaderValue::from_static(content_type));
        if let Ok(v) = HeaderValue::from_str(&self.code) {
            headers.insert("x-amzn-errortype", v);
        }
        if let Ok(v) = HeaderValue::from_str(request_id) {
            headers.insert("x-amzn-requestid", v);
        }
        resp
    }
}

impl From<StreamError> for KinesisError {
    fn from(e: StreamError) -> Self {
        KinesisError::new(400, e.code(), e.to_string())
    }
}

impl From<ServiceError> for KinesisError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Stream(s) => s.into(),
            ServiceError::Unavailable(m) => KinesisError::new(503, "ServiceUnavailable", m),
            ServiceError::OutcomeUnknown(m) | ServiceError::Internal(m) => {
                KinesisError::new(500, "InternalFailure", m)
            }
        }
    }
}

impl From<SigError> for KinesisError {
    fn from(e: SigError) -> Self {
        let (status, code) = match e {
            SigError::Missing => (403, "MissingAuthenticationTokenException"),
            SigError::Malformed(_) => (400, "IncompleteSignatureException"),
            SigError::UnknownKey => (400, "UnrecognizedClientException"),
            SigError::Mismatch => (400, "InvalidSignatureException"),
            SigError::Skewed(_) => (400, "InvalidSignatureException"),
        };
        KinesisError::new(status, code, e.to_string())
    }
}

impl From<JsonRequestError> for KinesisError {
    fn from(e: JsonRequestError) -> Self {
        match e {
            JsonRequestError::TooLarge(limit) => KinesisError::new(
                400,
                "InvalidArgumentException",
                format!("The request body is larger than {limit} bytes."),
            ),
            JsonRequestError::Signature(s) => s.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_render_with_their_status_and_type() {
        let e: KinesisError = StreamError::StreamNotFound("s".into()).into();
        let resp = e.render_as(b"{}".to_vec(), CONTENT_TYPE, "rid");
        assert_eq!(resp.status(), 400);
        assert_eq!(
            resp.headers()["x-amzn-errortype"],
            "ResourceNotFoundException"
        );
        assert_eq!(resp.headers()["content-type"], CONTENT_TYPE);
        let unknown: KinesisError = ServiceError::OutcomeUnknown("x".into()).into();
        assert_eq!(
            (unknown.status, unknown.code.as_str()),
            (500, "InternalFailure")
        );
        let down: KinesisError = ServiceError::Unavailable("x".into()).into();
        assert_eq!(down.status, 503);
    }
}
