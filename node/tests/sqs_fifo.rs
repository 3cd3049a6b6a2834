//! FIFO queues and dead-letter queues (issue 5), through the AWS SDK for Rust against a
//! real cluster: order within a message group with concurrent producers and consumers, a
//! group blocked while a message of it is in flight, deduplication by id and by content
//! (per queue and per group), sequence numbers, ReceiveRequestAttemptId; redrive to a
//! dead-letter queue after maxReceiveCount, and message move tasks back out of it.

mod common;
mod sqs_common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::operation::send_message::SendMessageOutput;
use aws_sdk_sqs::types::{MessageSystemAttributeName as Sys, QueueAttributeName as Attr};
use aws_sdk_sqs::Client;
use serde_json::json;
use sqs_common::*;

async fn send_fifo(
    sqs: &Client,
    url: &str,
    group: &str,
    dedup: Option<&str>,
    body: &str,
) -> SendMessageOutput {
    sqs.send_message()
        .queue_url(url)
        .message_body(body)
        .message_group_id(group)
        .set_message_deduplication_id(dedup.map(String::from))
        .send()
        .await
        .unwrap_or_else(|e| panic!("SendMessage {group}/{body}: {}", DisplayErrorContext(&e)))
}

fn sequence_number(s: &str) -> u128 {
    assert!(
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()),
        "SequenceNumber is a decimal number: {s:?}"
    );
    s.parse().expect("a 128-bit number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifo_order_groups_and_deduplication() {
    let _serial = common::serial().await;
    let (cluster, sqs) = start().await;
    let url = create_queue(&sqs, "orders.fifo", &[(Attr::FifoQueue, "true")]).await;

    // What a FIFO send must carry, and may not.
    expect_code(
        "a FIFO send without MessageGroupId",
        sqs.send_message()
            .queue_url(&url)
            .message_body("x")
            .message_deduplication_id("d")
            .send()
            .await,
        "MissingParameter",
    );
    expect_code(
        "a FIFO send without a deduplication id or content-based deduplication",
        sqs.send_message()
            .queue_url(&url)
            .message_body("x")
            .message_group_id("g")
            .send()
            .await,
        "InvalidParameterValue",
    );
    expect_code(
        "a per-message DelaySeconds on a FIFO queue",
        sqs.send_message()
            .queue_url(&url)
            .message_body("x")
            .message_group_id("g")
            .message_deduplication_id("d")
            .delay_seconds(2)
            .send()
            .await,
        "InvalidParameterValue",
    );

    // Order within each group, with a producer per group and three consumers (one per
    // zone's first node) running at the same time. A consumer records a message before
    // deleting it, and a group is blocked while a message of it is in flight, so the
    // records of a group must come in the order it was sent.
    const GROUPS: usize = 4;
    const PER_GROUP: usize = 12;
    const TOTAL: usize = GROUPS * PER_GROUP;
    let mut producers = Vec::new();
    for g in 0..GROUPS {
        let (c, u) = (sqs.clone(), url.clone());
        producers.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for i in 0..PER_GROUP {
                let name = format!("g{g}-{i}");
                let out = send_fifo(&c, &u, &format!("g{g}"), Some(&name), &name).await;
                let seq = sequence_number(out.sequence_number().expect("SequenceNumber"));
                sent.push((out.message_id().unwrap().to_string(), seq));
            }
            sent
        }));
    }
    let log: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let mut consumers = Vec::new();
    for node in 1..=3 {
        let c = sqs_client(&cluster.node(node).http, "test", "test");
        let (u, log) = (url.clone(), log.clone());
        consumers.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(90);
            while log.lock().unwrap().len() < TOTAL {
                assert!(Instant::now() < deadline, "consumers did not finish");
                for m in receive(&c, &u, 10, 1).await {
                    let group = system_attr(&m, Sys::MessageGroupId)
                        .expect("MessageGroupId")
                        .to_string();
                    let seq = system_attr(&m, Sys::SequenceNumber)
                        .expect("SequenceNumber")
                        .to_string();
                    log.lock().unwrap().push((group, body(&m).to_string(), seq));
                    delete(&c, &u, &m).await;
                }
            }
        }));
    }
    let mut sent_seqs = BTreeMap::new();
    for (g, p) in producers.into_iter().enumerate() {
        let sent = p.await.expect("producer");
        for w in sent.windows(2) {
            assert!(
                w[0].1 < w[1].1,
                "group g{g}: sequence numbers must increase: {sent:?}"
            );
        }
        for (i, (_, seq)) in sent.iter().enumerate() {
            sent_seqs.insert(format!("g{g}-{i}"), *seq);
        }
    }
    for c in consumers {
        c.await.expect("consumer");
    }
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), TOTAL, "each message exactly once: {log:?}");
    for g in 0..GROUPS {
        let group = format!("g{g}");
        let order: Vec<&str> = log
            .iter()
            .filter(|(lg, _, _)| *lg == group)
            .map(|(_, b, _)| b.as_str())
            .collect();
        let expected: Vec<String> = (0..PER_GROUP).map(|i| format!("g{g}-{i}")).collect();
        assert_eq!(order, expected, "order within group {group}");
    }
    for (_, b, seq) in &log {
        assert_eq!(sequence_number(seq), sent_seqs[b], "SequenceNumber of {b}");
    }

    // A group with a message in flight gives nothing more, even to a larger receive.
    for b in ["solo-a", "solo-b"] {
        send_fifo(&sqs, &url, "solo", Some(b), b).await;
    }
    let out = sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(1)
        .send()
        .await
        .expect("ReceiveMessage");
    assert_eq!(out.messages().len(), 1);
    let a = out.messages()[0].clone();
    assert_eq!(body(&a), "solo-a");
    assert_empty(&sqs, &url, 1).await;
    delete(&sqs, &url, &a).await;
    let got = receive(&sqs, &url, 10, 2).await;
    assert_eq!(got.iter().map(body).collect::<Vec<_>>(), vec!["solo-b"]);
    delete(&sqs, &url, &got[0]).await;

    // Deduplication by id: the same id within the window is accepted, answered with the
    // first message's id, and not delivered again, even after the first is deleted.
    let first = send_fifo(&sqs, &url, "dedup", Some("x1"), "first").await;
    let second = send_fifo(&sqs, &url, "dedup", Some("x1"), "second").await;
    assert_eq!(second.message_id(), first.message_id());
    let got = receive(&sqs, &url, 10, 2).await;
    assert_eq!(got.iter().map(body).collect::<Vec<_>>(), vec!["first"]);
    assert_eq!(
        system_attr(&got[0], Sys::MessageDeduplicationId),
        Some("x1")
    );
    assert_eq!(system_attr(&got[0], Sys::MessageGroupId), Some("dedup"));
    assert_eq!(
        system_attr(&got[0], Sys::SequenceNumber),
        first.sequence_number()
    );
    delete(&sqs, &url, &got[0]).await;
    let third = send_fifo(&sqs, &url, "dedup", Some("x1"), "third").await;
    assert_eq!(third.message_id(), first.message_id());
    assert_empty(&sqs, &url, 1).await;
    // With DeduplicationScope=queue an id is shared across groups.
    let g1 = send_fifo(&sqs, &url, "one", Some("shared"), "in one").await;
    let g2 = send_fifo(&sqs, &url, "two", Some("shared"), "in two").await;
    assert_eq!(g2.message_id(), g1.message_id());
    let got = receive(&sqs, &url, 10, 2).await;
    assert_eq!(got.iter().map(body).collect::<Vec<_>>(), vec!["in one"]);
    delete(&sqs, &url, &got[0]).await;

    // Content-based deduplication: the SHA-256 of the body is the deduplication id; an
    // explicit id overrides it.
    let cbd = create_queue(
        &sqs,
        "content.fifo",
        &[
            (Attr::FifoQueue, "true"),
            (Attr::ContentBasedDeduplication, "true"),
        ],
    )
    .await;
    let one = send_fifo(&sqs, &cbd, "g", None, "same body").await;
    let two = send_fifo(&sqs, &cbd, "g", None, "same body").await;
    assert_eq!(two.message_id(), one.message_id());
    let three = send_fifo(&sqs, &cbd, "g", Some("explicit"), "same body").await;
    assert_ne!(three.message_id(), one.message_id());
    let mut dedup_ids = BTreeSet::new();
    for _ in 0..2 {
        let got = receive(&sqs, &cbd, 10, 2).await;
        for m in &got {
            assert_eq!(body(m), "same body");
            dedup_ids.insert(
                system_attr(m, Sys::MessageDeduplicationId)
                    .expect("MessageDeduplicationId")
                    .to_string(),
            );
            delete(&sqs, &cbd, m).await;
        }
    }
    assert_eq!(
        dedup_ids,
        BTreeSet::from([sha256_hex(b"same body"), "explicit".to_string()])
    );
    assert_empty(&sqs, &cbd, 1).await;

    // High-throughput mode: deduplication per message group.
    let per_group = create_queue(
        &sqs,
        "per-group.fifo",
        &[
            (Attr::FifoQueue, "true"),
            (Attr::DeduplicationScope, "messageGroup"),
            (Attr::FifoThroughputLimit, "perMessageGroupId"),
        ],
    )
    .await;
    let k1 = send_fifo(&sqs, &per_group, "g1", Some("k"), "k in g1").await;
    let k2 = send_fifo(&sqs, &per_group, "g2", Some("k"), "k in g2").await;
    assert_ne!(k2.message_id(), k1.message_id());
    let k1_again = send_fifo(&sqs, &per_group, "g1", Some("k"), "k in g1 again").await;
    assert_eq!(k1_again.message_id(), k1.message_id());
    let got = receive_n(&sqs, &per_group, 2, Duration::from_secs(10)).await;
    assert_eq!(
        got.iter().map(body).collect::<BTreeSet<_>>(),
        BTreeSet::from(["k in g1", "k in g2"])
    );

    // ReceiveRequestAttemptId: a retried receive gets the same messages and handles; a
    // new attempt gets nothing from the group they keep in flight.
    let attempts = create_queue(
        &sqs,
        "attempts.fifo",
        &[
            (Attr::FifoQueue, "true"),
            (Attr::ContentBasedDeduplication, "true"),
        ],
    )
    .await;
    for b in ["r1", "r2", "r3"] {
        send_fifo(&sqs, &attempts, "g", None, b).await;
    }
    let attempt = |id: &'static str| {
        let (c, u) = (sqs.clone(), attempts.clone());
        async move {
            c.receive_message()
                .queue_url(&u)
                .max_number_of_messages(10)
                .receive_request_attempt_id(id)
                .send()
                .await
                .expect("ReceiveMessage with an attempt id")
                .messages()
                .iter()
                .map(|m| {
                    (
                        m.message_id().unwrap().to_string(),
                        handle(m).to_string(),
                        body(m).to_string(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let tried = attempt("try-1").await;
    assert!(!tried.is_empty());
    assert_eq!(tried[0].2, "r1", "the group's first message first");
    assert_eq!(attempt("try-1").await, tried, "the retry returns the same");
    assert!(attempt("try-2").await.is_empty(), "the group is in flight");
    for (_, h, _) in &tried {
        sqs.delete_message()
            .queue_url(&attempts)
            .receipt_handle(h)
            .send()
            .await
            .expect("DeleteMessage");
    }

    // A FIFO receipt handle that has expired is refused.
    send_fifo(&sqs, &attempts, "late", None, "expiring").await;
    let out = sqs
        .receive_message()
        .queue_url(&attempts)
        .visibility_timeout(1)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("ReceiveMessage");
    let old = out
        .messages()
        .iter()
        .find(|m| body(m) == "expiring")
        .expect("the message")
        .clone();
    let (s, u) = (&sqs, attempts.as_str());
    let new = eventually("redelivery", Duration::from_secs(20), || async move {
        receive(s, u, 10, 1)
            .await
            .into_iter()
            .find(|m| body(m) == "expiring")
    })
    .await;
    assert_eq!(receive_count(&new), 2);
    expect_code(
        "DeleteMessage with an expired FIFO receipt handle",
        sqs.delete_message()
            .queue_url(&attempts)
            .receipt_handle(handle(&old))
            .send()
            .await,
        "InvalidParameterValue",
    );
    delete(&sqs, &attempts, &new).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letter_queues_and_redrive() {
    let _serial = common::serial().await;
    let (_cluster, sqs) = start().await;
    let dlq = create_queue(&sqs, "dlq", &[]).await;
    let redrive = json!({"deadLetterTargetArn": queue_arn("dlq"), "maxReceiveCount": 2});
    let src = create_queue(
        &sqs,
        "src",
        &[(Attr::RedrivePolicy, redrive.to_string().as_str())],
    )
    .await;

    // Received twice and never deleted: the next receive moves it to the dead-letter
    // queue instead of returning it, with its body and attributes.
    sqs.send_message()
        .queue_url(&src)
        .message_body("poison")
        .message_attributes("kind", AttrValue::string("String", "bad").to_sdk())
        .send()
        .await
        .expect("SendMessage");
    for n in 1..=2 {
        let got = receive(&sqs, &src, 10, 2).await;
        assert_eq!(got.len(), 1, "receive {n}");
        assert_eq!(receive_count(&got[0]), n);
        sqs.change_message_visibility()
            .queue_url(&src)
            .receipt_handle(handle(&got[0]))
            .visibility_timeout(0)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "ChangeMessageVisibility 0 after receive {n}: {}",
                    DisplayErrorContext(&e)
                )
            });
    }
    assert_empty(&sqs, &src, 1).await;
    let got = receive_n(&sqs, &dlq, 1, Duration::from_secs(15)).await;
    let dead = &got[0];
    assert_eq!(body(dead), "poison");
    assert_eq!(
        received_attrs(dead),
        BTreeMap::from([("kind".to_string(), AttrValue::string("String", "bad"))])
    );
    assert_eq!(
        system_attr(dead, Sys::DeadLetterQueueSourceArn),
        Some(queue_arn("src").as_str())
    );
    sqs.change_message_visibility()
        .queue_url(&dlq)
        .receipt_handle(handle(dead))
        .visibility_timeout(0)
        .send()
        .await
        .expect("ChangeMessageVisibility 0");
    wait_counts(&sqs, &src, (0, 0, 0)).await;
    wait_counts(&sqs, &dlq, (1, 0, 0)).await;

    // ListDeadLetterSourceQueues names the queues whose RedrivePolicy points here.
    let sources = sqs
        .list_dead_letter_source_queues()
        .queue_url(&dlq)
        .send()
        .await
        .expect("ListDeadLetterSourceQueues");
    assert_eq!(sources.queue_urls(), std::slice::from_ref(&src));
    let none = sqs
        .list_dead_letter_source_queues()
        .queue_url(&src)
        .send()
        .await
        .expect("ListDeadLetterSourceQueues");
    assert!(none.queue_urls().is_empty());

    // The dead-letter queue must exist and be of the source's type.
    let fifo_dlq = create_queue(&sqs, "dlq.fifo", &[(Attr::FifoQueue, "true")]).await;
    let to = |arn: String| json!({"deadLetterTargetArn": arn, "maxReceiveCount": 3}).to_string();
    expect_code(
        "a FIFO queue with a standard dead-letter queue",
        sqs.create_queue()
            .queue_name("fsrc.fifo")
            .attributes(Attr::FifoQueue, "true")
            .attributes(Attr::RedrivePolicy, to(queue_arn("dlq")))
            .send()
            .await,
        "InvalidParameterValue",
    );
    expect_code(
        "a standard queue with a FIFO dead-letter queue",
        sqs.create_queue()
            .queue_name("src2")
            .attributes(Attr::RedrivePolicy, to(queue_arn("dlq.fifo")))
            .send()
            .await,
        "InvalidParameterValue",
    );
    create_queue(
        &sqs,
        "fsrc.fifo",
        &[
            (Attr::FifoQueue, "true"),
            (Attr::RedrivePolicy, to(queue_arn("dlq.fifo")).as_str()),
        ],
    )
    .await;
    let sources = sqs
        .list_dead_letter_source_queues()
        .queue_url(&fifo_dlq)
        .send()
        .await
        .expect("ListDeadLetterSourceQueues");
    assert_eq!(sources.queue_urls().len(), 1);
    assert!(sources.queue_urls()[0].ends_with("/fsrc.fifo"));
    expect_code(
        "a RedrivePolicy naming a missing queue",
        sqs.create_queue()
            .queue_name("src3")
            .attributes(Attr::RedrivePolicy, to(queue_arn("missing")))
            .send()
            .await,
        "InvalidParameterValue",
    );

    // A message move task takes dead letters back to their source.
    expect_code(
        "StartMessageMoveTask from a queue that is no dead-letter queue",
        sqs.start_message_move_task()
            .source_arn(queue_arn("src"))
            .send()
            .await,
        "InvalidParameterValue",
    );
    let task = sqs
        .start_message_move_task()
        .source_arn(queue_arn("dlq"))
        .send()
        .await
        .expect("StartMessageMoveTask");
    assert!(task.task_handle().is_some_and(|h| !h.is_empty()));
    let s = &sqs;
    let done = eventually(
        "the move task to complete",
        Duration::from_secs(30),
        || async move {
            let out = s
                .list_message_move_tasks()
                .source_arn(queue_arn("dlq"))
                .send()
                .await
                .expect("ListMessageMoveTasks");
            out.results()
                .first()
                .filter(|t| t.status() == Some("COMPLETED"))
                .cloned()
        },
    )
    .await;
    assert_eq!(done.approximate_number_of_messages_moved(), 1);
    assert_eq!(done.approximate_number_of_messages_to_move(), Some(1));
    assert_eq!(done.source_arn(), Some(queue_arn("dlq").as_str()));
    let back = receive_n(&sqs, &src, 1, Duration::from_secs(15)).await;
    assert_eq!(body(&back[0]), "poison");
    assert_eq!(received_attrs(&back[0]), received_attrs(dead));
    delete(&sqs, &src, &back[0]).await;
    wait_counts(&sqs, &dlq, (0, 0, 0)).await;

    // A slow task can be cancelled; nothing is lost either way. Only one task at a time.
    for i in 0..20 {
        send(&sqs, &dlq, &format!("dead {i}")).await;
    }
    wait_counts(&sqs, &dlq, (20, 0, 0)).await;
    let task = sqs
        .start_message_move_task()
        .source_arn(queue_arn("dlq"))
        .destination_arn(queue_arn("src"))
        .max_number_of_messages_per_second(1)
        .send()
        .await
        .expect("StartMessageMoveTask at 1 message/s");
    let task_handle = task.task_handle().expect("TaskHandle").to_string();
    expect_code(
        "a second task while one is running",
        sqs.start_message_move_task()
            .source_arn(queue_arn("dlq"))
            .send()
            .await,
        "InvalidParameterValue",
    );
    let listed = sqs
        .list_message_move_tasks()
        .source_arn(queue_arn("dlq"))
        .max_results(10)
        .send()
        .await
        .expect("ListMessageMoveTasks");
    assert_eq!(listed.results().len(), 2, "{listed:?}");
    let running = &listed.results()[0];
    assert_eq!(running.status(), Some("RUNNING"));
    assert_eq!(running.task_handle(), Some(task_handle.as_str()));
    assert_eq!(running.max_number_of_messages_per_second(), Some(1));
    assert_eq!(running.destination_arn(), Some(queue_arn("src").as_str()));
    assert_eq!(running.approximate_number_of_messages_to_move(), Some(20));
    assert_eq!(listed.results()[1].status(), Some("COMPLETED"));
    sqs.cancel_message_move_task()
        .task_handle(&task_handle)
        .send()
        .await
        .expect("CancelMessageMoveTask");
    let cancelled = eventually(
        "the task to be cancelled",
        Duration::from_secs(30),
        || async move {
            let out = s
                .list_message_move_tasks()
                .source_arn(queue_arn("dlq"))
                .send()
                .await
                .expect("ListMessageMoveTasks");
            out.results()
                .first()
                .filter(|t| t.status() == Some("CANCELLED"))
                .cloned()
        },
    )
    .await;
    let moved = cancelled.approximate_number_of_messages_moved();
    assert!(moved < 20, "cancelled at 1 message/s, yet moved {moved}");
    let (s_url, d_url) = (src.as_str(), dlq.as_str());
    eventually(
        "every message in one queue or the other",
        Duration::from_secs(15),
        || async move {
            let (src_n, _, _) = counts(s, s_url).await;
            let (dlq_n, _, _) = counts(s, d_url).await;
            (src_n == moved as u64 && src_n + dlq_n == 20).then_some(())
        },
    )
    .await;
    expect_code(
        "CancelMessageMoveTask with a bogus handle",
        sqs.cancel_message_move_task()
            .task_handle("not-a-task-handle")
            .send()
            .await,
        "InvalidParameterValue",
    );
}
