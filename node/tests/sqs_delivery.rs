//! Delivery in SQS (issue 5), through the AWS SDK for Rust against a real cluster:
//! visibility timeouts and their changes, receipt handles old, current and bogus,
//! DelaySeconds per queue and per message, long polling (woken by a send, the queue's
//! default wait, concurrent waiters), and PurgeQueue. Each assertion is AWS's behaviour.

mod common;
mod sqs_common;

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName as Sys, QueueAttributeName as Attr};
use sqs_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn visibility_timeouts_receipt_handles_and_delays() {
    let _serial = common::serial().await;
    let (_cluster, sqs) = start().await;
    let url = create_queue(&sqs, "work", &[]).await;

    // A received message is hidden for its visibility timeout, then delivered again with
    // a new receipt handle and a receive count of 2.
    let id = send(&sqs, &url, "a").await;
    let received_at = Instant::now();
    let out = sqs
        .receive_message()
        .queue_url(&url)
        .visibility_timeout(2)
        .message_system_attribute_names(Sys::All)
        .send()
        .await
        .expect("ReceiveMessage");
    assert_eq!(out.messages().len(), 1);
    let first = out.messages()[0].clone();
    assert_eq!(first.message_id(), Some(id.as_str()));
    assert_eq!(receive_count(&first), 1);
    let early = receive(&sqs, &url, 10, 0).await;
    assert!(
        early.is_empty() || received_at.elapsed() >= Duration::from_secs(2),
        "delivered again inside its visibility timeout: {early:?}"
    );
    let (s, u) = (&sqs, url.as_str());
    let second = eventually("redelivery", Duration::from_secs(20), || async move {
        receive(s, u, 1, 1).await.into_iter().next()
    })
    .await;
    assert!(received_at.elapsed() >= Duration::from_millis(1900));
    assert_eq!(second.message_id(), Some(id.as_str()));
    assert_ne!(second.receipt_handle(), first.receipt_handle());
    assert_eq!(receive_count(&second), 2);
    assert_eq!(
        system_attr(&second, Sys::ApproximateFirstReceiveTimestamp),
        system_attr(&first, Sys::ApproximateFirstReceiveTimestamp)
    );
    // An old receipt handle is accepted (AWS: "the request will succeed, but the message
    // might not be deleted"); the current one deletes.
    sqs.delete_message()
        .queue_url(&url)
        .receipt_handle(handle(&first))
        .send()
        .await
        .expect("DeleteMessage with a stale receipt handle succeeds");
    delete(&sqs, &url, &second).await;
    wait_counts(&sqs, &url, (0, 0, 0)).await;
    assert_empty(&sqs, &url, 1).await;

    // ChangeMessageVisibility extends the timeout, and 0 makes the message visible now.
    send(&sqs, &url, "b").await;
    let out = sqs
        .receive_message()
        .queue_url(&url)
        .visibility_timeout(2)
        .send()
        .await
        .expect("ReceiveMessage");
    assert_eq!(out.messages().len(), 1);
    let b = &out.messages()[0];
    sqs.change_message_visibility()
        .queue_url(&url)
        .receipt_handle(handle(b))
        .visibility_timeout(30)
        .send()
        .await
        .expect("extend the visibility timeout");
    assert_empty(&sqs, &url, 4).await;
    release(&sqs, &url, b).await;
    let got = receive(&sqs, &url, 1, 5).await;
    // Taken after the receive answered, so at least this much has passed since it.
    let received_at = Instant::now();
    assert_eq!(
        got.len(),
        1,
        "visible at once after ChangeMessageVisibility 0"
    );
    let b = &got[0];
    assert_eq!(body(b), "b");
    assert_eq!(receive_count(b), 2);

    // The visibility timeout is at most 12 hours from the receive.
    expect_code(
        "ChangeMessageVisibility 43201",
        sqs.change_message_visibility()
            .queue_url(&url)
            .receipt_handle(handle(b))
            .visibility_timeout(43_201)
            .send()
            .await,
        "InvalidParameterValue",
    );
    tokio::time::sleep_until((received_at + Duration::from_secs(2)).into()).await;
    expect_code(
        "ChangeMessageVisibility 43200, two seconds after the receive",
        sqs.change_message_visibility()
            .queue_url(&url)
            .receipt_handle(handle(b))
            .visibility_timeout(43_200)
            .send()
            .await,
        "InvalidParameterValue",
    );
    sqs.change_message_visibility()
        .queue_url(&url)
        .receipt_handle(handle(b))
        .visibility_timeout(43_100)
        .send()
        .await
        .expect("a visibility timeout within 12 hours of the receive");
    delete(&sqs, &url, b).await;

    // Receipt handles that never came from a receive.
    for bogus in ["not-a-receipt-handle", "AQEB"] {
        let err = expect_code(
            &format!("DeleteMessage with {bogus:?}"),
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(bogus)
                .send()
                .await,
            "ReceiptHandleIsInvalid",
        );
        assert!(err
            .as_service_error()
            .is_some_and(|e| e.is_receipt_handle_is_invalid()));
    }
    let err = expect_code(
        "ChangeMessageVisibility with a bogus handle",
        sqs.change_message_visibility()
            .queue_url(&url)
            .receipt_handle("not-a-receipt-handle")
            .visibility_timeout(5)
            .send()
            .await,
        "ReceiptHandleIsInvalid",
    );
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_receipt_handle_is_invalid()));

    // DelaySeconds: the queue's default, overridden per message.
    let delayed = create_queue(&sqs, "delayed", &[(Attr::DelaySeconds, "2")]).await;
    let sent_at = Instant::now();
    send(&sqs, &delayed, "late").await;
    sqs.send_message()
        .queue_url(&delayed)
        .message_body("now")
        .delay_seconds(0)
        .send()
        .await
        .expect("SendMessage with DelaySeconds 0");
    let got = receive(&sqs, &delayed, 10, 1).await;
    let bodies: Vec<&str> = got.iter().map(body).collect();
    assert!(
        bodies.contains(&"now"),
        "DelaySeconds=0 overrides: {bodies:?}"
    );
    assert!(
        !bodies.contains(&"late") || sent_at.elapsed() >= Duration::from_secs(2),
        "delivered inside the queue's delay: {bodies:?}"
    );
    let (s, d) = (&sqs, delayed.as_str());
    eventually(
        "the delayed message",
        Duration::from_secs(20),
        || async move {
            receive(s, d, 10, 1)
                .await
                .into_iter()
                .find(|m| body(m) == "late")
        },
    )
    .await;
    assert!(sent_at.elapsed() >= Duration::from_millis(1900));

    // A per-message delay on a queue without one.
    let sent_at = Instant::now();
    sqs.send_message()
        .queue_url(&url)
        .message_body("per-message")
        .delay_seconds(2)
        .send()
        .await
        .expect("SendMessage with DelaySeconds 2");
    let m = eventually(
        "the delayed message",
        Duration::from_secs(20),
        || async move { receive(s, u, 1, 1).await.into_iter().next() },
    )
    .await;
    assert_eq!(body(&m), "per-message");
    assert!(sent_at.elapsed() >= Duration::from_millis(1900));
    for bad in [901, -1] {
        expect_code(
            &format!("DelaySeconds {bad}"),
            sqs.send_message()
                .queue_url(&url)
                .message_body("x")
                .delay_seconds(bad)
                .send()
                .await,
            "InvalidParameterValue",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_polling_and_purge() {
    let _serial = common::serial().await;
    let (cluster, sqs) = start().await;
    let url = create_queue(&sqs, "poll", &[]).await;

    // An empty queue's long poll waits its time, then answers empty.
    let t = Instant::now();
    assert_empty(&sqs, &url, 1).await;
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );

    // A long poll returns as soon as a message arrives, well before its deadline.
    let sender = sqs_client(&cluster.node(2).http, "test", "test");
    let u = url.clone();
    let send_later = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        send(&sender, &u, "wake up").await
    });
    let t = Instant::now();
    let got = receive(&sqs, &url, 10, 10).await;
    let waited = t.elapsed();
    let id = send_later.await.unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].message_id(), Some(id.as_str()));
    assert!(
        waited < Duration::from_secs(10),
        "the long poll ran to its deadline ({waited:?}) instead of returning the message"
    );
    delete(&sqs, &url, &got[0]).await;

    // Two waiting consumers, one message: exactly one of them gets it.
    let a = {
        let (c, u) = (sqs.clone(), url.clone());
        tokio::spawn(async move { receive(&c, &u, 10, 4).await })
    };
    let b = {
        let c = sqs_client(&cluster.node(3).http, "test", "test");
        let u = url.clone();
        tokio::spawn(async move { receive(&c, &u, 10, 4).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id = send(&sqs, &url, "only one").await;
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let delivered: Vec<&Message> = a.iter().chain(b.iter()).collect();
    assert_eq!(delivered.len(), 1, "a: {a:?} b: {b:?}");
    assert_eq!(delivered[0].message_id(), Some(id.as_str()));
    delete(&sqs, &url, delivered[0]).await;

    // WaitTimeSeconds is 0 to 20.
    for bad in [21, -1] {
        expect_code(
            &format!("WaitTimeSeconds {bad}"),
            sqs.receive_message()
                .queue_url(&url)
                .wait_time_seconds(bad)
                .send()
                .await,
            "InvalidParameterValue",
        );
    }

    // ReceiveMessageWaitTimeSeconds is the default wait; WaitTimeSeconds overrides it.
    let patient = create_queue(
        &sqs,
        "patient",
        &[(Attr::ReceiveMessageWaitTimeSeconds, "2")],
    )
    .await;
    let t = Instant::now();
    let out = sqs
        .receive_message()
        .queue_url(&patient)
        .send()
        .await
        .expect("ReceiveMessage with the queue's default wait");
    assert!(out.messages().is_empty());
    assert!(
        t.elapsed() >= Duration::from_millis(1800),
        "the queue's 2 s wait applies: {:?}",
        t.elapsed()
    );
    let out = sqs
        .receive_message()
        .queue_url(&patient)
        .wait_time_seconds(0)
        .send()
        .await
        .expect("ReceiveMessage with WaitTimeSeconds 0");
    assert!(out.messages().is_empty());
    let p = patient.clone();
    let sender = sqs.clone();
    let send_later = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        send(&sender, &p, "during the default wait").await
    });
    let out = sqs
        .receive_message()
        .queue_url(&patient)
        .send()
        .await
        .expect("ReceiveMessage");
    let id = send_later.await.unwrap();
    let got: Vec<&str> = out
        .messages()
        .iter()
        .filter_map(|m| m.message_id())
        .collect();
    assert_eq!(got, vec![id.as_str()], "the default wait is a long poll");

    // PurgeQueue empties the queue; a second purge within 60 s is refused.
    let purged = create_queue(&sqs, "purged", &[]).await;
    for i in 0..5 {
        send(&sqs, &purged, &format!("p{i}")).await;
    }
    receive_n(&sqs, &purged, 1, Duration::from_secs(10)).await;
    wait_counts(&sqs, &purged, (4, 1, 0)).await;
    sqs.purge_queue()
        .queue_url(&purged)
        .send()
        .await
        .expect("PurgeQueue");
    wait_counts(&sqs, &purged, (0, 0, 0)).await;
    assert_empty(&sqs, &purged, 1).await;
    let err = expect_code(
        "a second PurgeQueue within 60 s",
        sqs.purge_queue().queue_url(&purged).send().await,
        "AWS.SimpleQueueService.PurgeQueueInProgress",
    );
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_purge_queue_in_progress()));
    expect_code(
        "PurgeQueue of a missing queue",
        sqs.purge_queue()
            .queue_url(queue_url(&cluster.node(1).http, "never-was"))
            .send()
            .await,
        NON_EXISTENT_QUEUE,
    );
    // The queue itself still works.
    let id = send(&sqs, &purged, "after the purge").await;
    let got = receive_n(&sqs, &purged, 1, Duration::from_secs(10)).await;
    assert_eq!(got[0].message_id(), Some(id.as_str()));
}
