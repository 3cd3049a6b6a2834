//! A write sent again under the same request id is applied once: the cluster returns the
//! first reply, so a client may retry a write whose outcome it did not learn (a timeout, a
//! connection reset by a proxy) without applying it twice.

mod common;

use std::time::Duration;

use common::*;
use stratus_proto::kv::{CasRequest, DeleteRequest, GetRequest, PutRequest};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_write_is_applied_once() {
    let _serial = serial().await;
    let cluster = TestCluster::start(Options::default());
    cluster.wait_ready(Duration::from_secs(60)).await;
    let client = cluster.client();
    // Different nodes for the first send and the retry: dedup lives in the group, not the node.
    let mut first = client.endpoint(0);
    let mut retry = client.endpoint(3);
    let id = 0x5eed_u128.to_be_bytes().to_vec();

    let put = |value: &str| PutRequest {
        key: b"k".to_vec(),
        value: value.as_bytes().to_vec(),
        request_id: id.clone(),
    };
    let reply = first.put(put("one")).await.unwrap().into_inner();
    assert_eq!(
        reply.request_id, id,
        "the id is echoed: this server deduplicates by it"
    );
    let v1 = reply.version;
    // The "retry" carries another value to prove the second send is not applied at all.
    let v2 = retry.put(put("two")).await.unwrap().into_inner().version;
    assert_eq!(v1, v2, "the retry returns the first reply");
    let got = first
        .get(GetRequest { key: b"k".to_vec() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((got.value.as_slice(), got.version), (b"one".as_slice(), v1));

    // A CAS retried after it succeeded reports its success again instead of failing on
    // the value it wrote itself.
    let cas_id = 0xca5_u128.to_be_bytes().to_vec();
    let cas = || CasRequest {
        key: b"k".to_vec(),
        expected: Some(b"one".to_vec()),
        new_value: Some(b"three".to_vec()),
        request_id: cas_id.clone(),
    };
    assert!(
        first
            .compare_and_set(cas())
            .await
            .unwrap()
            .into_inner()
            .succeeded
    );
    assert!(
        retry
            .compare_and_set(cas())
            .await
            .unwrap()
            .into_inner()
            .succeeded
    );
    // A fresh id is a new operation: it fails on the current value.
    let mut fresh = cas();
    fresh.request_id = Vec::new();
    assert!(
        !first
            .compare_and_set(fresh)
            .await
            .unwrap()
            .into_inner()
            .succeeded
    );

    let del = || DeleteRequest {
        key: b"k".to_vec(),
        request_id: 0xde1_u128.to_be_bytes().to_vec(),
    };
    assert!(first.delete(del()).await.unwrap().into_inner().existed);
    assert!(retry.delete(del()).await.unwrap().into_inner().existed);

    // Ids are 16 bytes or nothing.
    let mut bad = put("x");
    bad.request_id = vec![1, 2, 3];
    let err = first.put(bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}
