//! S3 edge cases against a real 6-node, 3-zone cluster of `stratusd` processes, through
//! the official AWS SDK for Rust and, where the SDK cannot send what a test needs, raw
//! HTTP signed here with SigV4:
//!
//! - 100 MiB objects, as one PutObject and as a multipart upload: whole and ranged reads
//!   across stripe and part boundaries, sizes and ETags.
//! - Concurrent writers to one key never produce a mixed object, versioned or not.
//! - Malformed XML bodies get `MalformedXML` (400) and change nothing.
//! - A 512 MiB object streams in and out of the nodes in bounded memory.
//! - An expired presigned URL is refused with `AccessDenied` (403).
//!
//! Bad input already covered by `s3_api.rs` (invalid bucket names, wrong and unknown
//! keys, unsigned requests, a part under 5 MiB, a wrong part ETag) is not repeated here.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, VersioningConfiguration,
};
use aws_sdk_s3::Client;
use bytes::Bytes;
use common::{Options, TestCluster};
use md5::{Digest, Md5};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1024 * 1024;
const ACCESS_KEY: &str = "test";
const SECRET_KEY: &str = "test";
const REGION: &str = "us-east-1";

fn s3_client(edge: &str) -> Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(format!("http://{edge}"))
        .force_path_style(true)
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .http_client(http)
        .build();
    Client::from_conf(config)
}

/// The same client, but sending no checksum unless an operation requires one. Over plain
/// HTTP the SDK signs a body with SHA-256 (a streamed one chunk by chunk, as aws-chunked
/// with a CRC32 trailer, even when told not to sign), which both ends compute at ~20 MB/s
/// in a debug build. With this client and `.customize().disable_payload_signing()` a body
/// goes as clients over TLS send it: plain, unsigned, with its Content-Length.
fn without_checksums(s3: &Client) -> Client {
    Client::from_conf(
        s3.config()
            .to_builder()
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .build(),
    )
}

async fn start() -> TestCluster {
    let cluster = TestCluster::start(Options::default());
    cluster.wait_ready(Duration::from_secs(60)).await;
    cluster
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn md5_of(data: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&Md5::digest(data));
    out
}

fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// Deterministic pseudo-random bytes (xorshift64, eight bytes a step).
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Object content, cheap to make at any offset (a debug build generates random bytes at
/// a few dozen MB/s, copies them at GB/s): `BLOCK`-byte blocks of one random base, each
/// stamped with its index in its first eight bytes, so a block in the wrong place is
/// caught. The block length is not a multiple of the 1 MiB stripe, so every stripe's
/// bytes differ from every other's.
#[derive(Clone)]
struct Generated {
    base: Bytes,
}

impl Generated {
    const BLOCK: usize = MIB + 7;

    fn new(seed: u64) -> Self {
        Generated {
            base: Bytes::from(pattern(Self::BLOCK, seed)),
        }
    }

    /// The bytes at `offset..offset + len`.
    fn bytes(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut at = offset;
        while out.len() < len {
            let block = at / Self::BLOCK as u64;
            let within = (at % Self::BLOCK as u64) as usize;
            let n = (Self::BLOCK - within).min(len - out.len());
            if within < 8 {
                // The stamp's bytes from `within`, as far as this piece reaches.
                let stamp = block.to_le_bytes();
                let m = (8 - within).min(n);
                out.extend_from_slice(&stamp[within..within + m]);
                out.extend_from_slice(&self.base[within + m..within + n]);
            } else {
                out.extend_from_slice(&self.base[within..within + n]);
            }
            at += n as u64;
        }
        out
    }
}

async fn create_bucket(s3: &Client, bucket: &str, versioned: bool) {
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create {bucket}: {e:?}"));
    if versioned {
        s3.put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("enable versioning");
    }
}

async fn get_bytes(s3: &Client, bucket: &str, key: &str) -> Bytes {
    s3.get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {bucket}/{key}: {e:?}"))
        .body
        .collect()
        .await
        .expect("GET body")
        .into_bytes()
}

/// GET `bytes=first-last` (inclusive) and check it against `whole`.
async fn assert_range(
    s3: &Client,
    bucket: &str,
    key: &str,
    whole: &[u8],
    first: usize,
    last: usize,
) {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(format!("bytes={first}-{last}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {key} bytes={first}-{last}: {e:?}"));
    assert_eq!(
        out.content_range(),
        Some(format!("bytes {first}-{last}/{}", whole.len()).as_str()),
        "{key} bytes={first}-{last}"
    );
    assert_eq!(out.content_length(), Some((last - first + 1) as i64));
    let got = out.body.collect().await.expect("range body").into_bytes();
    assert!(
        got[..] == whole[first..=last],
        "{key} bytes={first}-{last}: wrong content"
    );
}

/// Whole GET, HEAD and a set of ranges of a 100 MiB object; `boundaries` are offsets
/// (stripe and part starts) that ranges straddle.
async fn check_large_object(
    s3: &Client,
    bucket: &str,
    key: &str,
    whole: &Bytes,
    etag: &str,
    boundaries: &[usize],
) {
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("HEAD");
    assert_eq!(
        head.content_length(),
        Some(whole.len() as i64),
        "{key} size"
    );
    assert_eq!(head.e_tag(), Some(quoted(etag).as_str()), "{key} HEAD ETag");
    let got = get_bytes(s3, bucket, key).await;
    assert_eq!(got.len(), whole.len(), "{key} GET length");
    assert!(got == *whole, "{key}: GET returned different bytes");
    drop(got);
    for &b in boundaries {
        assert_range(s3, bucket, key, whole, b - 1, b).await;
        let (first, last) = (b.saturating_sub(3 * MIB / 2), b + MIB + 17);
        assert_range(s3, bucket, key, whole, first, last.min(whole.len() - 1)).await;
    }
    // A single byte mid-stripe, the first byte, and the tail by suffix and open ranges.
    assert_range(s3, bucket, key, whole, 50 * MIB + 3, 50 * MIB + 3).await;
    assert_range(s3, bucket, key, whole, 0, 0).await;
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .range("bytes=-1000")
        .send()
        .await
        .expect("suffix range");
    let got = out.body.collect().await.unwrap().into_bytes();
    assert!(got[..] == whole[whole.len() - 1000..], "{key} suffix range");
    let from = whole.len() - MIB - 5;
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(format!("bytes={from}-"))
        .send()
        .await
        .expect("open range");
    let got = out.body.collect().await.unwrap().into_bytes();
    assert!(got[..] == whole[from..], "{key} open range");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn objects_of_100_mib_by_single_put_and_by_multipart() {
    let _serial = common::serial().await;
    let cluster = start().await;
    let s3 = s3_client(&cluster.node(1).http);
    create_bucket(&s3, "large", false).await;
    let size = 100 * MIB;

    // One PutObject: the ETag is the plain MD5.
    let whole = Bytes::from(Generated::new(1).bytes(0, size));
    let md5 = hex(&md5_of(&whole));
    let put = s3
        .put_object()
        .bucket("large")
        .key("single")
        .body(ByteStream::from(whole.clone()))
        .send()
        .await
        .expect("PUT 100 MiB");
    assert_eq!(put.e_tag(), Some(quoted(&md5).as_str()));
    let stripes: Vec<usize> = [1, 2, 37, 99].iter().map(|s| s * MIB).collect();
    check_large_object(&s3, "large", "single", &whole, &md5, &stripes).await;
    drop(whole);

    // Multipart: six parts of 16 MiB + 5 (so part and stripe boundaries disagree) and a
    // short last one; the ETag is the MD5 of the parts' MD5s, then `-7`.
    let whole = Bytes::from(Generated::new(2).bytes(0, size));
    // The parts go plain and unsigned (the single PUT above went the SDK's default way:
    // signed payload, CRC32 checksum), which also keeps the test quick.
    let unsigned = without_checksums(&s3);
    let part_len = 16 * MIB + 5;
    let create = s3
        .create_multipart_upload()
        .bucket("large")
        .key("multi")
        .send()
        .await
        .expect("create upload");
    let upload_id = create.upload_id().expect("upload id");
    let mut parts = Vec::new();
    let mut part_md5s = Vec::new();
    for (i, chunk) in whole.chunks(part_len).enumerate() {
        let number = i as i32 + 1;
        let part = whole.slice_ref(chunk);
        let md5 = md5_of(&part);
        let out = unsigned
            .upload_part()
            .bucket("large")
            .key("multi")
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(part))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .unwrap_or_else(|e| panic!("part {number}: {e:?}"));
        assert_eq!(
            out.e_tag(),
            Some(quoted(&hex(&md5)).as_str()),
            "part {number}"
        );
        part_md5s.extend_from_slice(&md5);
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    assert_eq!(parts.len(), 7);
    let etag = format!("{}-{}", hex(&md5_of(&part_md5s)), parts.len());
    let done = s3
        .complete_multipart_upload()
        .bucket("large")
        .key("multi")
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("complete");
    assert_eq!(done.e_tag(), Some(quoted(&etag).as_str()));
    let mut boundaries: Vec<usize> = (1..=6).map(|p| p * part_len).collect();
    boundaries.extend([MIB, 33 * MIB]);
    check_large_object(&s3, "large", "multi", &whole, &etag, &boundaries).await;
    // One range spanning three whole parts and two partial ones.
    assert_range(
        &s3,
        "large",
        "multi",
        &whole,
        part_len - 7,
        4 * part_len + 11,
    )
    .await;

    let listed = s3
        .list_objects_v2()
        .bucket("large")
        .send()
        .await
        .expect("list");
    let sizes: Vec<_> = listed
        .contents()
        .iter()
        .map(|o| (o.key().unwrap_or_default(), o.size()))
        .collect();
    assert_eq!(
        sizes,
        vec![("multi", Some(size as i64)), ("single", Some(size as i64))]
    );
}

/// What a concurrent-writers run saw.
#[derive(Default)]
struct ReadLog {
    whole_reads: usize,
    not_found: usize,
    errors: Vec<String>,
}

/// `WRITERS` tasks PUT distinct bodies to one key `ROUNDS` times each while `READERS`
/// tasks GET it; every body differs from every other at every offset, so a GET that mixed
/// stripes of two writes matches no body's MD5. Returns the acknowledged (body index,
/// version id) pairs.
async fn race_writers_and_readers(
    cluster: &TestCluster,
    bucket: &str,
    bodies: &Arc<Vec<Bytes>>,
    md5s: &Arc<HashMap<[u8; 16], usize>>,
) -> Vec<(usize, Option<String>)> {
    const WRITERS: usize = 3;
    const READERS: usize = 2;
    let rounds = bodies.len() / WRITERS;
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..READERS {
        let s3 = s3_client(&cluster.node(2 + r as u64).http);
        let (bucket, md5s, done) = (bucket.to_string(), md5s.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut log = ReadLog::default();
            // At least one read after the writers finish, so every run checks something.
            let mut last = false;
            while !last {
                last = done.load(Ordering::SeqCst);
                match s3
                    .get_object()
                    .bucket(&bucket)
                    .key("contended")
                    .send()
                    .await
                {
                    Ok(out) => {
                        let etag = out.e_tag().map(str::to_string);
                        match out.body.collect().await {
                            Ok(body) => {
                                let body = body.into_bytes();
                                let md5 = md5_of(&body);
                                if !md5s.contains_key(&md5) {
                                    log.errors.push(format!(
                                        "GET returned {} bytes that match no written body",
                                        body.len()
                                    ));
                                } else if etag != Some(quoted(&hex(&md5))) {
                                    log.errors
                                        .push(format!("GET body and ETag {etag:?} disagree"));
                                } else {
                                    log.whole_reads += 1;
                                }
                            }
                            Err(e) => log.errors.push(format!("GET body failed: {e:?}")),
                        }
                    }
                    Err(e) if e.code() == Some("NoSuchKey") => log.not_found += 1,
                    Err(e) => log.errors.push(format!("GET failed: {e:?}")),
                }
            }
            log
        }));
    }
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        // Writers go through nodes 1, 4 and 5; readers through 2 and 3.
        let s3 = s3_client(&cluster.node([1, 4, 5][w]).http);
        let (bucket, bodies) = (bucket.to_string(), bodies.clone());
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for round in 0..rounds {
                let index = round * WRITERS + w;
                let body = bodies[index].clone();
                let out = s3
                    .put_object()
                    .bucket(&bucket)
                    .key("contended")
                    .body(ByteStream::from(body.clone()))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("writer {w} round {round}: {e:?}"));
                assert_eq!(
                    out.e_tag(),
                    Some(quoted(&hex(&md5_of(&body))).as_str()),
                    "writer {w} round {round}"
                );
                acked.push((index, out.version_id().map(str::to_string)));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.expect("writer task"));
    }
    done.store(true, Ordering::SeqCst);
    let mut whole_reads = 0;
    for r in readers {
        let log = r.await.expect("reader task");
        assert!(
            log.errors.is_empty(),
            "{bucket}: {} bad reads (and {} whole, {} not found): {:?}",
            log.errors.len(),
            log.whole_reads,
            log.not_found,
            log.errors
        );
        whole_reads += log.whole_reads;
    }
    assert!(
        whole_reads >= READERS,
        "{bucket}: {whole_reads} whole reads"
    );
    println!(
        "{bucket}: {} writes, {whole_reads} whole reads",
        acked.len()
    );
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_to_one_key_never_produce_a_mixed_object() {
    let _serial = common::serial().await;
    let cluster = start().await;
    let s3 = s3_client(&cluster.node(6).http);
    // 3 writers x 4 rounds; body i is a shared random base XOR (i + 1): multi-stripe
    // (3 MiB + 17), and any two bodies differ at every offset.
    let base = Generated::new(99).bytes(0, 3 * MIB + 17);
    let bodies: Vec<Bytes> = (0..12u8)
        .map(|i| Bytes::from(base.iter().map(|b| b ^ (i + 1)).collect::<Vec<u8>>()))
        .collect();
    let md5s: HashMap<[u8; 16], usize> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| (md5_of(b), i))
        .collect();
    assert_eq!(md5s.len(), bodies.len());
    let (bodies, md5s) = (Arc::new(bodies), Arc::new(md5s));

    // Unversioned: each PUT replaces the null version; the survivor is one whole body.
    create_bucket(&s3, "plain", false).await;
    race_writers_and_readers(&cluster, "plain", &bodies, &md5s).await;
    let last = get_bytes(&s3, "plain", "contended").await;
    assert!(md5s.contains_key(&md5_of(&last)), "final object is mixed");
    let versions = s3
        .list_object_versions()
        .bucket("plain")
        .send()
        .await
        .expect("list versions");
    assert_eq!(versions.versions().len(), 1, "{versions:?}");
    assert_eq!(versions.versions()[0].version_id(), Some("null"));

    // Versioned: every acknowledged PUT is a version, and each version holds exactly the
    // body its PUT sent.
    create_bucket(&s3, "versioned", true).await;
    let acked = race_writers_and_readers(&cluster, "versioned", &bodies, &md5s).await;
    let expected: HashMap<String, usize> = acked
        .into_iter()
        .map(|(index, v)| (v.expect("a versioned PUT returns a version id"), index))
        .collect();
    assert_eq!(expected.len(), bodies.len(), "version ids are distinct");
    let versions = s3
        .list_object_versions()
        .bucket("versioned")
        .send()
        .await
        .expect("list versions");
    let listed: BTreeSet<String> = versions
        .versions()
        .iter()
        .filter_map(|v| v.version_id().map(str::to_string))
        .collect();
    assert_eq!(
        listed,
        expected.keys().cloned().collect::<BTreeSet<_>>(),
        "listed versions are the acknowledged ones"
    );
    assert_eq!(
        versions
            .versions()
            .iter()
            .filter(|v| v.is_latest() == Some(true))
            .count(),
        1
    );
    for v in versions.versions() {
        let id = v.version_id().unwrap();
        let out = s3
            .get_object()
            .bucket("versioned")
            .key("contended")
            .version_id(id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET version {id}: {e:?}"));
        let body = out.body.collect().await.expect("version body").into_bytes();
        assert_eq!(
            md5s.get(&md5_of(&body)),
            Some(&expected[id]),
            "version {id} does not hold the body its PUT sent"
        );
        assert_eq!(v.e_tag(), Some(quoted(&hex(&md5_of(&body))).as_str()));
        assert_eq!(v.size(), Some(body.len() as i64));
    }
}

// ---- Raw, SigV4-signed HTTP ----

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(data));
    out
}

/// HMAC-SHA256 (RFC 2104) over `sha2`.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut padded = [0u8; BLOCK];
    if key.len() > BLOCK {
        padded[..32].copy_from_slice(&sha256(key));
    } else {
        padded[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(padded.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(padded.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    let mut out = [0u8; 32];
    out.copy_from_slice(&outer.finalize());
    out
}

/// SigV4's URI encoding: everything but unreserved characters is %XX.
fn uri_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One HTTP/1.1 request, signed with SigV4 (header auth, signed payload hash) for
/// `addr` with the test credentials. `path` must need no encoding.
fn signed_request(
    addr: &str,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    extra_headers: &[(&str, String)],
    body: &[u8],
) -> Vec<u8> {
    let now = time::OffsetDateTime::now_utc();
    let amz_date = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let date = &amz_date[..8];
    let payload_hash = hex(&sha256(body));
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), addr.to_string()),
        ("x-amz-content-sha256".into(), payload_hash.clone()),
        ("x-amz-date".into(), amz_date.clone()),
    ];
    headers.extend(
        extra_headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string())),
    );
    headers.sort();
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    pairs.sort();
    let canonical_query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}"
    );
    let scope = format!("{date}/{REGION}/s3/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&sha256(canonical_request.as_bytes()))
    );
    let mut key = hmac_sha256(format!("AWS4{SECRET_KEY}").as_bytes(), date.as_bytes());
    for part in [REGION, "s3", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));

    let target = if canonical_query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{canonical_query}")
    };
    let mut out = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in &headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "authorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, \
         SignedHeaders={signed_headers}, Signature={signature}\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

struct RawResponse {
    status: u16,
    /// Headers and body as text.
    text: String,
}

impl RawResponse {
    fn error_code(&self) -> Option<&str> {
        let start = self.text.find("<Code>")? + "<Code>".len();
        let end = start + self.text[start..].find("</Code>")?;
        Some(&self.text[start..end])
    }
}

async fn send_raw(addr: &str, request: &[u8]) -> RawResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send request");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut out))
        .await
        .expect("no response within 30 s")
        .expect("read response");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    RawResponse { status, text }
}

fn content_md5(body: &[u8]) -> (&'static str, String) {
    use base64::Engine;
    (
        "content-md5",
        base64::engine::general_purpose::STANDARD.encode(md5_of(body)),
    )
}

/// Bodies that are not the XML an operation expects: not XML, cut off, and a
/// well-formed document with the wrong root element.
const GARBAGE: [&[u8]; 3] = [
    b"this is not xml {]",
    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Tagging><TagSet><Tag><Key>a</Ke",
    b"<NotWhatWasAsked><Whatever/></NotWhatWasAsked>",
];

async fn assert_malformed(
    addr: &str,
    what: &str,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
) {
    for body in GARBAGE {
        let request = signed_request(addr, method, path, query, &[content_md5(body)], body);
        let resp = send_raw(addr, &request).await;
        assert_eq!(
            (resp.status, resp.error_code()),
            (400, Some("MalformedXML")),
            "{what} with body {:?}: {}",
            String::from_utf8_lossy(body),
            resp.text
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_xml_bodies_are_refused_and_change_nothing() {
    let _serial = common::serial().await;
    let cluster = start().await;
    let edge = cluster.node(1).http.clone();
    let s3 = s3_client(&edge);
    create_bucket(&s3, "xml", false).await;
    s3.put_object()
        .bucket("xml")
        .key("obj")
        .body(ByteStream::from_static(b"payload"))
        .send()
        .await
        .expect("put");

    // Controls: the same signed requests with valid bodies succeed, so a refusal below is
    // the body's doing, not the signature's.
    let config = b"<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
        <LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>";
    let resp = send_raw(
        &edge,
        &signed_request(&edge, "PUT", "/made-raw", &[], &[], config),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let tagging = b"<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>";
    for path in ["/xml", "/xml/obj"] {
        let request = signed_request(&edge, "PUT", path, &[("tagging", "")], &[], tagging);
        let resp = send_raw(&edge, &request).await;
        assert_eq!(resp.status, 200, "tagging {path}: {}", resp.text);
    }
    let versioning =
        b"<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>";
    let request = signed_request(&edge, "PUT", "/xml", &[("versioning", "")], &[], versioning);
    let resp = send_raw(&edge, &request).await;
    assert_eq!(resp.status, 200, "versioning: {}", resp.text);

    assert_malformed(&edge, "CreateBucket", "PUT", "/never-made", &[]).await;
    assert_malformed(
        &edge,
        "PutBucketVersioning",
        "PUT",
        "/xml",
        &[("versioning", "")],
    )
    .await;
    assert_malformed(&edge, "PutBucketTagging", "PUT", "/xml", &[("tagging", "")]).await;
    assert_malformed(
        &edge,
        "PutObjectTagging",
        "PUT",
        "/xml/obj",
        &[("tagging", "")],
    )
    .await;
    assert_malformed(&edge, "DeleteObjects", "POST", "/xml", &[("delete", "")]).await;
    let upload = s3
        .create_multipart_upload()
        .bucket("xml")
        .key("mpu")
        .send()
        .await
        .expect("create upload");
    let upload_id = upload.upload_id().unwrap().to_string();
    let part = s3
        .upload_part()
        .bucket("xml")
        .key("mpu")
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from_static(b"only part"))
        .send()
        .await
        .expect("part");
    assert_malformed(
        &edge,
        "CompleteMultipartUpload",
        "POST",
        "/xml/mpu",
        &[("uploadId", &upload_id)],
    )
    .await;

    // Nothing changed: no bucket made, versioning and tags as the controls left them, the
    // object still there, and the upload still open and completable.
    let err = s3
        .head_bucket()
        .bucket("never-made")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
    s3.head_bucket()
        .bucket("made-raw")
        .send()
        .await
        .expect("made-raw exists");
    let versioning = s3
        .get_bucket_versioning()
        .bucket("xml")
        .send()
        .await
        .unwrap();
    assert_eq!(
        versioning.status(),
        Some(&BucketVersioningStatus::Suspended)
    );
    let tags = s3.get_bucket_tagging().bucket("xml").send().await.unwrap();
    assert_eq!(tags.tag_set().len(), 1);
    assert_eq!(tags.tag_set()[0].key(), "k");
    let tags = s3
        .get_object_tagging()
        .bucket("xml")
        .key("obj")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tag_set().len(), 1);
    assert_eq!(&get_bytes(&s3, "xml", "obj").await[..], b"payload");
    let done = s3
        .complete_multipart_upload()
        .bucket("xml")
        .key("mpu")
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("complete after the malformed attempts");
    assert!(done.e_tag().unwrap().ends_with("-1\""));
    assert_eq!(&get_bytes(&s3, "xml", "mpu").await[..], b"only part");

    // DeleteObjects with a valid body, raw and signed the same way, does delete.
    let delete = b"<Delete><Object><Key>obj</Key></Object></Delete>";
    let request = signed_request(
        &edge,
        "POST",
        "/xml",
        &[("delete", "")],
        &[content_md5(delete)],
        delete,
    );
    let resp = send_raw(&edge, &request).await;
    assert_eq!(resp.status, 200, "delete: {}", resp.text);
    assert!(resp.text.contains("<Deleted>"), "{}", resp.text);
    let err = s3
        .get_object()
        .bucket("xml")
        .key("obj")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("NoSuchKey"));

    // Every node still answers.
    for id in 1..=6 {
        let s3 = s3_client(&cluster.node(id).http);
        s3.list_buckets()
            .send()
            .await
            .unwrap_or_else(|e| panic!("node {id} after malformed XML: {e:?}"));
    }
    assert!(!cluster.log_of(1).contains("panicked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_presigned_url_is_refused() {
    let _serial = common::serial().await;
    let cluster = start().await;
    let edge = cluster.node(2).http.clone();
    let s3 = s3_client(&edge);
    create_bucket(&s3, "presign", false).await;
    s3.put_object()
        .bucket("presign")
        .key("doc")
        .body(ByteStream::from_static(b"presigned content"))
        .send()
        .await
        .expect("put");

    let fetch = |uri: String, method: &'static str| {
        let edge = edge.clone();
        async move {
            let target = uri
                .strip_prefix(&format!("http://{edge}"))
                .unwrap_or_else(|| panic!("presigned URI {uri} is not for {edge}"))
                .to_string();
            let request = format!(
                "{method} {target} HTTP/1.1\r\nhost: {edge}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            send_raw(&edge, request.as_bytes()).await
        }
    };

    // Control: a current presigned GET works through the same raw client.
    let fresh = s3
        .get_object()
        .bucket("presign")
        .key("doc")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .expect("presign");
    let resp = fetch(fresh.uri().to_string(), "GET").await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert!(resp.text.ends_with("presigned content"), "{}", resp.text);

    // Signed two minutes ago, valid for one second.
    let expired = PresigningConfig::builder()
        .start_time(SystemTime::now() - Duration::from_secs(120))
        .expires_in(Duration::from_secs(1))
        .build()
        .unwrap();
    let get = s3
        .get_object()
        .bucket("presign")
        .key("doc")
        .presigned(expired.clone())
        .await
        .expect("presign");
    let resp = fetch(get.uri().to_string(), "GET").await;
    assert_eq!(
        (resp.status, resp.error_code()),
        (403, Some("AccessDenied")),
        "{}",
        resp.text
    );
    assert!(resp.text.contains("expired"), "{}", resp.text);
    assert!(!resp.text.contains("presigned content"));
    let put = s3
        .put_object()
        .bucket("presign")
        .key("late")
        .presigned(expired)
        .await
        .expect("presign");
    let resp = fetch(put.uri().to_string(), "PUT").await;
    assert_eq!(
        (resp.status, resp.error_code()),
        (403, Some("AccessDenied")),
        "{}",
        resp.text
    );
    let err = s3
        .head_object()
        .bucket("presign")
        .key("late")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
}

// ---- A huge object in bounded memory ----

/// A request body of `len` generated bytes, produced as the client sends it, with its
/// exact length known up front (PutObject needs it). It is an s3s `ByteStream` only to
/// get an `http_body` 1.x body for `ByteStream::from_body_1_x` without another crate.
struct GeneratedBody {
    content: Generated,
    offset: u64,
    len: u64,
}

impl futures::Stream for GeneratedBody {
    type Item = Result<Bytes, s3s::StdError>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.offset >= this.len {
            return Poll::Ready(None);
        }
        let n = (this.len - this.offset).min(256 * 1024) as usize;
        let chunk = this.content.bytes(this.offset, n);
        this.offset += n as u64;
        Poll::Ready(Some(Ok(Bytes::from(chunk))))
    }
}

impl s3s::stream::ByteStream for GeneratedBody {
    fn remaining_length(&self) -> s3s::stream::RemainingLength {
        s3s::stream::RemainingLength::new_exact((self.len - self.offset) as usize)
    }
}

/// `VmRSS` and `VmHWM` (peak RSS) of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets a process's peak RSS to its current RSS (`clear_refs` 5, Linux 4.0+).
fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// How big the streamed object is. 512 MiB, not 1 GiB: in a debug build a node takes
/// ~40 s of CPU per GiB to take in (MD5, Reed–Solomon and block CRCs are unoptimised
/// there) and the test ~20 s to check it, so 1 GiB would take minutes on two cores. Still
/// four times the memory bound below, so a node that held the object would fail.
const HUGE_BYTES: u64 = 512 * MIB as u64;
/// What a node's peak RSS may grow by while the object goes through it. Measured: about
/// 20-30 MiB on the edge node and under 5 MiB on the others, for 64 MiB to 1 GiB alike.
const MEMORY_BOUND_KIB: u64 = 128 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_huge_object_streams_through_the_nodes_in_bounded_memory() {
    let _serial = common::serial().await;
    let cluster = start().await;
    let edge_id = 1;
    let s3 = s3_client(&cluster.node(edge_id).http);
    create_bucket(&s3, "huge", false).await;
    // Warm the paths up with a small multi-stripe object so one-time allocations (pools,
    // connections, caches) are not charged to the big transfer.
    s3.put_object()
        .bucket("huge")
        .key("warm")
        .body(ByteStream::from(pattern(3 * MIB, 5)))
        .send()
        .await
        .expect("warm-up PUT");
    get_bytes(&s3, "huge", "warm").await;

    let pids: Vec<(u64, u32)> = (1..=6u64)
        .map(|id| (id, cluster.pid(id).expect("node running")))
        .collect();
    // With the peak reset, peak-after minus RSS-before is exactly the transfer's growth;
    // without, it can only overstate it.
    let reset = pids.iter().all(|(_, pid)| reset_peak(*pid));
    let before: HashMap<u64, (u64, u64)> = pids
        .iter()
        .map(|(id, pid)| (*id, memory_kib(*pid)))
        .collect();

    let unsigned = without_checksums(&s3);
    let content = Generated::new(42);
    let body = s3s::Body::from(Box::pin(GeneratedBody {
        content: content.clone(),
        offset: 0,
        len: HUGE_BYTES,
    }) as s3s::stream::DynByteStream);
    let put = unsigned
        .put_object()
        .bucket("huge")
        .key("big")
        .body(ByteStream::from_body_1_x(body))
        .customize()
        .disable_payload_signing()
        .send()
        .await
        .expect("PUT");
    let etag = put.e_tag().expect("ETag").trim_matches('"').to_string();
    let head = s3
        .head_object()
        .bucket("huge")
        .key("big")
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.content_length(), Some(HUGE_BYTES as i64));

    // Read it back a chunk at a time: compare with the generator and hash as it comes.
    let out = s3
        .get_object()
        .bucket("huge")
        .key("big")
        .send()
        .await
        .expect("GET");
    assert_eq!(out.content_length(), Some(HUGE_BYTES as i64));
    let mut body = out.body;
    let mut md5 = Md5::new();
    let mut offset = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("GET body");
        assert!(
            chunk[..] == content.bytes(offset, chunk.len())[..],
            "wrong bytes at {offset}..{}",
            offset + chunk.len() as u64
        );
        md5.update(&chunk);
        offset += chunk.len() as u64;
    }
    assert_eq!(offset, HUGE_BYTES, "GET returned {offset} bytes");
    assert_eq!(
        hex(&md5.finalize()),
        etag,
        "MD5 of the GET body vs the PUT's ETag"
    );

    let mut report = Vec::new();
    let mut over = Vec::new();
    for (id, pid) in &pids {
        let (rss_before, hwm_before) = before[id];
        let (rss_after, hwm_after) = memory_kib(*pid);
        let growth = hwm_after.saturating_sub(rss_before);
        report.push(format!(
            "node {id}: RSS {rss_before} -> {rss_after} KiB, peak {hwm_before} -> {hwm_after} \
             KiB, growth {growth} KiB"
        ));
        if growth >= MEMORY_BOUND_KIB {
            over.push(*id);
        }
    }
    println!(
        "{} MiB in and out through node {edge_id} (peak reset: {reset}):\n{}",
        HUGE_BYTES >> 20,
        report.join("\n")
    );
    assert!(
        over.is_empty(),
        "peak RSS of nodes {over:?} grew by {MEMORY_BOUND_KIB} KiB or more: {report:#?}"
    );
}

#[test]
fn hmac_sha256_matches_rfc_4231() {
    assert_eq!(
        hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // A key longer than the block is hashed first (RFC 4231 test case 6).
    assert_eq!(
        hex(&hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}
