//! What the SQS integration tests share: an `aws-sdk-sqs` client for a node's edge, the
//! queue URL and ARN a queue must have, AWS's checksum algorithms computed independently
//! of the server (MD5 of the body, of message attributes and of system attributes, byte
//! for byte as AWS defines them: boto3 and the Java SDK reject a mismatch), and polling
//! with a deadline.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{
    Message, MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
};
use aws_sdk_sqs::Client;

use crate::common::{Options, TestCluster};

pub const ACCOUNT: &str = "000000000000";
pub const REGION: &str = "us-east-1";
pub const MIB: usize = 1024 * 1024;
pub const NON_EXISTENT_QUEUE: &str = "AWS.SimpleQueueService.NonExistentQueue";

pub fn sqs_client(edge: &str, access_key: &str, secret_key: &str) -> Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(format!("http://{edge}"))
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "test"))
        .http_client(http)
        .build();
    Client::from_conf(config)
}

/// A 6-node, 3-zone cluster, ready, and a client for node 1's edge.
pub async fn start() -> (TestCluster, Client) {
    let cluster = TestCluster::start(Options::default());
    cluster.wait_ready(Duration::from_secs(60)).await;
    let client = sqs_client(&cluster.node(1).http, "test", "test");
    (cluster, client)
}

/// The URL AWS gives a queue: the host the client called, the account, the name.
pub fn queue_url(edge: &str, name: &str) -> String {
    format!("http://{edge}/{ACCOUNT}/{name}")
}

pub fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex(&md5::Md5::digest(data))
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(data))
}

/// One attribute's value as AWS's checksum sees it: its data type and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrValue {
    pub data_type: String,
    pub bytes: Vec<u8>,
}

impl AttrValue {
    pub fn string(data_type: &str, value: &str) -> Self {
        AttrValue {
            data_type: data_type.into(),
            bytes: value.as_bytes().to_vec(),
        }
    }

    pub fn binary(data_type: &str, value: &[u8]) -> Self {
        AttrValue {
            data_type: data_type.into(),
            bytes: value.to_vec(),
        }
    }

    pub fn from_sdk(v: &MessageAttributeValue) -> Self {
        let bytes = match (v.string_value(), v.binary_value()) {
            (Some(s), _) => s.as_bytes().to_vec(),
            (None, Some(b)) => b.as_ref().to_vec(),
            (None, None) => Vec::new(),
        };
        AttrValue {
            data_type: v.data_type().to_string(),
            bytes,
        }
    }

    pub fn to_sdk(&self) -> MessageAttributeValue {
        let builder = MessageAttributeValue::builder().data_type(&self.data_type);
        let builder = if self.data_type.starts_with("Binary") {
            builder.binary_value(Blob::new(self.bytes.clone()))
        } else {
            builder.string_value(String::from_utf8(self.bytes.clone()).expect("utf-8 value"))
        };
        builder.build().expect("attribute value")
    }
}

/// MD5OfMessageAttributes (and MD5OfMessageSystemAttributes) as AWS defines it: names in
/// ascending order; for each, the name, the data type (each as a 4-byte big-endian length
/// then UTF-8 bytes), one transport byte (1 for String/Number and their custom subtypes,
/// 2 for Binary), then the value as a 4-byte length and its bytes.
pub fn md5_of_attributes(attrs: &BTreeMap<String, AttrValue>) -> String {
    fn put(buf: &mut Vec<u8>, bytes: &[u8]) {
        buf.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        buf.extend_from_slice(bytes);
    }
    let mut buf = Vec::new();
    for (name, value) in attrs {
        put(&mut buf, name.as_bytes());
        put(&mut buf, value.data_type.as_bytes());
        buf.push(if value.data_type.starts_with("Binary") {
            2
        } else {
            1
        });
        put(&mut buf, &value.bytes);
    }
    md5_hex(&buf)
}

pub fn attrs_of(sdk: &HashMap<String, MessageAttributeValue>) -> BTreeMap<String, AttrValue> {
    sdk.iter()
        .map(|(k, v)| (k.clone(), AttrValue::from_sdk(v)))
        .collect()
}

/// The message attributes a received message carries (empty when none came back).
pub fn received_attrs(m: &Message) -> BTreeMap<String, AttrValue> {
    m.message_attributes().map(attrs_of).unwrap_or_default()
}

/// A system attribute of a received message, by its wire name.
pub fn system_attr(m: &Message, name: MessageSystemAttributeName) -> Option<&str> {
    m.attributes()
        .and_then(|a| a.get(&name))
        .map(String::as_str)
}

pub fn receive_count(m: &Message) -> u32 {
    system_attr(m, MessageSystemAttributeName::ApproximateReceiveCount)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no ApproximateReceiveCount on {m:?}"))
}

pub fn body(m: &Message) -> &str {
    m.body()
        .unwrap_or_else(|| panic!("message without a body: {m:?}"))
}

pub fn handle(m: &Message) -> &str {
    m.receipt_handle()
        .unwrap_or_else(|| panic!("message without a receipt handle: {m:?}"))
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Polls `f` every 100 ms until it yields a value; panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every attribute of a queue, keyed by its wire name.
pub async fn queue_attributes(client: &Client, url: &str) -> HashMap<String, String> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetQueueAttributes {url}: {}", DisplayErrorContext(&e)));
    out.attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// (ApproximateNumberOfMessages, ...NotVisible, ...Delayed).
pub async fn counts(client: &Client, url: &str) -> (u64, u64, u64) {
    let a = queue_attributes(client, url).await;
    let n = |k: &str| -> u64 {
        a.get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{k} missing or not a number in {a:?}"))
    };
    (
        n("ApproximateNumberOfMessages"),
        n("ApproximateNumberOfMessagesNotVisible"),
        n("ApproximateNumberOfMessagesDelayed"),
    )
}

/// Waits until the queue's approximate counts are exactly `expected`.
pub async fn wait_counts(client: &Client, url: &str, expected: (u64, u64, u64)) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = counts(client, url).await;
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "queue {url}: (visible, not visible, delayed) = {got:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn create_queue(
    client: &Client,
    name: &str,
    attrs: &[(QueueAttributeName, &str)],
) -> String {
    let mut req = client.create_queue().queue_name(name);
    for (k, v) in attrs {
        req = req.attributes(k.clone(), *v);
    }
    let out = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateQueue {name}: {}", DisplayErrorContext(&e)));
    out.queue_url().expect("queue url").to_string()
}

pub async fn send(client: &Client, url: &str, body: &str) -> String {
    client
        .send_message()
        .queue_url(url)
        .message_body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("SendMessage to {url}: {}", DisplayErrorContext(&e)))
        .message_id()
        .expect("message id")
        .to_string()
}

/// One ReceiveMessage asking for every system and message attribute.
pub async fn receive(client: &Client, url: &str, max: i32, wait_s: i32) -> Vec<Message> {
    client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(max)
        .wait_time_seconds(wait_s)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap_or_else(|e| panic!("ReceiveMessage from {url}: {}", DisplayErrorContext(&e)))
        .messages()
        .to_vec()
}

/// Receives (without deleting) until `n` messages have come back, within `timeout`.
pub async fn receive_n(client: &Client, url: &str, n: usize, timeout: Duration) -> Vec<Message> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    while got.len() < n {
        assert!(
            Instant::now() < deadline,
            "received {} of {n} messages from {url}: {got:?}",
            got.len()
        );
        let want = (n - got.len()).min(10) as i32;
        got.extend(receive(client, url, want, 1).await);
    }
    assert_eq!(
        got.len(),
        n,
        "more messages than expected from {url}: {got:?}"
    );
    got
}

/// A queue that must stay empty for one long poll of `wait_s` seconds.
pub async fn assert_empty(client: &Client, url: &str, wait_s: i32) {
    let got = receive(client, url, 10, wait_s).await;
    assert!(
        got.is_empty(),
        "expected no message from {url}, got {got:?}"
    );
}

pub async fn delete(client: &Client, url: &str, m: &Message) {
    client
        .delete_message()
        .queue_url(url)
        .receipt_handle(handle(m))
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteMessage on {url}: {}", DisplayErrorContext(&e)));
}

/// The call must fail with `code`: the error code the Rust SDK reports, which for SQS is
/// the legacy code of the `x-amzn-query-error` header (e.g.
/// `AWS.SimpleQueueService.NonExistentQueue`, `InvalidParameterValue`). Returns the error
/// for further checks (typed variants).
#[track_caller]
pub fn expect_code<T, E>(what: &str, res: Result<T, SdkError<E>>, code: &str) -> SdkError<E>
where
    T: std::fmt::Debug,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let err = match res {
        Ok(v) => panic!("{what}: expected error {code}, got success {v:?}"),
        Err(e) => e,
    };
    assert_eq!(
        err.code(),
        Some(code),
        "{what}: wrong error: {}",
        DisplayErrorContext(&err)
    );
    err
}

/// Makes a received message visible again at once.
pub async fn release(sqs: &Client, url: &str, m: &Message) {
    sqs.change_message_visibility()
        .queue_url(url)
        .receipt_handle(handle(m))
        .visibility_timeout(0)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ChangeMessageVisibility 0: {}", DisplayErrorContext(&e)));
}
