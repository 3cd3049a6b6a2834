//! SQS through a zone outage (issue 5): a stream of sends, receives and deletes runs
//! through a surviving node's edge while a whole zone's nodes are killed (SIGKILL). What
//! was acknowledged must survive: on a standard queue every acknowledged message is
//! received at least once; on a FIFO queue each group's messages are first delivered in
//! the order sent and each send made exactly one message (producers resend with the same
//! deduplication id, which the queue must absorb).

mod common;
mod sqs_common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{MessageSystemAttributeName as Sys, QueueAttributeName as Attr};
use aws_sdk_sqs::Client;
use sqs_common::*;

const STANDARD_MESSAGES: usize = 200;
const GROUPS: usize = 4;
const PER_GROUP: usize = 40;

/// A client that gives up on one attempt after 15 s (a request to a dying leader must not
/// hang the test), with the SDK's usual retries.
fn patient_client(edge: &str) -> Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(format!("http://{edge}"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(15))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

#[derive(Default)]
struct Deliveries {
    /// Standard queue: bodies received (with repeats).
    standard: Vec<String>,
    /// FIFO queue, per group: (body, MessageId) in the order received.
    fifo: BTreeMap<String, Vec<(String, String)>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_zone_down_during_sends_receives_and_deletes() {
    let _serial = common::serial().await;
    let (mut cluster, _) = start().await;
    // Node 1 is in az-a; az-c holds nodes 3 and 6.
    let sqs = patient_client(&cluster.node(1).http);
    let standard = create_queue(&sqs, "stream", &[(Attr::VisibilityTimeout, "5")]).await;
    let fifo = create_queue(
        &sqs,
        "stream.fifo",
        &[(Attr::FifoQueue, "true"), (Attr::VisibilityTimeout, "5")],
    )
    .await;

    let acked_standard: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let sends_done = Arc::new(AtomicUsize::new(0));
    let deliveries: Arc<Mutex<Deliveries>> = Arc::default();
    let stop = Arc::new(AtomicUsize::new(0));

    // Standard producer: each message sent once; an error leaves it unacknowledged.
    let standard_producer = {
        let (c, u, acked, done) = (
            sqs.clone(),
            standard.clone(),
            acked_standard.clone(),
            sends_done.clone(),
        );
        tokio::spawn(async move {
            for i in 0..STANDARD_MESSAGES {
                let b = format!("s-{i}");
                if c.send_message()
                    .queue_url(&u)
                    .message_body(&b)
                    .send()
                    .await
                    .is_ok()
                {
                    acked.lock().unwrap().insert(b);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // FIFO producers, one per group: a failed send is resent with the same
    // deduplication id until it is acknowledged, so every message exists exactly once.
    let fifo_producers: Vec<_> = (0..GROUPS)
        .map(|g| {
            let (c, u, done) = (sqs.clone(), fifo.clone(), sends_done.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..PER_GROUP {
                    let b = format!("g{g}-{i}");
                    let deadline = Instant::now() + Duration::from_secs(60);
                    let id = loop {
                        match c
                            .send_message()
                            .queue_url(&u)
                            .message_body(&b)
                            .message_group_id(format!("g{g}"))
                            .message_deduplication_id(&b)
                            .send()
                            .await
                        {
                            Ok(out) => break out.message_id().unwrap().to_string(),
                            Err(e) => assert!(
                                Instant::now() < deadline,
                                "{b} not acknowledged within 60 s: {e:?}"
                            ),
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    };
                    ids.push((b, id));
                    done.fetch_add(1, Ordering::Relaxed);
                }
                ids
            })
        })
        .collect();
    // Consumers on both queues: record, then delete; errors are retried by the loop.
    let consumers: Vec<_> =
        (0..2)
            .map(|_| {
                let (c, s, f, d, stop) = (
                    sqs.clone(),
                    standard.clone(),
                    fifo.clone(),
                    deliveries.clone(),
                    stop.clone(),
                );
                tokio::spawn(async move {
                    while stop.load(Ordering::Relaxed) == 0 {
                        if let Ok(out) = c
                            .receive_message()
                            .queue_url(&s)
                            .max_number_of_messages(10)
                            .wait_time_seconds(1)
                            .send()
                            .await
                        {
                            for m in out.messages() {
                                d.lock().unwrap().standard.push(body(m).to_string());
                                let _ = c
                                    .delete_message()
                                    .queue_url(&s)
                                    .receipt_handle(handle(m))
                                    .send()
                                    .await;
                            }
                        } else {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        if let Ok(out) = c
                            .receive_message()
                            .queue_url(&f)
                            .max_number_of_messages(10)
                            .wait_time_seconds(1)
                            .message_system_attribute_names(Sys::MessageGroupId)
                            .send()
                            .await
                        {
                            for m in out.messages() {
                                let group = system_attr(m, Sys::MessageGroupId)
                                    .expect("MessageGroupId")
                                    .to_string();
                                d.lock().unwrap().fifo.entry(group).or_default().push((
                                    body(m).to_string(),
                                    m.message_id().unwrap().to_string(),
                                ));
                                let _ = c
                                    .delete_message()
                                    .queue_url(&f)
                                    .receipt_handle(handle(m))
                                    .send()
                                    .await;
                            }
                        } else {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                })
            })
            .collect();

    // A quarter of the way through the sends, zone az-c goes down.
    let total_sends = STANDARD_MESSAGES + GROUPS * PER_GROUP;
    let s = &sends_done;
    eventually(
        "a quarter of the sends",
        Duration::from_secs(120),
        || async move { (s.load(Ordering::Relaxed) >= total_sends / 4).then_some(()) },
    )
    .await;
    cluster.kill(3);
    cluster.kill(6);

    standard_producer.await.expect("standard producer");
    let mut fifo_sent: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (g, p) in fifo_producers.into_iter().enumerate() {
        fifo_sent.insert(format!("g{g}"), p.await.expect("FIFO producer"));
    }
    let acked = acked_standard.lock().unwrap().clone();
    assert!(
        acked.len() >= STANDARD_MESSAGES / 2,
        "most sends through a surviving node must succeed: {} of {STANDARD_MESSAGES}",
        acked.len()
    );

    // Drain: every acknowledged message arrives (redeliveries of undeleted ones included).
    let d = &deliveries;
    let (acked_ref, sent_ref) = (&acked, &fifo_sent);
    eventually(
        "every acknowledged message",
        Duration::from_secs(120),
        || async move {
            let d = d.lock().unwrap();
            let got: BTreeSet<&String> = d.standard.iter().collect();
            let standard_done = acked_ref.iter().all(|b| got.contains(b));
            let fifo_done = sent_ref.iter().all(|(g, sent)| {
                let got: BTreeSet<&str> = d
                    .fifo
                    .get(g)
                    .map(|v| v.iter().map(|(b, _)| b.as_str()).collect())
                    .unwrap_or_default();
                sent.iter().all(|(b, _)| got.contains(b.as_str()))
            });
            (standard_done && fifo_done).then_some(())
        },
    )
    .await;
    stop.store(1, Ordering::Relaxed);
    for c in consumers {
        c.await.expect("consumer");
    }

    let d = std::mem::take(&mut *deliveries.lock().unwrap());
    // Standard: nothing received that was never sent.
    for b in &d.standard {
        let i: usize = b
            .strip_prefix("s-")
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("unexpected body {b}"));
        assert!(i < STANDARD_MESSAGES);
    }
    // FIFO: each send is one message (one MessageId per body, the one its send was
    // answered with), and each group's messages are first delivered in the order sent.
    for (g, sent) in &fifo_sent {
        let received = &d.fifo[g];
        let ids: BTreeMap<&str, &str> = sent
            .iter()
            .map(|(b, id)| (b.as_str(), id.as_str()))
            .collect();
        for (b, id) in received {
            assert_eq!(
                ids.get(b.as_str()).copied(),
                Some(id.as_str()),
                "{b} delivered as a message its send was not answered with"
            );
        }
        let mut first_seen = Vec::new();
        let mut seen = BTreeSet::new();
        for (b, _) in received {
            if seen.insert(b.clone()) {
                first_seen.push(b.clone());
            }
        }
        let expected: Vec<String> = sent.iter().map(|(b, _)| b.clone()).collect();
        assert_eq!(first_seen, expected, "first-delivery order of group {g}");
    }

    // The zone comes back and the queues work through its nodes.
    cluster.start_node(3);
    cluster.start_node(6);
    cluster.wait_ready(Duration::from_secs(60)).await;
    let via3 = patient_client(&cluster.node(3).http);
    let id = send(&via3, &standard, "after the zone is back").await;
    let (c, u, id) = (&via3, standard.as_str(), id.as_str());
    eventually(
        "the message sent after the outage",
        Duration::from_secs(30),
        || async move {
            let mut found = None;
            for m in receive(c, u, 10, 1).await {
                delete(c, u, &m).await;
                if m.message_id() == Some(id) {
                    found = Some(());
                }
            }
            found
        },
    )
    .await;
}
