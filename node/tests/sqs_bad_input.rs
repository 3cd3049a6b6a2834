//! Bad input to the SQS API (issue 5) over raw HTTP, signed here with SigV4 so that it
//! reaches the service: malformed JSON, parameters of the wrong type, unknown operations,
//! missing parameters, missing or wrong credentials, an oversized request. Each gets the
//! AWS JSON 1.0 error AWS gives (`__type` and `message` in the body, the legacy code in
//! `x-amzn-query-error`), and the node keeps serving.

mod common;
mod sqs_common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use serde_json::{json, Value};
use sqs_common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(data);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(&inner[..]);
    let mut out = [0u8; 32];
    out.copy_from_slice(&outer.finalize());
    out
}

/// `YYYYMMDD'T'HHMMSS'Z'` for a time.
fn amz_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let dt = time::OffsetDateTime::from_unix_timestamp(secs).expect("a valid time");
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        dt.year(),
        dt.month() as u8,
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

struct Credentials<'a> {
    access_key: &'a str,
    secret_key: &'a str,
    region: &'a str,
    service: &'a str,
}

/// The SigV4 `Authorization` header for a request with no query string, signing every
/// header given (names in lower case; `host` and `x-amz-date` among them).
fn authorization(
    c: &Credentials,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> String {
    let mut headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    headers.sort();
    let date_time = headers
        .iter()
        .find(|(k, _)| k == "x-amz-date")
        .map(|(_, v)| v.clone())
        .expect("x-amz-date is signed");
    let date = &date_time[..8];
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{method}\n{path}\n\n{canonical_headers}\n{signed_headers}\n{}",
        sha256_hex(body)
    );
    let scope = format!("{date}/{}/{}/aws4_request", c.region, c.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{date_time}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let k_date = hmac_sha256(format!("AWS4{}", c.secret_key).as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, c.region.as_bytes());
    let k_service = hmac_sha256(&k_region, c.service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"aws4_request");
    let signature = hex(&hmac_sha256(&k_signing, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        c.access_key
    )
}

#[test]
fn hmac_and_sigv4_match_published_vectors() {
    // RFC 4231, test case 2.
    assert_eq!(
        hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // AWS's SigV4 test suite, "get-vanilla".
    let c = Credentials {
        access_key: "AKIDEXAMPLE",
        secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region: "us-east-1",
        service: "service",
    };
    assert_eq!(
        authorization(
            &c,
            "GET",
            "/",
            &[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z")
            ],
            b""
        ),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, \
         Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
    assert_eq!(
        amz_date(UNIX_EPOCH + Duration::from_secs(1_440_938_160)),
        "20150830T123600Z"
    );
}

enum Auth<'a> {
    Unsigned,
    Keys(&'a str, &'a str),
    /// Correct keys, signed as if at another time.
    At(SystemTime),
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {self:?}"))
    }

    /// The error shape's name: `__type` after its `namespace#`.
    fn error_type(&self) -> String {
        let t = self.json()["__type"]
            .as_str()
            .unwrap_or_else(|| panic!("no __type: {self:?}"))
            .to_string();
        t.rsplit('#').next().unwrap().to_string()
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap().trim(), 16).ok())
            .unwrap_or(0);
        body = &body[line_end + 2..];
        if size == 0 || body.len() < size {
            break;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[(size + 2).min(body.len())..];
    }
    out
}

/// POST / to the edge as an AWS JSON 1.0 request, and the parsed reply.
async fn post(edge: &str, target: Option<&str>, body: &[u8], auth: Auth<'_>) -> Reply {
    try_post(edge, target, body, auth)
        .await
        .unwrap_or_else(|raw| panic!("no HTTP answer: {raw:?}"))
}

/// The reply, or what came back if it was not one (a connection reset mid-request).
async fn try_post(
    edge: &str,
    target: Option<&str>,
    body: &[u8],
    auth: Auth<'_>,
) -> Result<Reply, String> {
    let (keys, when) = match auth {
        Auth::Unsigned => (None, SystemTime::now()),
        Auth::Keys(a, s) => (Some((a, s)), SystemTime::now()),
        Auth::At(t) => (Some(("test", "test")), t),
    };
    let date = amz_date(when);
    let mut headers: Vec<(&str, &str)> = vec![
        ("host", edge),
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-date", date.as_str()),
    ];
    if let Some(t) = target {
        headers.push(("x-amz-target", t));
    }
    let mut request = String::from("POST / HTTP/1.1\r\n");
    for (k, v) in &headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some((access_key, secret_key)) = keys {
        let c = Credentials {
            access_key,
            secret_key,
            region: REGION,
            service: "sqs",
        };
        let auth = authorization(&c, "POST", "/", &headers, body);
        request.push_str(&format!("authorization: {auth}\r\n"));
    }
    request.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut stream = tokio::net::TcpStream::connect(edge)
        .await
        .expect("connect to the edge");
    stream.write_all(request.as_bytes()).await.unwrap();
    // The server may answer (and close) before reading an oversized body.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw)).await;
    assert!(read.is_ok(), "no complete answer within 20 s");
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(String::from_utf8_lossy(&raw).into_owned());
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    Ok(Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn assert_json_error(r: &Reply, status: u16, error_type: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/x-amz-json-1.0")),
        "{r:?}"
    );
    assert_eq!(r.error_type(), error_type, "{r:?}");
}

fn assert_malformed(r: &Reply) {
    assert_eq!(r.status, 400, "{r:?}");
    let t = r.error_type();
    assert!(
        t == "SerializationException" || t == "InvalidParameterValueException",
        "{r:?}"
    );
}

/// A signed ListQueues succeeds: the node is up and serving.
async fn assert_serving(edge: &str) {
    let r = post(
        edge,
        Some("AmazonSQS.ListQueues"),
        b"{}",
        Auth::Keys("test", "test"),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_aws_errors_and_the_node_keeps_serving() {
    let _serial = common::serial().await;
    let (cluster, sqs) = start().await;
    let edge = cluster.node(1).http.clone();
    let url = create_queue(&sqs, "wire", &[]).await;
    let signed = || Auth::Keys("test", "test");

    // The baseline: a signed request in the wire format, answered in it.
    let r = post(&edge, Some("AmazonSQS.ListQueues"), b"{}", signed()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/x-amz-json-1.0")));
    assert!(
        r.json()["QueueUrls"]
            .as_array()
            .is_some_and(|urls| urls.contains(&json!(url))),
        "{r:?}"
    );
    let sent = json!({"QueueUrl": url, "MessageBody": "msg"}).to_string();
    let r = post(
        &edge,
        Some("AmazonSQS.SendMessage"),
        sent.as_bytes(),
        signed(),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json()["MD5OfMessageBody"],
        json!("6e2baaf3b97dbeef01c0043275f9a0e7")
    );

    // A service error: the modelled shape in __type, a message, and the legacy code in
    // x-amzn-query-error (the only place the Rust SDK looks).
    let r = post(
        &edge,
        Some("AmazonSQS.GetQueueUrl"),
        json!({"QueueName": "missing"}).to_string().as_bytes(),
        signed(),
    )
    .await;
    assert_json_error(&r, 400, "QueueDoesNotExist");
    assert_eq!(
        r.json()["__type"],
        json!("com.amazonaws.sqs#QueueDoesNotExist")
    );
    assert!(
        r.json()["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{r:?}"
    );
    assert_eq!(
        r.header("x-amzn-query-error"),
        Some("AWS.SimpleQueueService.NonExistentQueue;Sender")
    );
    // Errors outside the model: AWS names them InvalidParameterValueException and
    // MissingRequiredParameterException, with the legacy codes in the header.
    let r = post(
        &edge,
        Some("AmazonSQS.CreateQueue"),
        json!({"QueueName": "bad name"}).to_string().as_bytes(),
        signed(),
    )
    .await;
    assert_json_error(&r, 400, "InvalidParameterValueException");
    assert_eq!(
        r.header("x-amzn-query-error"),
        Some("InvalidParameterValue;Sender")
    );
    let r = post(
        &edge,
        Some("AmazonSQS.SendMessage"),
        json!({"QueueUrl": url}).to_string().as_bytes(),
        signed(),
    )
    .await;
    assert_json_error(&r, 400, "MissingRequiredParameterException");
    assert_eq!(
        r.header("x-amzn-query-error"),
        Some("MissingParameter;Sender")
    );
    let r = post(
        &edge,
        Some("AmazonSQS.DeleteMessage"),
        json!({"QueueUrl": url, "ReceiptHandle": "garbage"})
            .to_string()
            .as_bytes(),
        signed(),
    )
    .await;
    assert_json_error(&r, 400, "ReceiptHandleIsInvalid");
    assert_eq!(
        r.header("x-amzn-query-error"),
        Some("ReceiptHandleIsInvalid;Sender")
    );

    // Bodies that are not the operation's JSON: AWS JSON services answer
    // SerializationException; whether SQS, being query-compatible, says
    // InvalidParameterValueException instead is not documented, so either is accepted.
    let not_json: [&[u8]; 4] = [
        b"{\"QueueUrl\": ",
        b"not json at all",
        b"[1, 2, 3]",
        b"\xff\xfe\x00garbage",
    ];
    for body in not_json {
        let r = post(&edge, Some("AmazonSQS.SendMessage"), body, signed()).await;
        assert_malformed(&r);
    }
    let wrong_type = json!({"QueueUrl": url, "MaxNumberOfMessages": "ten"}).to_string();
    let r = post(
        &edge,
        Some("AmazonSQS.ReceiveMessage"),
        wrong_type.as_bytes(),
        signed(),
    )
    .await;
    assert_malformed(&r);

    // Operations SQS does not have.
    for target in ["AmazonSQS.FlyToTheMoon", "AmazonSQS."] {
        let r = post(&edge, Some(target), b"{}", signed()).await;
        assert_json_error(&r, 400, "UnknownOperationException");
    }
    assert_serving(&edge).await;

    // No signature, a wrong secret, an unknown key, a signature from an hour ago.
    let r = post(&edge, Some("AmazonSQS.ListQueues"), b"{}", Auth::Unsigned).await;
    assert_eq!(r.status, 403, "{r:?}");
    let t = r.error_type();
    assert!(
        t.contains("MissingAuthenticationToken") || t.contains("AccessDenied"),
        "{r:?}"
    );
    let r = post(
        &edge,
        Some("AmazonSQS.ListQueues"),
        b"{}",
        Auth::Keys("test", "not-the-secret"),
    )
    .await;
    assert_eq!(r.status, 403, "{r:?}");
    let said = format!(
        "{} {}",
        r.error_type(),
        r.header("x-amzn-query-error").unwrap_or("")
    );
    assert!(
        said.contains("SignatureDoesNotMatch") || said.contains("InvalidSignature"),
        "{r:?}"
    );
    let r = post(
        &edge,
        Some("AmazonSQS.ListQueues"),
        b"{}",
        Auth::Keys("nobody", "x"),
    )
    .await;
    assert_eq!(r.status, 403, "{r:?}");
    let said = format!(
        "{} {}",
        r.error_type(),
        r.header("x-amzn-query-error").unwrap_or("")
    );
    assert!(
        said.contains("InvalidClientTokenId") || said.contains("UnrecognizedClient"),
        "{r:?}"
    );
    let r = post(
        &edge,
        Some("AmazonSQS.ListQueues"),
        b"{}",
        Auth::At(SystemTime::now() - Duration::from_secs(3600)),
    )
    .await;
    assert!(
        r.status == 400 || r.status == 403,
        "a signature an hour old is refused: {r:?}"
    );
    assert!(!r.error_type().is_empty());
    assert_serving(&edge).await;

    // The SDK reports the same refusals by code.
    let wrong = sqs_client(&edge, "test", "not-the-secret");
    let err = wrong
        .list_queues()
        .send()
        .await
        .expect_err("a wrong secret is refused");
    assert!(
        matches!(
            err.code(),
            Some("SignatureDoesNotMatch" | "InvalidSignatureException")
        ),
        "{}",
        DisplayErrorContext(&err)
    );
    let unknown = sqs_client(&edge, "nobody", "x");
    let err = unknown
        .get_queue_url()
        .queue_name("wire")
        .send()
        .await
        .expect_err("an unknown key is refused");
    assert!(
        matches!(
            err.code(),
            Some("InvalidClientTokenId" | "UnrecognizedClientException")
        ),
        "{}",
        DisplayErrorContext(&err)
    );

    // A request far over any message size: refused, not buffered into a crash.
    let huge = json!({"QueueUrl": url, "MessageBody": "x".repeat(8 * MIB)}).to_string();
    // (A server may also answer early and reset the connection while the body streams.)
    if let Ok(r) = try_post(
        &edge,
        Some("AmazonSQS.SendMessage"),
        huge.as_bytes(),
        signed(),
    )
    .await
    {
        assert!((400..500).contains(&r.status), "{r:?}");
    }

    // Every node still serves, and none panicked.
    for id in 1..=6 {
        assert_serving(&cluster.node(id).http).await;
        assert!(
            !cluster.log_of(id).contains("panicked"),
            "node {id} panicked"
        );
    }
    let got = receive_n(&sqs, &url, 1, Duration::from_secs(10)).await;
    assert_eq!(body(&got[0]), "msg");
}
