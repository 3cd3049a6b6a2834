//! SQS limits and validation (issue 5): body size and characters, message attributes,
//! receive parameters, and the batch operations (SendMessageBatch, DeleteMessageBatch,
//! ChangeMessageVisibilityBatch) with their request-level errors and per-entry failures.
//! Through the AWS SDK for Rust against a real cluster; each assertion is AWS's behaviour.

mod common;
mod sqs_common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    QueueAttributeName as Attr, SendMessageBatchRequestEntry,
};
use sqs_common::*;

/// The checksum algorithm against values AWS returned in a recorded run (the same
/// attributes and selections `sqs_api.rs` sends): if this fails, the test's own MD5 is
/// wrong, not the server.
#[test]
fn md5_of_attributes_matches_values_recorded_from_aws() {
    let attrs = |pairs: &[(&str, &str)]| -> BTreeMap<String, AttrValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), AttrValue::string("String", v)))
            .collect()
    };
    let all = [("General", "Kenobi"), ("Hello", "There"), ("Help.Me", "Me")];
    assert_eq!(
        md5_of_attributes(&attrs(&all[..])),
        "4c360f3fdafd970e05fae2f149d997f5"
    );
    assert_eq!(
        md5_of_attributes(&attrs(&all[..2])),
        "fca026605781cb4126a1e9044df24232"
    );
    assert_eq!(
        md5_of_attributes(&attrs(&all[1..2])),
        "a311262e065454b75da111d535b8dacd"
    );
    assert_eq!(
        md5_of_attributes(&attrs(&all[1..])),
        "83fee93c1bcd8b9a5a923ffacdc636c7"
    );
    assert_eq!(
        md5_of_attributes(&attrs(&[("Foo", "Bar")])),
        "ae7155c6026991b6d54b11589678bf9c"
    );
    assert_eq!(md5_hex(b"msg"), "6e2baaf3b97dbeef01c0043275f9a0e7");
    assert_eq!(md5_hex(b"test"), "098f6bcd4621d373cade4e832627b4f6");
}

fn entry(id: &str, body: &str) -> SendMessageBatchRequestEntry {
    SendMessageBatchRequestEntry::builder()
        .id(id)
        .message_body(body)
        .build()
        .expect("batch entry")
}

fn delete_entry(id: &str, receipt_handle: &str) -> DeleteMessageBatchRequestEntry {
    DeleteMessageBatchRequestEntry::builder()
        .id(id)
        .receipt_handle(receipt_handle)
        .build()
        .expect("batch entry")
}

fn visibility_entry(
    id: &str,
    receipt_handle: &str,
    seconds: i32,
) -> ChangeMessageVisibilityBatchRequestEntry {
    ChangeMessageVisibilityBatchRequestEntry::builder()
        .id(id)
        .receipt_handle(receipt_handle)
        .visibility_timeout(seconds)
        .build()
        .expect("batch entry")
}

fn ascii_body(len: usize) -> String {
    (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn message_limits_and_invalid_input() {
    let _serial = common::serial().await;
    let (_cluster, sqs) = start().await;
    let url = create_queue(&sqs, "limits", &[]).await;

    // A body of exactly 1 MiB (1,048,576 bytes) is accepted and comes back intact.
    let max_body = ascii_body(MIB);
    let out = sqs
        .send_message()
        .queue_url(&url)
        .message_body(&max_body)
        .send()
        .await
        .expect("a 1 MiB body is accepted");
    assert_eq!(
        out.md5_of_message_body(),
        Some(md5_hex(max_body.as_bytes()).as_str())
    );
    let got = receive_n(&sqs, &url, 1, Duration::from_secs(20)).await;
    assert_eq!(got[0].body().map(str::len), Some(MIB));
    assert!(
        got[0].body() == Some(max_body.as_str()),
        "1 MiB body changed"
    );
    assert_eq!(
        got[0].md5_of_body(),
        Some(md5_hex(max_body.as_bytes()).as_str())
    );
    delete(&sqs, &url, &got[0]).await;

    // One byte more is refused; the limit counts bytes, not characters.
    let over = format!("{max_body}a");
    expect_code(
        "a body of 1 MiB + 1 byte",
        sqs.send_message()
            .queue_url(&url)
            .message_body(&over)
            .send()
            .await,
        "InvalidParameterValue",
    );
    let rockets = "🚀".repeat(MIB / 4 + 1);
    expect_code(
        "262,145 four-byte characters (1,048,580 bytes)",
        sqs.send_message()
            .queue_url(&url)
            .message_body(&rockets)
            .send()
            .await,
        "InvalidParameterValue",
    );

    // Characters outside XML's set are refused; its edges are accepted and kept.
    for bad in [
        "\u{0}",
        "nul \u{0} inside",
        "\u{1}",
        "\u{8}",
        "\u{B}",
        "\u{1F}",
        "\u{FFFE}",
        "\u{FFFF}",
    ] {
        let err = expect_code(
            &format!("body {bad:?}"),
            sqs.send_message()
                .queue_url(&url)
                .message_body(bad)
                .send()
                .await,
            "InvalidMessageContents",
        );
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_invalid_message_contents()),
            "typed InvalidMessageContents: {err:?}"
        );
    }
    let edges = "\t\n\r \u{D7FF}\u{E000}\u{FFFD}\u{10000}\u{10FFFF}";
    let out = sqs
        .send_message()
        .queue_url(&url)
        .message_body(edges)
        .send()
        .await
        .expect("the edges of the allowed set");
    assert_eq!(
        out.md5_of_message_body(),
        Some(md5_hex(edges.as_bytes()).as_str())
    );
    let got = receive_n(&sqs, &url, 1, Duration::from_secs(10)).await;
    assert_eq!(body(&got[0]), edges);
    delete(&sqs, &url, &got[0]).await;

    // Message attributes: at most 10, non-empty values, numbers that are numbers, and no
    // names reserved for AWS.
    let value = AttrValue::string("String", "v").to_sdk();
    let mut ten = sqs.send_message().queue_url(&url).message_body("ten");
    for i in 0..10 {
        ten = ten.message_attributes(format!("a{i}"), value.clone());
    }
    ten.send().await.expect("10 message attributes");
    let mut eleven = sqs.send_message().queue_url(&url).message_body("eleven");
    for i in 0..11 {
        eleven = eleven.message_attributes(format!("a{i}"), value.clone());
    }
    expect_code(
        "11 message attributes",
        eleven.send().await,
        "InvalidParameterValue",
    );
    for (what, name, attr) in [
        ("an empty String", "empty", AttrValue::string("String", "")),
        (
            "a Number that is not",
            "nan",
            AttrValue::string("Number", "abc"),
        ),
        ("a name starting AWS.", "AWS.reserved", value_of("v")),
        ("a name starting Amazon.", "Amazon.reserved", value_of("v")),
    ] {
        expect_code(
            &format!("message attribute with {what}"),
            sqs.send_message()
                .queue_url(&url)
                .message_body("x")
                .message_attributes(name, attr.to_sdk())
                .send()
                .await,
            "InvalidParameterValue",
        );
    }

    // A queue's MaximumMessageSize bounds body plus attributes.
    let small = create_queue(&sqs, "small", &[(Attr::MaximumMessageSize, "1024")]).await;
    send(&sqs, &small, &ascii_body(1024)).await;
    expect_code(
        "1025 bytes to a queue of 1024",
        sqs.send_message()
            .queue_url(&small)
            .message_body(ascii_body(1025))
            .send()
            .await,
        "InvalidParameterValue",
    );
    expect_code(
        "1000 bytes of body and 100 of attribute value to a queue of 1024",
        sqs.send_message()
            .queue_url(&small)
            .message_body(ascii_body(1000))
            .message_attributes("note", value_of(&ascii_body(100)).to_sdk())
            .send()
            .await,
        "InvalidParameterValue",
    );

    // ReceiveMessage: MaxNumberOfMessages is 1 to 10, and never exceeded.
    for bad in [0, 11] {
        expect_code(
            &format!("MaxNumberOfMessages {bad}"),
            sqs.receive_message()
                .queue_url(&url)
                .max_number_of_messages(bad)
                .send()
                .await,
            "InvalidParameterValue",
        );
    }
    expect_code(
        "a receive VisibilityTimeout of 43201",
        sqs.receive_message()
            .queue_url(&url)
            .visibility_timeout(43_201)
            .send()
            .await,
        "InvalidParameterValue",
    );
    let many = create_queue(&sqs, "many", &[]).await;
    for i in 0..15 {
        send(&sqs, &many, &format!("m{i}")).await;
    }
    let mut bodies = BTreeSet::new();
    let one = receive(&sqs, &many, 1, 5).await;
    assert_eq!(one.len(), 1, "MaxNumberOfMessages 1");
    bodies.insert(body(&one[0]).to_string());
    while bodies.len() < 15 {
        let got = receive(&sqs, &many, 10, 2).await;
        assert!(!got.is_empty(), "messages missing: have {bodies:?}");
        assert!(
            got.len() <= 10,
            "more than MaxNumberOfMessages: {}",
            got.len()
        );
        for m in &got {
            assert!(bodies.insert(body(m).to_string()), "{} twice", body(m));
        }
    }
    assert_eq!(bodies.len(), 15);
}

fn value_of(s: &str) -> AttrValue {
    AttrValue::string("String", s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_check_the_request_and_report_each_entry() {
    let _serial = common::serial().await;
    let (_cluster, sqs) = start().await;
    let url = create_queue(&sqs, "batch", &[(Attr::VisibilityTimeout, "300")]).await;

    // Ten entries, some with attributes: one result per entry, with its checksums.
    let mut req = sqs.send_message_batch().queue_url(&url);
    let mut expected_md5 = BTreeMap::new();
    for i in 0..10 {
        let body = format!("batch body {i}");
        let mut e = SendMessageBatchRequestEntry::builder()
            .id(format!("m{i}"))
            .message_body(&body);
        let attrs: BTreeMap<String, AttrValue> = if i % 2 == 0 {
            [(
                "index".to_string(),
                AttrValue::string("Number", &i.to_string()),
            )]
            .into()
        } else {
            BTreeMap::new()
        };
        for (k, v) in &attrs {
            e = e.message_attributes(k, v.to_sdk());
        }
        expected_md5.insert(
            format!("m{i}"),
            (
                md5_hex(body.as_bytes()),
                (!attrs.is_empty()).then(|| md5_of_attributes(&attrs)),
            ),
        );
        req = req.entries(e.build().unwrap());
    }
    let out = req.send().await.expect("SendMessageBatch of 10");
    assert!(out.failed().is_empty(), "{:?}", out.failed());
    assert_eq!(out.successful().len(), 10);
    let mut ids = BTreeSet::new();
    for r in out.successful() {
        let (body_md5, attrs_md5) = &expected_md5[r.id()];
        assert_eq!(
            r.md5_of_message_body(),
            body_md5.as_str(),
            "entry {}",
            r.id()
        );
        assert_eq!(
            r.md5_of_message_attributes(),
            attrs_md5.as_deref(),
            "entry {}",
            r.id()
        );
        assert!(ids.insert(r.message_id().to_string()), "message ids repeat");
    }

    // Request-level errors.
    let mut eleven = sqs.send_message_batch().queue_url(&url);
    for i in 0..11 {
        eleven = eleven.entries(entry(&format!("e{i}"), "x"));
    }
    let err = expect_code(
        "SendMessageBatch of 11",
        eleven.send().await,
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
    );
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_too_many_entries_in_batch_request()));
    let err = expect_code(
        "SendMessageBatch with a repeated id",
        sqs.send_message_batch()
            .queue_url(&url)
            .entries(entry("same", "one"))
            .entries(entry("same", "two"))
            .send()
            .await,
        "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
    );
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_batch_entry_ids_not_distinct()));
    let err = expect_code(
        "an empty SendMessageBatch",
        sqs.send_message_batch()
            .queue_url(&url)
            .set_entries(Some(vec![]))
            .send()
            .await,
        "AWS.SimpleQueueService.EmptyBatchRequest",
    );
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_empty_batch_request()));
    for bad_id in ["bad:id".to_string(), "x".repeat(81)] {
        let err = expect_code(
            &format!("batch entry id {bad_id:?}"),
            sqs.send_message_batch()
                .queue_url(&url)
                .entries(entry(&bad_id, "x"))
                .send()
                .await,
            "AWS.SimpleQueueService.InvalidBatchEntryId",
        );
        assert!(err
            .as_service_error()
            .is_some_and(|e| e.is_invalid_batch_entry_id()));
    }

    // The whole batch is at most 1 MiB: 8 x 128 KiB is accepted, 9 x 120 KiB is not.
    let mut exact = sqs.send_message_batch().queue_url(&url);
    for i in 0..8 {
        exact = exact.entries(entry(&format!("big{i}"), &ascii_body(128 * 1024)));
    }
    let out = exact.send().await.expect("a batch of exactly 1 MiB");
    assert_eq!(out.successful().len(), 8, "{:?}", out.failed());
    let mut over = sqs.send_message_batch().queue_url(&url);
    for i in 0..9 {
        over = over.entries(entry(&format!("big{i}"), &ascii_body(120 * 1024)));
    }
    let err = expect_code(
        "a batch of 1,105,920 bytes",
        over.send().await,
        "AWS.SimpleQueueService.BatchRequestTooLong",
    );
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_batch_request_too_long()));

    // One bad entry among good ones fails alone.
    let out = sqs
        .send_message_batch()
        .queue_url(&url)
        .entries(entry("good1", "fine"))
        .entries(entry("bad", "nul \u{0} inside"))
        .entries(entry("good2", "also fine"))
        .send()
        .await
        .expect("a batch with one bad entry is answered per entry");
    let ok: BTreeSet<&str> = out.successful().iter().map(|r| r.id()).collect();
    assert_eq!(ok, BTreeSet::from(["good1", "good2"]));
    assert_eq!(out.failed().len(), 1, "{:?}", out.failed());
    let failed = &out.failed()[0];
    assert_eq!(failed.id(), "bad");
    assert!(failed.sender_fault());
    assert_eq!(failed.code(), "InvalidMessageContents");

    // Everything sent: 10 + 8 + 2.
    let got = receive_n(&sqs, &url, 20, Duration::from_secs(30)).await;
    let bodies: BTreeSet<&str> = got.iter().map(body).collect();
    assert!(bodies.contains("fine") && bodies.contains("also fine"));
    assert!(!bodies.iter().any(|b| b.contains('\u{0}')));

    // ChangeMessageVisibilityBatch and DeleteMessageBatch: per-entry results.
    let (a, b) = (&got[0], &got[1]);
    let out = sqs
        .change_message_visibility_batch()
        .queue_url(&url)
        .entries(visibility_entry("a", handle(a), 0))
        .entries(visibility_entry("bogus", "not-a-receipt-handle", 0))
        .entries(visibility_entry("b", handle(b), 0))
        .send()
        .await
        .expect("ChangeMessageVisibilityBatch");
    let ok: BTreeSet<&str> = out.successful().iter().map(|r| r.id()).collect();
    assert_eq!(ok, BTreeSet::from(["a", "b"]));
    assert_eq!(out.failed().len(), 1, "{:?}", out.failed());
    assert_eq!(out.failed()[0].id(), "bogus");
    assert_eq!(out.failed()[0].code(), "ReceiptHandleIsInvalid");
    assert!(out.failed()[0].sender_fault());
    // Those two are visible again; the other 18 are still in flight.
    let again = receive_n(&sqs, &url, 2, Duration::from_secs(10)).await;
    let again_ids: BTreeSet<&str> = again.iter().filter_map(|m| m.message_id()).collect();
    assert_eq!(
        again_ids,
        BTreeSet::from([a.message_id().unwrap(), b.message_id().unwrap()])
    );
    assert!(again.iter().all(|m| receive_count(m) == 2));
    wait_counts(&sqs, &url, (0, 20, 0)).await;

    let mut in_flight: Vec<Message> = again;
    in_flight.extend(got[2..].iter().cloned());
    let out = sqs
        .delete_message_batch()
        .queue_url(&url)
        .entries(delete_entry("first", handle(&in_flight[0])))
        .entries(delete_entry("bogus", "not-a-receipt-handle"))
        .entries(delete_entry("second", handle(&in_flight[1])))
        .send()
        .await
        .expect("DeleteMessageBatch");
    let ok: BTreeSet<&str> = out.successful().iter().map(|r| r.id()).collect();
    assert_eq!(ok, BTreeSet::from(["first", "second"]));
    assert_eq!(out.failed().len(), 1, "{:?}", out.failed());
    assert_eq!(out.failed()[0].id(), "bogus");
    assert_eq!(out.failed()[0].code(), "ReceiptHandleIsInvalid");
    assert!(out.failed()[0].sender_fault());
    wait_counts(&sqs, &url, (0, 18, 0)).await;

    // The batch rules hold for deletes and visibility changes too.
    let h = handle(&in_flight[2]).to_string();
    let mut eleven = sqs.delete_message_batch().queue_url(&url);
    for i in 0..11 {
        eleven = eleven.entries(delete_entry(&format!("d{i}"), &h));
    }
    let err = expect_code(
        "DeleteMessageBatch of 11",
        eleven.send().await,
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
    );
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_too_many_entries_in_batch_request()));
    let err = expect_code(
        "DeleteMessageBatch with a repeated id",
        sqs.delete_message_batch()
            .queue_url(&url)
            .entries(delete_entry("same", &h))
            .entries(delete_entry("same", &h))
            .send()
            .await,
        "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
    );
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_batch_entry_ids_not_distinct()));
    let err = expect_code(
        "an empty DeleteMessageBatch",
        sqs.delete_message_batch()
            .queue_url(&url)
            .set_entries(Some(vec![]))
            .send()
            .await,
        "AWS.SimpleQueueService.EmptyBatchRequest",
    );
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_empty_batch_request()));
    let err = expect_code(
        "an empty ChangeMessageVisibilityBatch",
        sqs.change_message_visibility_batch()
            .queue_url(&url)
            .set_entries(Some(vec![]))
            .send()
            .await,
        "AWS.SimpleQueueService.EmptyBatchRequest",
    );
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_empty_batch_request()));
    let mut eleven = sqs.change_message_visibility_batch().queue_url(&url);
    for i in 0..11 {
        eleven = eleven.entries(visibility_entry(&format!("v{i}"), &h, 5));
    }
    let err = expect_code(
        "ChangeMessageVisibilityBatch of 11",
        eleven.send().await,
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
    );
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_too_many_entries_in_batch_request()));

    // Delete the rest ten at a time; the queue is then empty.
    for chunk in in_flight[2..].chunks(10) {
        let mut req = sqs.delete_message_batch().queue_url(&url);
        for (i, m) in chunk.iter().enumerate() {
            req = req.entries(delete_entry(&format!("d{i}"), handle(m)));
        }
        let out = req.send().await.expect("DeleteMessageBatch");
        assert_eq!(out.successful().len(), chunk.len(), "{:?}", out.failed());
    }
    wait_counts(&sqs, &url, (0, 0, 0)).await;
    assert_empty(&sqs, &url, 1).await;
}
