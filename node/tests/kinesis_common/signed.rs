//! Raw SigV4-signed Kinesis requests, for what the SDK for Rust does not send: HTTP/2
//! with prior knowledge (h2c), CBOR bodies, and a look at the answer's HTTP version and
//! bytes. Requests are signed with `aws-sigv4` (service `kinesis`, the region and
//! credentials `kinesis_client` uses) and sent by a `hyper_util` legacy client.
//!
//! Over HTTP/2 no `Host` header is sent (hyper puts the host in `:authority`, as HTTP/2
//! clients do); `host` is signed all the same, from the URI, which is what the edge must
//! check it against.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::REGION;

/// The `X-Amz-Target` prefix of Kinesis operations.
pub const TARGET_PREFIX: &str = "Kinesis_20131202.";
pub const JSON: &str = "application/x-amz-json-1.1";
pub const CBOR: &str = "application/x-amz-cbor-1.1";
pub const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

pub type RawClient = Client<HttpConnector, Full<Bytes>>;

/// A client that speaks only HTTP/2, with prior knowledge, over plain TCP (h2c).
pub fn h2c_client() -> RawClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// A client that speaks HTTP/1.1.
pub fn http1_client() -> RawClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An answer read to its end.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub version: Version,
    pub body: Bytes,
}

impl Answer {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body as JSON (panics, saying what came, if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "answer {} ({}) is not JSON: {e}: {:?}",
                self.status,
                self.content_type(),
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// `POST /` to `edge` (`host:port`) with `X-Amz-Target: Kinesis_20131202.<operation>`,
/// `Content-Type: content_type` and `body`, signed; returns the answer with its body
/// still streaming (SubscribeToShard's is read as it comes).
pub async fn send_signed(
    client: &RawClient,
    edge: &str,
    operation: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Response<Incoming> {
    let uri = format!("http://{edge}/");
    let target = format!("{TARGET_PREFIX}{operation}");
    let identity: Identity = Credentials::new("test", "test", None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("kinesis")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("SigV4 signing parameters")
        .into();
    let headers = [("content-type", content_type), ("x-amz-target", &target)];
    let signable = SignableRequest::new(
        "POST",
        uri.as_str(),
        headers.iter().copied(),
        SignableBody::Bytes(&body),
    )
    .expect("a signable request");
    let (instructions, _signature) = sign(signable, &params).expect("SigV4 signing").into_parts();
    let mut req = Request::builder().method("POST").uri(&uri);
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let mut req = req
        .body(Full::new(Bytes::from(body)))
        .expect("an HTTP request");
    instructions.apply_to_request_http1x(&mut req);
    tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .unwrap_or_else(|_| panic!("{operation} to {edge}: no answer within 30 s"))
        .unwrap_or_else(|e| panic!("{operation} to {edge}: {e:?}"))
}

/// `send_signed`, with the whole body read.
pub async fn call(
    client: &RawClient,
    edge: &str,
    operation: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Answer {
    let resp = send_signed(client, edge, operation, content_type, body).await;
    let (parts, body) = resp.into_parts();
    let body = tokio::time::timeout(Duration::from_secs(30), body.collect())
        .await
        .unwrap_or_else(|_| panic!("{operation}: the body did not end within 30 s"))
        .unwrap_or_else(|e| panic!("{operation}: reading the body: {e:?}"))
        .to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        version: parts.version,
        body,
    }
}

/// A JSON-protocol call.
pub async fn call_json(
    client: &RawClient,
    edge: &str,
    operation: &str,
    body: &serde_json::Value,
) -> Answer {
    call(client, edge, operation, JSON, body.to_string().into_bytes()).await
}

/// Reads event-stream messages from a streaming body as they arrive.
pub struct EventReader {
    body: Incoming,
    buffered: Vec<u8>,
}

impl EventReader {
    pub fn new(body: Incoming) -> Self {
        EventReader {
            body,
            buffered: Vec::new(),
        }
    }

    /// The next whole message (both CRCs checked), or None when the body ended;
    /// panics if none is complete within `timeout`.
    pub async fn next(
        &mut self,
        timeout: Duration,
    ) -> Option<stratus_node::api::kinesis::event_stream::Message> {
        use stratus_node::api::kinesis::event_stream::{decode, DecodeError};
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match decode(&self.buffered) {
                Ok((message, used)) => {
                    self.buffered.drain(..used);
                    return Some(message);
                }
                Err(DecodeError::Incomplete(_)) => {}
                Err(e) => panic!("a damaged event-stream message: {e}"),
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .expect("no whole event-stream message within the timeout");
            match frame {
                None => {
                    assert!(
                        self.buffered.is_empty(),
                        "the event stream ended inside a message ({} bytes)",
                        self.buffered.len()
                    );
                    return None;
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffered.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => panic!("reading the event stream: {e:?}"),
            }
        }
    }
}
