//! The SQS API (issue 5) through the official AWS SDK for Rust, which speaks AWS JSON 1.0,
//! against a real 6-node, 3-zone cluster: queues and their URLs, listing and deletion,
//! attributes and tags, messages with AWS's exact checksums and attribute selection
//! (visibility, delays, long polling and purge are in `sqs_delivery.rs`).
//!
//! These tests are the specification: each asserts what real AWS SQS does (error codes as
//! the Rust SDK reports them, i.e. the legacy code of the `x-amzn-query-error` header).
//! Limits, validation and batches are in `sqs_limits.rs`, FIFO and dead-letter queues in
//! `sqs_fifo.rs`, a zone outage in `sqs_faults.rs`, raw HTTP in `sqs_bad_input.rs`.

mod common;
mod sqs_common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    MessageSystemAttributeName as Sys, MessageSystemAttributeNameForSends,
    MessageSystemAttributeValue, QueueAttributeName as Attr,
};
use aws_sdk_sqs::Client;
use serde_json::json;
use sqs_common::*;

fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    items.into_iter().map(String::from).collect()
}

async fn tags_of(sqs: &Client, url: &str) -> BTreeMap<String, String> {
    sqs.list_queue_tags()
        .queue_url(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListQueueTags {url}: {}", DisplayErrorContext(&e)))
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn tag_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn set_attributes(sqs: &Client, url: &str, attrs: &[(Attr, &str)]) {
    let mut req = sqs.set_queue_attributes().queue_url(url);
    for (k, v) in attrs {
        req = req.attributes(k.clone(), *v);
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("SetQueueAttributes {attrs:?}: {}", DisplayErrorContext(&e)));
}

async fn list_urls(sqs: &Client, prefix: Option<&str>) -> BTreeSet<String> {
    let out = sqs
        .list_queues()
        .set_queue_name_prefix(prefix.map(String::from))
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListQueues {prefix:?}: {}", DisplayErrorContext(&e)));
    assert_eq!(out.next_token(), None, "no MaxResults, so no NextToken");
    out.queue_urls().iter().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queues_are_created_found_listed_and_deleted() {
    let _serial = common::serial().await;
    let (cluster, sqs) = start().await;
    let edge1 = cluster.node(1).http.clone();
    let edge2 = cluster.node(2).http.clone();

    // CreateQueue answers the queue's URL, naming the host that was called. The same name
    // with identical attributes is the same queue; with a different value, an error.
    let url = create_queue(&sqs, "orders", &[(Attr::VisibilityTimeout, "45")]).await;
    assert_eq!(url, queue_url(&edge1, "orders"));
    let again = create_queue(&sqs, "orders", &[(Attr::VisibilityTimeout, "45")]).await;
    assert_eq!(
        again, url,
        "CreateQueue with identical attributes is idempotent"
    );
    let err = expect_code(
        "CreateQueue with a different VisibilityTimeout",
        sqs.create_queue()
            .queue_name("orders")
            .attributes(Attr::VisibilityTimeout, "46")
            .send()
            .await,
        "QueueAlreadyExists",
    );
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_queue_name_exists()),
        "typed QueueNameExists: {err:?}"
    );

    // Names: 1 to 80 alphanumerics, hyphens and underscores; FIFO queues add ".fifo".
    let longest = "a".repeat(80);
    assert_eq!(
        create_queue(&sqs, &longest, &[]).await,
        queue_url(&edge1, &longest)
    );
    create_queue(&sqs, "Under_score-and-hyphen-09", &[]).await;
    for bad in [
        "has space".to_string(),
        "semi;colon".to_string(),
        "dots.inside".to_string(),
        "slash/name".to_string(),
        "a".repeat(81),
    ] {
        expect_code(
            &format!("CreateQueue {bad:?}"),
            sqs.create_queue().queue_name(&bad).send().await,
            "InvalidParameterValue",
        );
    }
    expect_code(
        "FifoQueue=true without the .fifo suffix",
        sqs.create_queue()
            .queue_name("jobs")
            .attributes(Attr::FifoQueue, "true")
            .send()
            .await,
        "InvalidParameterValue",
    );
    expect_code(
        "a .fifo name for a standard queue",
        sqs.create_queue().queue_name("jobs.fifo").send().await,
        "InvalidParameterValue",
    );
    let jobs = create_queue(&sqs, "jobs.fifo", &[(Attr::FifoQueue, "true")]).await;
    assert_eq!(jobs, queue_url(&edge1, "jobs.fifo"));
    let fifo80 = format!("{}.fifo", "f".repeat(75));
    create_queue(&sqs, &fifo80, &[(Attr::FifoQueue, "true")]).await;
    expect_code(
        "an 81-character FIFO name",
        sqs.create_queue()
            .queue_name(format!("{}.fifo", "f".repeat(76)))
            .attributes(Attr::FifoQueue, "true")
            .send()
            .await,
        "InvalidParameterValue",
    );

    // GetQueueUrl, with and without the owner account, and through another node (whose
    // host the URL then names).
    let got = sqs
        .get_queue_url()
        .queue_name("orders")
        .send()
        .await
        .expect("GetQueueUrl");
    assert_eq!(got.queue_url(), Some(url.as_str()));
    let got = sqs
        .get_queue_url()
        .queue_name("orders")
        .queue_owner_aws_account_id(ACCOUNT)
        .send()
        .await
        .expect("GetQueueUrl with the owner account");
    assert_eq!(got.queue_url(), Some(url.as_str()));
    let sqs2 = sqs_client(&edge2, "test", "test");
    let got = sqs2
        .get_queue_url()
        .queue_name("orders")
        .send()
        .await
        .expect("GetQueueUrl via node 2");
    assert_eq!(got.queue_url(), Some(queue_url(&edge2, "orders").as_str()));
    let err = expect_code(
        "GetQueueUrl of a missing queue",
        sqs.get_queue_url().queue_name("missing").send().await,
        NON_EXISTENT_QUEUE,
    );
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_queue_does_not_exist()),
        "typed QueueDoesNotExist: {err:?}"
    );
    expect_code(
        "GetQueueUrl with the wrong case",
        sqs.get_queue_url().queue_name("ORDERS").send().await,
        NON_EXISTENT_QUEUE,
    );

    // A request is routed by its queue URL's path, whatever host the URL names.
    send(&sqs2, &url, "via node 2 with node 1's URL").await;
    let sqs3 = sqs_client(&cluster.node(3).http, "test", "test");
    send(
        &sqs3,
        &format!("http://localhost:4566/{ACCOUNT}/orders"),
        "via node 3 with a foreign host",
    )
    .await;
    let got = receive_n(&sqs, &url, 2, Duration::from_secs(20)).await;
    assert_eq!(
        got.iter()
            .map(|m| body(m).to_string())
            .collect::<BTreeSet<_>>(),
        strings([
            "via node 2 with node 1's URL",
            "via node 3 with a foreign host"
        ])
    );

    // ListQueues: by prefix (case-sensitive), all at once, or in pages.
    for i in 0..5 {
        create_queue(&sqs, &format!("page-{i}"), &[]).await;
    }
    let pages: BTreeSet<String> = (0..5)
        .map(|i| queue_url(&edge1, &format!("page-{i}")))
        .collect();
    assert_eq!(list_urls(&sqs, Some("page-")).await, pages);
    assert!(list_urls(&sqs, Some("PAGE-")).await.is_empty());
    assert!(list_urls(&sqs, Some("no-such-prefix")).await.is_empty());
    let everything = list_urls(&sqs, None).await;
    for u in pages.iter().chain([&url, &jobs]) {
        assert!(everything.contains(u), "{u} missing from {everything:?}");
    }
    let via2 = sqs2
        .list_queues()
        .send()
        .await
        .expect("ListQueues via node 2");
    assert!(
        via2.queue_urls()
            .iter()
            .all(|u| u.starts_with(&format!("http://{edge2}/{ACCOUNT}/"))),
        "URLs name the host that was called: {:?}",
        via2.queue_urls()
    );
    let mut seen = BTreeSet::new();
    let mut token: Option<String> = None;
    let mut calls = 0;
    loop {
        let page = sqs
            .list_queues()
            .queue_name_prefix("page-")
            .max_results(2)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("ListQueues page");
        calls += 1;
        assert!(page.queue_urls().len() <= 2, "{:?}", page.queue_urls());
        for u in page.queue_urls() {
            assert!(seen.insert(u.clone()), "{u} listed twice");
        }
        match page.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
        assert!(calls < 10, "pagination does not end");
    }
    assert_eq!(seen, pages);
    assert!(calls >= 3, "5 queues in pages of 2 take at least 3 calls");

    // DeleteQueue: the queue, its URL and its name are gone.
    let doomed = queue_url(&edge1, "page-4");
    sqs.delete_queue()
        .queue_url(&doomed)
        .send()
        .await
        .expect("DeleteQueue");
    let s = &sqs;
    eventually(
        "page-4 to be gone",
        Duration::from_secs(10),
        || async move {
            match s.get_queue_url().queue_name("page-4").send().await {
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_queue_does_not_exist()) =>
                {
                    Some(())
                }
                _ => None,
            }
        },
    )
    .await;
    let err = expect_code(
        "SendMessage to a deleted queue",
        sqs.send_message()
            .queue_url(&doomed)
            .message_body("x")
            .send()
            .await,
        NON_EXISTENT_QUEUE,
    );
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_queue_does_not_exist()));
    assert_eq!(list_urls(&sqs, Some("page-")).await.len(), 4);
    expect_code(
        "DeleteQueue of a missing queue",
        sqs.delete_queue().queue_url(&doomed).send().await,
        NON_EXISTENT_QUEUE,
    );
    expect_code(
        "ReceiveMessage from a missing queue",
        sqs.receive_message()
            .queue_url(queue_url(&edge1, "never-was"))
            .send()
            .await,
        NON_EXISTENT_QUEUE,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_attributes_and_tags() {
    let _serial = common::serial().await;
    let (_cluster, sqs) = start().await;

    let before_s = now_ms() / 1000;
    let url = sqs
        .create_queue()
        .queue_name("attrs")
        .tags("team", "storage")
        .tags("env", "")
        .send()
        .await
        .expect("CreateQueue with tags")
        .queue_url()
        .unwrap()
        .to_string();
    let after_s = now_ms() / 1000 + 1;

    // Every attribute of a new standard queue, with AWS's defaults.
    let a = queue_attributes(&sqs, &url).await;
    for (k, v) in [
        ("VisibilityTimeout", "30"),
        ("MaximumMessageSize", "1048576"),
        ("MessageRetentionPeriod", "345600"),
        ("DelaySeconds", "0"),
        ("ReceiveMessageWaitTimeSeconds", "0"),
        ("ApproximateNumberOfMessages", "0"),
        ("ApproximateNumberOfMessagesNotVisible", "0"),
        ("ApproximateNumberOfMessagesDelayed", "0"),
    ] {
        assert_eq!(a.get(k).map(String::as_str), Some(v), "{k} in {a:?}");
    }
    assert_eq!(a.get("QueueArn"), Some(&queue_arn("attrs")));
    let created: u64 = a["CreatedTimestamp"]
        .parse()
        .expect("seconds since the epoch");
    assert!(
        (before_s.saturating_sub(2)..=after_s + 2).contains(&created),
        "CreatedTimestamp {created} not in [{before_s}, {after_s}]"
    );
    let modified: u64 = a["LastModifiedTimestamp"].parse().expect("seconds");
    assert!(modified >= created, "{a:?}");
    for k in [
        "FifoQueue",
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "FifoThroughputLimit",
        "RedrivePolicy",
    ] {
        assert!(!a.contains_key(k), "a standard queue has no {k}: {a:?}");
    }

    // Only the attributes asked for.
    let some = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(Attr::QueueArn)
        .attribute_names(Attr::VisibilityTimeout)
        .send()
        .await
        .expect("GetQueueAttributes QueueArn, VisibilityTimeout");
    let keys: BTreeSet<String> = some
        .attributes()
        .expect("attributes")
        .keys()
        .map(|k| k.as_str().to_string())
        .collect();
    assert_eq!(keys, strings(["QueueArn", "VisibilityTimeout"]));

    // SetQueueAttributes, including both ends of every range.
    for set in [
        &[
            (Attr::VisibilityTimeout, "60"),
            (Attr::DelaySeconds, "5"),
            (Attr::MessageRetentionPeriod, "120"),
            (Attr::MaximumMessageSize, "2048"),
            (Attr::ReceiveMessageWaitTimeSeconds, "3"),
        ],
        &[
            (Attr::VisibilityTimeout, "0"),
            (Attr::DelaySeconds, "900"),
            (Attr::MessageRetentionPeriod, "60"),
            (Attr::MaximumMessageSize, "1024"),
            (Attr::ReceiveMessageWaitTimeSeconds, "20"),
        ],
        &[
            (Attr::VisibilityTimeout, "43200"),
            (Attr::DelaySeconds, "0"),
            (Attr::MessageRetentionPeriod, "1209600"),
            (Attr::MaximumMessageSize, "1048576"),
            (Attr::ReceiveMessageWaitTimeSeconds, "0"),
        ],
    ] {
        set_attributes(&sqs, &url, set).await;
        let a = queue_attributes(&sqs, &url).await;
        for (k, v) in set {
            assert_eq!(a.get(k.as_str()).map(String::as_str), Some(*v), "{k:?}");
        }
        let modified: u64 = a["LastModifiedTimestamp"].parse().unwrap();
        assert!(modified >= created);
    }

    // Out-of-range or malformed values are refused and change nothing.
    for (k, v) in [
        (Attr::VisibilityTimeout, "43201"),
        (Attr::VisibilityTimeout, "-1"),
        (Attr::VisibilityTimeout, "soon"),
        (Attr::DelaySeconds, "901"),
        (Attr::MessageRetentionPeriod, "59"),
        (Attr::MessageRetentionPeriod, "1209601"),
        (Attr::MaximumMessageSize, "1023"),
        (Attr::MaximumMessageSize, "1048577"),
        (Attr::ReceiveMessageWaitTimeSeconds, "21"),
    ] {
        let err = expect_code(
            &format!("SetQueueAttributes {k:?}={v}"),
            sqs.set_queue_attributes()
                .queue_url(&url)
                .attributes(k.clone(), v)
                .send()
                .await,
            "InvalidAttributeValue",
        );
        assert!(err
            .as_service_error()
            .is_some_and(|e| e.is_invalid_attribute_value()));
    }
    assert_eq!(
        queue_attributes(&sqs, &url).await["VisibilityTimeout"],
        "43200"
    );
    let err = expect_code(
        "CreateQueue with VisibilityTimeout 43201",
        sqs.create_queue()
            .queue_name("bad-attrs")
            .attributes(Attr::VisibilityTimeout, "43201")
            .send()
            .await,
        "InvalidAttributeValue",
    );
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_invalid_attribute_value()));
    expect_code(
        "the refused queue was not created",
        sqs.get_queue_url().queue_name("bad-attrs").send().await,
        NON_EXISTENT_QUEUE,
    );

    // Unknown attribute names, and FIFO-only attributes on a standard queue.
    let colour = Attr::from("Colour");
    let err = expect_code(
        "SetQueueAttributes Colour",
        sqs.set_queue_attributes()
            .queue_url(&url)
            .attributes(colour.clone(), "blue")
            .send()
            .await,
        "InvalidAttributeName",
    );
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_invalid_attribute_name()));
    let err = expect_code(
        "GetQueueAttributes Colour",
        sqs.get_queue_attributes()
            .queue_url(&url)
            .attribute_names(colour.clone())
            .send()
            .await,
        "InvalidAttributeName",
    );
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_invalid_attribute_name()));
    let err = expect_code(
        "CreateQueue with Colour",
        sqs.create_queue()
            .queue_name("colourful")
            .attributes(colour, "blue")
            .send()
            .await,
        "InvalidAttributeName",
    );
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_invalid_attribute_name()));
    expect_code(
        "SetQueueAttributes FifoQueue on a standard queue",
        sqs.set_queue_attributes()
            .queue_url(&url)
            .attributes(Attr::FifoQueue, "true")
            .send()
            .await,
        "InvalidAttributeName",
    );

    // The Approximate* counts follow sends, delays, receives and deletes.
    let counted = create_queue(&sqs, "counts", &[(Attr::VisibilityTimeout, "300")]).await;
    for i in 0..3 {
        send(&sqs, &counted, &format!("m{i}")).await;
    }
    sqs.send_message()
        .queue_url(&counted)
        .message_body("later")
        .delay_seconds(600)
        .send()
        .await
        .expect("delayed send");
    wait_counts(&sqs, &counted, (3, 0, 1)).await;
    let got = receive_n(&sqs, &counted, 2, Duration::from_secs(10)).await;
    wait_counts(&sqs, &counted, (1, 2, 1)).await;
    delete(&sqs, &counted, &got[0]).await;
    wait_counts(&sqs, &counted, (1, 1, 1)).await;

    // RedriveAllowPolicy and RedrivePolicy are JSON documents that read back as written.
    for policy in [
        json!({"redrivePermission": "byQueue", "sourceQueueArns": [queue_arn("counts")]}),
        json!({"redrivePermission": "denyAll"}),
        json!({"redrivePermission": "allowAll"}),
    ] {
        set_attributes(
            &sqs,
            &url,
            &[(Attr::RedriveAllowPolicy, &policy.to_string())],
        )
        .await;
        let got: serde_json::Value =
            serde_json::from_str(&queue_attributes(&sqs, &url).await["RedriveAllowPolicy"])
                .expect("RedriveAllowPolicy is JSON");
        assert_eq!(got, policy);
    }
    let redrive = json!({"deadLetterTargetArn": queue_arn("attrs"), "maxReceiveCount": 5});
    set_attributes(
        &sqs,
        &counted,
        &[(Attr::RedrivePolicy, &redrive.to_string())],
    )
    .await;
    let got: serde_json::Value =
        serde_json::from_str(&queue_attributes(&sqs, &counted).await["RedrivePolicy"])
            .expect("RedrivePolicy is JSON");
    assert_eq!(got["deadLetterTargetArn"], json!(queue_arn("attrs")));
    assert!(
        got["maxReceiveCount"] == json!(5) || got["maxReceiveCount"] == json!("5"),
        "{got}"
    );
    expect_code(
        "a RedrivePolicy naming a missing queue",
        sqs.set_queue_attributes()
            .queue_url(&counted)
            .attributes(
                Attr::RedrivePolicy,
                json!({"deadLetterTargetArn": queue_arn("nowhere"), "maxReceiveCount": 5})
                    .to_string(),
            )
            .send()
            .await,
        "InvalidParameterValue",
    );

    // FIFO attributes: defaults, changes, and values outside their enumerations.
    let fifo = create_queue(&sqs, "attrs.fifo", &[(Attr::FifoQueue, "true")]).await;
    let a = queue_attributes(&sqs, &fifo).await;
    for (k, v) in [
        ("FifoQueue", "true"),
        ("ContentBasedDeduplication", "false"),
        ("DeduplicationScope", "queue"),
        ("FifoThroughputLimit", "perQueue"),
        ("VisibilityTimeout", "30"),
    ] {
        assert_eq!(a.get(k).map(String::as_str), Some(v), "{k} in {a:?}");
    }
    assert_eq!(a.get("QueueArn"), Some(&queue_arn("attrs.fifo")));
    let high_throughput = [
        (Attr::ContentBasedDeduplication, "true"),
        (Attr::DeduplicationScope, "messageGroup"),
        (Attr::FifoThroughputLimit, "perMessageGroupId"),
    ];
    set_attributes(&sqs, &fifo, &high_throughput).await;
    let a = queue_attributes(&sqs, &fifo).await;
    for (k, v) in &high_throughput {
        assert_eq!(a.get(k.as_str()).map(String::as_str), Some(*v));
    }
    for (k, v) in [
        (Attr::DeduplicationScope, "everywhere"),
        (Attr::FifoThroughputLimit, "perPerson"),
        (Attr::ContentBasedDeduplication, "maybe"),
    ] {
        expect_code(
            &format!("SetQueueAttributes {k:?}={v}"),
            sqs.set_queue_attributes()
                .queue_url(&fifo)
                .attributes(k.clone(), v)
                .send()
                .await,
            "InvalidAttributeValue",
        );
    }

    // Tags: set at creation (an empty value is a value), added, overwritten, removed.
    assert_eq!(
        tags_of(&sqs, &url).await,
        tag_map(&[("env", ""), ("team", "storage")])
    );
    sqs.tag_queue()
        .queue_url(&url)
        .tags("team", "queues")
        .tags("tier", "1")
        .send()
        .await
        .expect("TagQueue");
    assert_eq!(
        tags_of(&sqs, &url).await,
        tag_map(&[("env", ""), ("team", "queues"), ("tier", "1")])
    );
    sqs.untag_queue()
        .queue_url(&url)
        .tag_keys("env")
        .tag_keys("tier")
        .send()
        .await
        .expect("UntagQueue");
    assert_eq!(tags_of(&sqs, &url).await, tag_map(&[("team", "queues")]));
    sqs.untag_queue()
        .queue_url(&url)
        .tag_keys("team")
        .send()
        .await
        .expect("UntagQueue");
    assert!(tags_of(&sqs, &url).await.is_empty());
    expect_code(
        "TagQueue on a missing queue",
        sqs.tag_queue()
            .queue_url(format!("{}-gone", url))
            .tags("a", "b")
            .send()
            .await,
        NON_EXISTENT_QUEUE,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_round_trip_with_exact_checksums_and_attributes() {
    let _serial = common::serial().await;
    let (_cluster, sqs) = start().await;
    let url = create_queue(&sqs, "inbox", &[]).await;
    let t0 = now_ms();

    // A plain body: its MD5 (AWS's recorded value for "msg"), no attribute checksum.
    let plain = sqs
        .send_message()
        .queue_url(&url)
        .message_body("msg")
        .send()
        .await
        .expect("SendMessage");
    assert_eq!(
        plain.md5_of_message_body(),
        Some("6e2baaf3b97dbeef01c0043275f9a0e7")
    );
    assert_eq!(plain.md5_of_message_attributes(), None);
    assert_eq!(plain.sequence_number(), None, "standard queues have none");
    let plain_id = plain.message_id().expect("message id").to_string();
    assert!(
        plain_id.len() == 36 && plain_id.matches('-').count() == 4,
        "MessageId is a UUID: {plain_id}"
    );

    // Every kind of message attribute, including custom types, with a Unicode body.
    let attrs: BTreeMap<String, AttrValue> = [
        ("name", AttrValue::string("String", "Ada")),
        ("count", AttrValue::string("Number", "42")),
        ("ratio", AttrValue::string("Number.float", "0.25")),
        ("colour", AttrValue::string("String.custom", "teal")),
        ("blob", AttrValue::binary("Binary", &[0, 1, 2, 254, 255])),
        (
            "photo",
            AttrValue::binary("Binary.png", b"\x89PNG\r\n\x1a\n"),
        ),
        ("Help.Me", AttrValue::string("String", "Me")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let unicode = "héllo ✓ 🚀 \"quoted\" <xml/> \n\ttabbed";
    let mut req = sqs.send_message().queue_url(&url).message_body(unicode);
    for (k, v) in &attrs {
        req = req.message_attributes(k, v.to_sdk());
    }
    let rich = req.send().await.expect("SendMessage with attributes");
    assert_eq!(
        rich.md5_of_message_body(),
        Some(md5_hex(unicode.as_bytes()).as_str())
    );
    assert_eq!(
        rich.md5_of_message_attributes(),
        Some(md5_of_attributes(&attrs).as_str())
    );
    let rich_id = rich.message_id().unwrap().to_string();

    // A message system attribute (the X-Ray trace header) and its own checksum.
    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let traced = sqs
        .send_message()
        .queue_url(&url)
        .message_body("traced")
        .message_system_attributes(
            MessageSystemAttributeNameForSends::AwsTraceHeader,
            MessageSystemAttributeValue::builder()
                .data_type("String")
                .string_value(trace)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("SendMessage with AWSTraceHeader");
    let system: BTreeMap<String, AttrValue> = [(
        "AWSTraceHeader".to_string(),
        AttrValue::string("String", trace),
    )]
    .into();
    assert_eq!(
        traced.md5_of_message_system_attributes(),
        Some(md5_of_attributes(&system).as_str())
    );
    let traced_id = traced.message_id().unwrap().to_string();
    let t1 = now_ms();

    // Received with every attribute: bodies, checksums, attributes and system attributes.
    let got = receive_n(&sqs, &url, 3, Duration::from_secs(20)).await;
    let ids: BTreeSet<String> = got
        .iter()
        .map(|m| m.message_id().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        strings([plain_id.as_str(), rich_id.as_str(), traced_id.as_str()])
    );
    for m in &got {
        assert_eq!(m.md5_of_body(), Some(md5_hex(body(m).as_bytes()).as_str()));
        let sent: u64 = system_attr(m, Sys::SentTimestamp)
            .expect("SentTimestamp")
            .parse()
            .expect("milliseconds");
        assert!(
            sent + 1000 >= t0 && sent <= t1 + 1000,
            "SentTimestamp {sent} outside [{t0}, {t1}]"
        );
        let first: u64 = system_attr(m, Sys::ApproximateFirstReceiveTimestamp)
            .expect("ApproximateFirstReceiveTimestamp")
            .parse()
            .expect("milliseconds");
        assert!(first >= sent && first <= now_ms() + 1000, "{m:?}");
        assert_eq!(receive_count(m), 1);
        assert!(
            system_attr(m, Sys::SenderId).is_some_and(|s| !s.is_empty()),
            "SenderId: {m:?}"
        );
        for absent in [
            Sys::MessageGroupId,
            Sys::SequenceNumber,
            Sys::MessageDeduplicationId,
        ] {
            assert_eq!(system_attr(m, absent.clone()), None, "{absent:?} on {m:?}");
        }
        let id = m.message_id().unwrap();
        if id == rich_id {
            assert_eq!(body(m), unicode);
            assert_eq!(received_attrs(m), attrs);
            assert_eq!(
                m.md5_of_message_attributes(),
                Some(md5_of_attributes(&attrs).as_str())
            );
        } else {
            assert!(received_attrs(m).is_empty(), "{m:?}");
            assert_eq!(m.md5_of_message_attributes(), None);
        }
        if id == traced_id {
            assert_eq!(system_attr(m, Sys::AwsTraceHeader), Some(trace));
        } else {
            assert_eq!(system_attr(m, Sys::AwsTraceHeader), None);
        }
    }
    for m in &got {
        delete(&sqs, &url, m).await;
    }
    // Deleting again with the same receipt handle is not an error.
    sqs.delete_message()
        .queue_url(&url)
        .receipt_handle(handle(&got[0]))
        .send()
        .await
        .expect("a second DeleteMessage with the same handle succeeds");
    assert_empty(&sqs, &url, 1).await;

    // MessageAttributeNames selects attributes, and MD5OfMessageAttributes covers exactly
    // the ones returned. The attributes and the selections are those of a run recorded
    // against AWS (their MD5s are checked against AWS's in sqs_limits.rs's unit test).
    let sel = create_queue(&sqs, "selection", &[]).await;
    let recorded: BTreeMap<String, AttrValue> =
        [("General", "Kenobi"), ("Hello", "There"), ("Help.Me", "Me")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), AttrValue::string("String", v)))
            .collect();
    let mut req = sqs.send_message().queue_url(&sel).message_body("msg");
    for (k, v) in &recorded {
        req = req.message_attributes(k, v.to_sdk());
    }
    req.send().await.expect("SendMessage");
    let all = ["General", "Hello", "Help.Me"];
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["All"], all.to_vec()),
        (vec![".*"], all.to_vec()),
        (vec!["Hello", "General"], vec!["General", "Hello"]),
        (vec!["Foo", "Hello"], vec!["Hello"]),
        (vec!["Hel.*"], vec!["Hello", "Help.Me"]),
        (vec!["Foo", "Help"], vec![]),
        (vec![], vec![]),
    ];
    for (names, expected) in cases {
        let mut req = sqs.receive_message().queue_url(&sel).wait_time_seconds(5);
        for n in &names {
            req = req.message_attribute_names(*n);
        }
        let out = req.send().await.expect("ReceiveMessage");
        assert_eq!(out.messages().len(), 1, "selection {names:?}");
        let m = &out.messages()[0];
        let got = received_attrs(m);
        assert_eq!(
            got.keys().map(String::as_str).collect::<Vec<_>>(),
            expected,
            "selection {names:?}"
        );
        if expected.is_empty() {
            assert_eq!(m.md5_of_message_attributes(), None, "selection {names:?}");
        } else {
            assert_eq!(
                m.md5_of_message_attributes(),
                Some(md5_of_attributes(&got).as_str()),
                "selection {names:?}"
            );
        }
        assert_eq!(m.md5_of_body(), Some("6e2baaf3b97dbeef01c0043275f9a0e7"));
        release(&sqs, &sel, m).await;
    }

    // MessageSystemAttributeNames (and the older AttributeNames) select system attributes.
    let sys_cases: Vec<(Vec<Sys>, Vec<&str>)> = vec![
        (vec![Sys::SenderId], vec!["SenderId"]),
        (
            vec![Sys::ApproximateReceiveCount, Sys::SentTimestamp],
            vec!["ApproximateReceiveCount", "SentTimestamp"],
        ),
        (vec![], vec![]),
    ];
    for (names, expected) in sys_cases {
        let mut req = sqs.receive_message().queue_url(&sel).wait_time_seconds(5);
        for n in &names {
            req = req.message_system_attribute_names(n.clone());
        }
        let out = req.send().await.expect("ReceiveMessage");
        assert_eq!(out.messages().len(), 1, "selection {names:?}");
        let m = &out.messages()[0];
        let got: BTreeSet<String> = m
            .attributes()
            .map(|a| a.keys().map(|k| k.as_str().to_string()).collect())
            .unwrap_or_default();
        assert_eq!(got, strings(expected), "selection {names:?}");
        release(&sqs, &sel, m).await;
    }
    #[allow(deprecated)]
    let legacy = sqs
        .receive_message()
        .queue_url(&sel)
        .wait_time_seconds(5)
        .attribute_names(Attr::All)
        .send()
        .await
        .expect("ReceiveMessage with AttributeNames=All");
    assert_eq!(legacy.messages().len(), 1);
    let m = &legacy.messages()[0];
    for k in [
        Sys::SentTimestamp,
        Sys::ApproximateReceiveCount,
        Sys::ApproximateFirstReceiveTimestamp,
        Sys::SenderId,
    ] {
        assert!(system_attr(m, k.clone()).is_some(), "{k:?} in {m:?}");
    }
    // It has now been received once per selection above.
    assert_eq!(receive_count(m), 11);
}
