//! What every AWS JSON-protocol edge (`POST /` with `X-Amz-Target: <Prefix>.<Operation>`)
//! does before its operation runs: read the body up to a limit, verify the SigV4 signature
//! over it (the bytes as received, whatever their encoding: JSON, or Kinesis's CBOR), and
//! name the operation and the host the client called (the `Host` header, or over HTTP/2
//! the `:authority`). Each service renders the failures in its own error dialect.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::Response;

use super::s3::auth::AccessKeys;
use super::sigv4::{self, Caller, SigError, SignedRequest};

/// A request whose signature verified.
pub struct SignedJson {
    pub operation: String,
    pub body: Bytes,
    pub caller: Caller,
    /// `host[:port]` the client called.
    pub host: String,
    pub is_post: bool,
}

#[derive(Debug)]
pub enum JsonRequestError {
    /// The body is larger than the edge reads.
    TooLarge(usize),
    Signature(SigError),
}

/// The `X-Amz-Target` header of a request.
pub fn target(req: &Request) -> Option<&str> {
    req.headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
}

/// Read and verify a request whose target starts with `prefix`.
pub async fn read_signed(
    req: Request,
    prefix: &str,
    max_body_bytes: usize,
    keys: &dyn AccessKeys,
) -> Result<SignedJson, JsonRequestError> {
    let (parts, body) = req.into_parts();
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(prefix))
        .unwrap_or_default()
        .to_string();
    let body = axum::body::to_bytes(body, max_body_bytes)
        .await
        .map_err(|_| JsonRequestError::TooLarge(max_body_bytes))?;
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    // HTTP/2 names the host in the `:authority` pseudo-header, which hyper puts in the
    // URI rather than in a `host` header; clients sign it as `host` all the same.
    let authority = parts.uri.authority().map(|a| a.as_str().to_string());
    if !headers.iter().any(|(k, _)| k == "host") {
        if let Some(authority) = &authority {
            headers.push(("host".to_string(), authority.clone()));
        }
    }
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body: &body,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let caller = sigv4::verify(&signed, keys, now).map_err(JsonRequestError::Signature)?;
    let host = parts
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(authority)
        .unwrap_or_else(|| "localhost:4566".to_string());
    Ok(SignedJson {
        operation,
        body,
        caller,
        host,
        is_post: parts.method == axum::http::Method::POST,
    })
}

/// A 200 answer: the operation's JSON output in the service's content type, with the
/// request id SDKs log.
pub fn ok_response(
    output: &serde_json::Value,
    content_type: &'static str,
    request_id: &str,
) -> Response {
    ok_json_text(output.to_string().into_bytes(), content_type, request_id)
}

/// `ok_response` for output already rendered (JSON text, or CBOR bytes for Kinesis).
pub fn ok_json_text(output: Vec<u8>, content_type: &'static str, request_id: &str) -> Response {
    let mut resp = Response::new(Body::from(output));
    let headers = resp.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    resp
}
