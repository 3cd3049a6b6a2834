//! The S3 API through the official AWS SDK for Rust, against a real 6-node, 3-zone
//! cluster of `stratusd` processes: buckets, objects of awkward sizes, listings,
//! versioning, multipart uploads, conditional requests, errors, and a zone lost in the
//! middle of reads and writes.

mod common;

use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier,
    VersioningConfiguration,
};
use aws_sdk_s3::Client;
use common::{Options, TestCluster};

const MIB: usize = 1024 * 1024;

fn s3_client(edge: &str, access_key: &str, secret_key: &str) -> Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{edge}"))
        .force_path_style(true)
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "test"))
        .http_client(http)
        .build();
    Client::from_conf(config)
}

/// Deterministic bytes that differ at every offset (so a misplaced stripe is caught).
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn get_bytes(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {bucket}/{key}: {e:?}"));
    out.body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

async fn start() -> (TestCluster, Client) {
    let cluster = TestCluster::start(Options::default());
    cluster.wait_ready(Duration::from_secs(60)).await;
    let client = s3_client(&cluster.node(1).http, "test", "test");
    (cluster, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn buckets_objects_and_listings() {
    let _serial = common::serial().await;
    let (_cluster, s3) = start().await;

    s3.create_bucket()
        .bucket("photos")
        .send()
        .await
        .expect("create");
    let err = s3
        .create_bucket()
        .bucket("photos")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("BucketAlreadyOwnedByYou"));
    let err = s3
        .create_bucket()
        .bucket("Bad_Name")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidBucketName"));
    let listed = s3.list_buckets().send().await.expect("list buckets");
    let names: Vec<_> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, vec!["photos"]);

    // Sizes around the inline threshold and the 1 MiB stripe.
    for (i, len) in [
        0,
        1,
        16 * 1024,
        16 * 1024 + 1,
        MIB - 1,
        MIB,
        MIB + 1,
        3 * MIB + 7,
    ]
    .into_iter()
    .enumerate()
    {
        let data = pattern(len, i as u64);
        let key = format!("sizes/{len}");
        let put = s3
            .put_object()
            .bucket("photos")
            .key(&key)
            .content_type("application/x-test")
            .metadata("color", "blue")
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PUT {len}: {e:?}"));
        let md5 = format!("\"{}\"", md5_hex(&data));
        assert_eq!(put.e_tag(), Some(md5.as_str()), "ETag of {len} bytes");
        assert_eq!(get_bytes(&s3, "photos", &key).await, data, "{len} bytes");
        let head = s3
            .head_object()
            .bucket("photos")
            .key(&key)
            .send()
            .await
            .expect("head");
        assert_eq!(head.content_length(), Some(len as i64));
        assert_eq!(head.content_type(), Some("application/x-test"));
        assert_eq!(
            head.metadata()
                .and_then(|m| m.get("color"))
                .map(String::as_str),
            Some("blue")
        );
    }

    // Ranges, including across a stripe boundary and a suffix.
    let big = pattern(3 * MIB + 7, 7);
    let out = s3
        .get_object()
        .bucket("photos")
        .key(format!("sizes/{}", 3 * MIB + 7))
        .range(format!("bytes={}-{}", MIB - 10, MIB + 9))
        .send()
        .await
        .expect("range");
    assert_eq!(
        out.content_range(),
        Some(format!("bytes {}-{}/{}", MIB - 10, MIB + 9, big.len()).as_str())
    );
    let got = out.body.collect().await.unwrap().into_bytes();
    assert_eq!(&got[..], &big[MIB - 10..MIB + 10]);
    let err = s3
        .get_object()
        .bucket("photos")
        .key("sizes/1")
        .range("bytes=5-9")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidRange"));

    // Conditional reads and writes.
    let etag = s3
        .head_object()
        .bucket("photos")
        .key("sizes/1")
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_string();
    let err = s3
        .get_object()
        .bucket("photos")
        .key("sizes/1")
        .if_match("\"0000\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("PreconditionFailed"));
    let err = s3
        .get_object()
        .bucket("photos")
        .key("sizes/1")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(304));
    let err = s3
        .put_object()
        .bucket("photos")
        .key("sizes/1")
        .if_none_match("*")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("PreconditionFailed"));

    // Listing with a delimiter and pagination over many keys.
    for i in 0..30 {
        s3.put_object()
            .bucket("photos")
            .key(format!("list/{}/{i:03}", i % 3))
            .body(ByteStream::from_static(b"."))
            .send()
            .await
            .unwrap();
    }
    let out = s3
        .list_objects_v2()
        .bucket("photos")
        .prefix("list/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<_> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, vec!["list/0/", "list/1/", "list/2/"]);
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let out = s3
            .list_objects_v2()
            .bucket("photos")
            .prefix("list/")
            .max_keys(7)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        seen.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        match out.next_continuation_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    let mut expected: Vec<_> = (0..30).map(|i| format!("list/{}/{i:03}", i % 3)).collect();
    expected.sort();
    assert_eq!(seen, expected);

    // DeleteObjects, then the bucket can be deleted only once empty.
    let err = s3
        .delete_bucket()
        .bucket("photos")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("BucketNotEmpty"));
    let mut keys = expected.clone();
    keys.extend(
        [
            0,
            1,
            16 * 1024,
            16 * 1024 + 1,
            MIB - 1,
            MIB,
            MIB + 1,
            3 * MIB + 7,
        ]
        .iter()
        .map(|l| format!("sizes/{l}")),
    );
    let objects: Vec<_> = keys
        .iter()
        .map(|k| ObjectIdentifier::builder().key(k).build().unwrap())
        .collect();
    let out = s3
        .delete_objects()
        .bucket("photos")
        .delete(
            Delete::builder()
                .set_objects(Some(objects))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("delete objects");
    assert_eq!(out.deleted().len(), keys.len());
    s3.delete_bucket()
        .bucket("photos")
        .send()
        .await
        .expect("delete bucket");
    let err = s3.head_bucket().bucket("photos").send().await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn versioning_and_multipart() {
    let _serial = common::serial().await;
    let (_cluster, s3) = start().await;
    s3.create_bucket().bucket("docs").send().await.unwrap();
    s3.put_bucket_versioning()
        .bucket("docs")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let v1 = s3
        .put_object()
        .bucket("docs")
        .key("a")
        .body(ByteStream::from_static(b"one"))
        .send()
        .await
        .unwrap();
    let v2 = s3
        .put_object()
        .bucket("docs")
        .key("a")
        .body(ByteStream::from_static(b"two"))
        .send()
        .await
        .unwrap();
    let (v1, v2) = (
        v1.version_id().unwrap().to_string(),
        v2.version_id().unwrap().to_string(),
    );
    assert_ne!(v1, v2);
    assert_eq!(get_bytes(&s3, "docs", "a").await, b"two");
    let old = s3
        .get_object()
        .bucket("docs")
        .key("a")
        .version_id(&v1)
        .send()
        .await
        .unwrap();
    assert_eq!(&old.body.collect().await.unwrap().into_bytes()[..], b"one");
    let del = s3
        .delete_object()
        .bucket("docs")
        .key("a")
        .send()
        .await
        .unwrap();
    assert_eq!(del.delete_marker(), Some(true));
    let err = s3
        .get_object()
        .bucket("docs")
        .key("a")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("NoSuchKey"));
    let versions = s3
        .list_object_versions()
        .bucket("docs")
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 2);
    assert_eq!(versions.delete_markers().len(), 1);
    // Deleting the marker brings the object back.
    let marker = del.version_id().unwrap();
    s3.delete_object()
        .bucket("docs")
        .key("a")
        .version_id(marker)
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&s3, "docs", "a").await, b"two");

    // Multipart: 3 parts (5 MiB, 5 MiB, 1 MiB + 3), completed with the -N ETag.
    let create = s3
        .create_multipart_upload()
        .bucket("docs")
        .key("big")
        .send()
        .await
        .unwrap();
    let upload_id = create.upload_id().unwrap();
    let sizes = [5 * MIB, 5 * MIB, MIB + 3];
    let mut parts = Vec::new();
    let mut whole = Vec::new();
    for (i, len) in sizes.iter().enumerate() {
        let data = pattern(*len, 100 + i as u64);
        whole.extend_from_slice(&data);
        let out = s3
            .upload_part()
            .bucket("docs")
            .key("big")
            .upload_id(upload_id)
            .part_number(i as i32 + 1)
            .body(ByteStream::from(data))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(i as i32 + 1)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    let listed = s3
        .list_parts()
        .bucket("docs")
        .key("big")
        .upload_id(upload_id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.parts().len(), 3);
    // A wrong ETag is refused.
    let mut wrong = parts.clone();
    wrong[1] = CompletedPart::builder()
        .part_number(2)
        .e_tag("\"00000000000000000000000000000000\"")
        .build();
    let err = s3
        .complete_multipart_upload()
        .bucket("docs")
        .key("big")
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(wrong))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidPart"));
    let done = s3
        .complete_multipart_upload()
        .bucket("docs")
        .key("big")
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        done.e_tag().unwrap().ends_with("-3\""),
        "{:?}",
        done.e_tag()
    );
    assert_eq!(get_bytes(&s3, "docs", "big").await, whole);

    // A part under 5 MiB that is not the last one is refused at completion.
    let create = s3
        .create_multipart_upload()
        .bucket("docs")
        .key("small")
        .send()
        .await
        .unwrap();
    let upload_id = create.upload_id().unwrap();
    let mut parts = Vec::new();
    for n in 1..=2 {
        let out = s3
            .upload_part()
            .bucket("docs")
            .key("small")
            .upload_id(upload_id)
            .part_number(n)
            .body(ByteStream::from(pattern(1024, n as u64)))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    let err = s3
        .complete_multipart_upload()
        .bucket("docs")
        .key("small")
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("EntityTooSmall"));
    s3.abort_multipart_upload()
        .bucket("docs")
        .key("small")
        .upload_id(upload_id)
        .send()
        .await
        .unwrap();
    let err = s3
        .list_parts()
        .bucket("docs")
        .key("small")
        .upload_id(upload_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("NoSuchUpload"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signatures_are_checked() {
    let _serial = common::serial().await;
    let (cluster, _) = start().await;
    let wrong = s3_client(&cluster.node(2).http, "test", "not-the-secret");
    let err = wrong.list_buckets().send().await.unwrap_err();
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"));
    let unknown = s3_client(&cluster.node(2).http, "nobody", "x");
    let err = unknown.list_buckets().send().await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidAccessKeyId"));
    // An unsigned request is refused.
    let status = reqwest_free_get(&cluster.node(3).http, "/").await;
    assert_eq!(status, 403);
}

/// A bare HTTP/1.1 GET (no signature), returning the status code.
async fn reqwest_free_get(addr: &str, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_zone_down_during_put_and_get() {
    let _serial = common::serial().await;
    let (mut cluster, s3) = start().await;
    s3.create_bucket().bucket("zones").send().await.unwrap();
    let before = pattern(2 * MIB + 5, 1);
    s3.put_object()
        .bucket("zones")
        .key("before")
        .body(ByteStream::from(before.clone()))
        .send()
        .await
        .unwrap();
    // Zone az-c holds nodes 3 and 6.
    cluster.kill(3);
    cluster.kill(6);
    let client = s3_client(&cluster.node(1).http, "test", "test");
    assert_eq!(
        get_bytes(&client, "zones", "before").await,
        before,
        "read with a zone down"
    );
    let during = pattern(2 * MIB + 9, 2);
    client
        .put_object()
        .bucket("zones")
        .key("during")
        .body(ByteStream::from(during.clone()))
        .send()
        .await
        .expect("write with a zone down");
    assert_eq!(get_bytes(&client, "zones", "during").await, during);
    cluster.start_node(3);
    cluster.start_node(6);
    cluster.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(
        get_bytes(&client, "zones", "during").await,
        during,
        "after the zone is back"
    );
}
