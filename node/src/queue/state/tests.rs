use super::*;
use crate::store::MemState;

fn ctx(now_ms: u64) -> ApplyContext {
    ApplyContext {
        log_index: 1,
        now_ms,
    }
}

fn name(n: &str) -> QueueName {
    QueueName::parse(n).unwrap()
}

fn run(s: &mut MemState, now: u64, cmd: QueueCommand) -> QueueResult {
    apply(s, cmd, &ctx(now)).unwrap()
}

fn create(s: &mut MemState, q: &str, attrs: &[(&str, &str)]) {
    let n = name(q);
    let given: BTreeMap<String, String> = attrs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = QueueConfig::for_create(&n, &given).unwrap();
    let reply = run(
        s,
        0,
        QueueCommand::Create {
            name: n,
            config,
            given: given.keys().cloned().collect(),
            tags: BTreeMap::new(),
        },
    );
    assert_eq!(reply, Ok(QueueReply::Created { existed: false }));
}

fn msg(id: &str, group: Option<&str>, dedup: Option<&str>) -> NewMessage {
    NewMessage {
        message_id: id.to_string(),
        body: format!("body of {id}"),
        attributes: MessageAttributes::new(),
        trace_header: None,
        sender_id: "test".into(),
        delay_seconds: None,
        group_id: group.map(str::to_string),
        dedup_id: dedup.map(str::to_string),
    }
}

fn send(s: &mut MemState, now: u64, q: &str, m: NewMessage) -> SentMessage {
    match run(
        s,
        now,
        QueueCommand::Send {
            name: name(q),
            messages: vec![m],
        },
    ) {
        Ok(QueueReply::Sent(mut v)) => v.remove(0).unwrap(),
        other => panic!("send: {other:?}"),
    }
}

fn receive_with(s: &mut MemState, now: u64, q: &str, max: u32, vis: Option<u32>) -> Received {
    let nonces = (1..=10).map(|i| now * 100 + i).collect();
    match run(
        s,
        now,
        QueueCommand::Receive {
            name: name(q),
            max,
            visibility_timeout_seconds: vis,
            nonces,
            attempt_id: None,
        },
    ) {
        Ok(QueueReply::Received(r)) => r,
        other => panic!("receive: {other:?}"),
    }
}

fn ids(r: &Received) -> Vec<String> {
    r.messages
        .iter()
        .map(|d| d.message.message_id.clone())
        .collect()
}

fn receipt(d: &Delivered) -> Receipt {
    Receipt {
        seq: d.seq,
        nonce: d.message.receipt_nonce,
    }
}

fn counts_at(s: &MemState, q: &str, now: u64) -> (QueueRecord, Counts) {
    match read(
        s,
        QueueQuery::Get {
            name: name(q),
            now_ms: now,
        },
    )
    .unwrap()
    {
        QueueQueryReply::Queue(Some(x)) => *x,
        other => panic!("get: {other:?}"),
    }
}

#[test]
fn create_is_idempotent_only_with_the_same_attributes() {
    let mut s = MemState::default();
    create(&mut s, "q", &[("VisibilityTimeout", "5")]);
    let n = name("q");
    let again = |vt: &str| {
        let given: BTreeMap<String, String> =
            [("VisibilityTimeout".to_string(), vt.to_string())].into();
        QueueCommand::Create {
            name: n.clone(),
            config: QueueConfig::for_create(&n, &given).unwrap(),
            given: given.keys().cloned().collect(),
            tags: BTreeMap::new(),
        }
    };
    assert_eq!(
        run(&mut s, 1, again("5")),
        Ok(QueueReply::Created { existed: true })
    );
    assert_eq!(
        run(&mut s, 1, again("6")),
        Err(QueueError::QueueNameExists("VisibilityTimeout".into()))
    );
}

#[test]
fn visibility_timeout_hides_then_redelivers_with_a_new_receipt() {
    let mut s = MemState::default();
    create(&mut s, "q", &[("VisibilityTimeout", "10")]);
    send(&mut s, 1_000, "q", msg("m1", None, None));
    let first = receive_with(&mut s, 2_000, "q", 10, None);
    assert_eq!(ids(&first), ["m1"]);
    assert_eq!(first.messages[0].message.receive_count, 1);
    // In flight: nothing to receive, and the counts say so.
    assert!(receive_with(&mut s, 3_000, "q", 10, None)
        .messages
        .is_empty());
    let (_, c) = counts_at(&s, "q", 3_000);
    assert_eq!((c.visible, c.not_visible, c.delayed), (0, 1, 0));
    // After 10 s it is back, with a new receipt and a receive count of 2.
    let second = receive_with(&mut s, 12_000, "q", 10, None);
    assert_eq!(ids(&second), ["m1"]);
    assert_eq!(second.messages[0].message.receive_count, 2);
    assert_ne!(receipt(&first.messages[0]), receipt(&second.messages[0]));
    // The old receipt deletes nothing; the new one deletes.
    let del = |r| QueueCommand::DeleteMessages {
        name: name("q"),
        receipts: vec![r],
    };
    assert_eq!(
        run(&mut s, 13_000, del(receipt(&first.messages[0]))),
        Ok(QueueReply::PerEntry(vec![Ok(())]))
    );
    assert_eq!(counts_at(&s, "q", 13_000).0.message_count, 1);
    run(&mut s, 13_000, del(receipt(&second.messages[0]))).unwrap();
    assert_eq!(counts_at(&s, "q", 13_000).0.message_count, 0);
    assert!(receive_with(&mut s, 99_000, "q", 10, None)
        .messages
        .is_empty());
}

#[test]
fn delay_and_visibility_changes_follow_sqs_rules() {
    let mut s = MemState::default();
    create(&mut s, "q", &[]);
    let mut m = msg("late", None, None);
    m.delay_seconds = Some(5);
    send(&mut s, 0, "q", m);
    let (_, c) = counts_at(&s, "q", 1_000);
    assert_eq!((c.visible, c.delayed), (0, 1));
    let r = receive_with(&mut s, 1_000, "q", 1, None);
    assert!(r.messages.is_empty());
    assert_eq!(r.next_visible_ms, Some(5_000));
    let got = receive_with(&mut s, 5_000, "q", 1, Some(100));
    let r0 = receipt(&got.messages[0]);
    let change = |r, t| QueueCommand::ChangeVisibility {
        name: name("q"),
        entries: vec![(r, t)],
    };
    // Set to 0: visible at once.
    assert_eq!(
        run(&mut s, 6_000, change(r0, 0)),
        Ok(QueueReply::PerEntry(vec![Ok(())]))
    );
    // No longer in flight.
    assert_eq!(
        run(&mut s, 6_000, change(r0, 10)),
        Ok(QueueReply::PerEntry(vec![Err(
            QueueError::MessageNotInflight
        )]))
    );
    let again = receive_with(&mut s, 6_000, "q", 1, Some(100));
    let r1 = receipt(&again.messages[0]);
    // The old receipt is expired now.
    assert!(matches!(
        run(&mut s, 7_000, change(r0, 10)),
        Ok(QueueReply::PerEntry(v)) if matches!(v[0], Err(QueueError::InvalidParameterValue { .. }))
    ));
    // More than 12 h after this receipt was issued is refused.
    let at = 6_000 + 43_000_000;
    assert!(matches!(
        run(&mut s, 6_000, change(r1, 43_200)),
        Ok(QueueReply::PerEntry(v)) if v[0].is_ok()
    ));
    assert!(matches!(
        run(&mut s, at, change(r1, 43_200)),
        Ok(QueueReply::PerEntry(v)) if matches!(v[0], Err(QueueError::InvalidParameterValue { .. }))
    ));
}

#[test]
fn fifo_groups_deliver_in_order_and_block_while_in_flight() {
    let mut s = MemState::default();
    create(&mut s, "q.fifo", &[("FifoQueue", "true")]);
    for (i, g) in ["a", "b", "a", "b", "a"].iter().enumerate() {
        send(
            &mut s,
            10 + i as u64,
            "q.fifo",
            msg(&format!("{g}{i}"), Some(g), Some(&format!("d{i}"))),
        );
    }
    // One receive of 2: a's first two in order (a group is served as a run).
    let r = receive_with(&mut s, 100, "q.fifo", 2, None);
    assert_eq!(ids(&r), ["a0", "a2"]);
    // Group a is blocked while a0 and a2 are in flight; b is served.
    let r2 = receive_with(&mut s, 200, "q.fifo", 10, None);
    assert_eq!(ids(&r2), ["b1", "b3"]);
    assert!(receive_with(&mut s, 300, "q.fifo", 10, None)
        .messages
        .is_empty());
    // Deleting a0 alone does not unblock a (a2 is still in flight).
    let del = |rs: Vec<Receipt>| QueueCommand::DeleteMessages {
        name: name("q.fifo"),
        receipts: rs,
    };
    run(&mut s, 400, del(vec![receipt(&r.messages[0])])).unwrap();
    assert!(receive_with(&mut s, 400, "q.fifo", 10, None)
        .messages
        .is_empty());
    run(&mut s, 500, del(vec![receipt(&r.messages[1])])).unwrap();
    assert_eq!(ids(&receive_with(&mut s, 500, "q.fifo", 10, None)), ["a4"]);
}

#[test]
fn fifo_deduplicates_within_the_window() {
    let mut s = MemState::default();
    create(&mut s, "q.fifo", &[("FifoQueue", "true")]);
    let first = send(&mut s, 0, "q.fifo", msg("m1", Some("g"), Some("same")));
    let dup = send(&mut s, 1_000, "q.fifo", msg("m2", Some("g"), Some("same")));
    assert_eq!(dup, first);
    assert_eq!(counts_at(&s, "q.fifo", 1_000).0.message_count, 1);
    // After five minutes the id is new again.
    let later = send(
        &mut s,
        DEDUP_WINDOW_MS + 1,
        "q.fifo",
        msg("m3", Some("g"), Some("same")),
    );
    assert_eq!(later.message_id, "m3");
    assert!(later.seq > first.seq);
}

#[test]
fn dedup_scope_message_group_keeps_groups_apart() {
    let mut s = MemState::default();
    create(
        &mut s,
        "q.fifo",
        &[
            ("FifoQueue", "true"),
            ("DeduplicationScope", "messageGroup"),
        ],
    );
    send(&mut s, 0, "q.fifo", msg("m1", Some("g1"), Some("same")));
    let other = send(&mut s, 0, "q.fifo", msg("m2", Some("g2"), Some("same")));
    assert_eq!(other.message_id, "m2");
}

#[test]
fn receive_attempt_ids_return_the_same_messages() {
    let mut s = MemState::default();
    create(&mut s, "q.fifo", &[("FifoQueue", "true")]);
    send(&mut s, 0, "q.fifo", msg("m1", Some("g"), Some("1")));
    let recv = |s: &mut MemState, now: u64, nonce: u64| match run(
        s,
        now,
        QueueCommand::Receive {
            name: name("q.fifo"),
            max: 10,
            visibility_timeout_seconds: None,
            nonces: vec![nonce; 10],
            attempt_id: Some("try-1".into()),
        },
    ) {
        Ok(QueueReply::Received(r)) => r,
        other => panic!("{other:?}"),
    };
    let a = recv(&mut s, 1_000, 7);
    let b = recv(&mut s, 2_000, 8);
    assert_eq!(a.messages, b.messages);
    assert_eq!(b.messages[0].message.receipt_nonce, 7);
}

#[test]
fn messages_over_max_receive_count_are_marked_for_the_dead_letter_queue() {
    let mut s = MemState::default();
    create(&mut s, "dlq", &[]);
    create(
        &mut s,
        "src",
        &[(
            "RedrivePolicy",
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":2}"#,
        )],
    );
    send(&mut s, 0, "src", msg("m", None, None));
    assert_eq!(ids(&receive_with(&mut s, 1, "src", 1, Some(0))), ["m"]);
    assert_eq!(ids(&receive_with(&mut s, 2, "src", 1, Some(0))), ["m"]);
    let third = receive_with(&mut s, 3, "src", 1, Some(0));
    assert!(third.messages.is_empty());
    assert_eq!(third.dead.len(), 1);
    let moving = third.dead[0].clone();
    assert_eq!(moving.destination, name("dlq"));
    // Not delivered while moving; counted as not visible.
    assert!(receive_with(&mut s, 4, "src", 1, Some(0))
        .messages
        .is_empty());
    assert_eq!(counts_at(&s, "src", 4).1.not_visible, 1);
    let stalled = read(
        &s,
        QueueQuery::StalledMoves {
            marked_before_ms: 10,
            limit: 10,
        },
    )
    .unwrap();
    assert_eq!(stalled, QueueQueryReply::Moves(vec![moving.clone()]));
    // Enqueue there, finish here.
    let mut copy = moving.message.clone();
    copy.dead_letter_source = Some(name("src"));
    assert!(matches!(
        run(
            &mut s,
            5,
            QueueCommand::Enqueue {
                name: name("dlq"),
                message: copy
            }
        ),
        Ok(QueueReply::Enqueued { .. })
    ));
    run(
        &mut s,
        5,
        QueueCommand::FinishMove {
            name: name("src"),
            seq: moving.seq,
        },
    )
    .unwrap();
    assert_eq!(counts_at(&s, "src", 6).0.message_count, 0);
    let in_dlq = receive_with(&mut s, 6, "dlq", 10, None);
    assert_eq!(ids(&in_dlq), ["m"]);
    assert_eq!(
        in_dlq.messages[0].message.dead_letter_source,
        Some(name("src"))
    );
}

#[test]
fn move_tasks_take_dead_letters_back_to_their_source() {
    let mut s = MemState::default();
    create(&mut s, "dlq", &[]);
    let mut m = StoredMessage {
        message_id: "m".into(),
        body: "b".into(),
        attributes: MessageAttributes::new(),
        trace_header: None,
        sender_id: "s".into(),
        sent_ms: 0,
        visible_at_ms: 0,
        receive_count: 3,
        first_receive_ms: Some(1),
        receipt_nonce: 9,
        received_ms: 1,
        group_id: None,
        dedup_id: None,
        dead_letter_source: Some(name("src")),
    };
    run(
        &mut s,
        1,
        QueueCommand::Enqueue {
            name: name("dlq"),
            message: m.clone(),
        },
    )
    .unwrap();
    m.dead_letter_source = None;
    run(
        &mut s,
        1,
        QueueCommand::Enqueue {
            name: name("dlq"),
            message: m,
        },
    )
    .unwrap();
    run(
        &mut s,
        2,
        QueueCommand::StartMoveTask {
            name: name("dlq"),
            handle: "h".into(),
            destination: None,
            max_per_second: None,
        },
    )
    .unwrap();
    assert!(matches!(
        run(
            &mut s,
            2,
            QueueCommand::StartMoveTask {
                name: name("dlq"),
                handle: "h2".into(),
                destination: None,
                max_per_second: None
            }
        ),
        Err(QueueError::InvalidParameterValue { .. })
    ));
    let taken = match run(
        &mut s,
        3,
        QueueCommand::TakeForMoveTask {
            name: name("dlq"),
            handle: "h".into(),
            max: 10,
        },
    ) {
        Ok(QueueReply::Taken(t)) => t,
        other => panic!("{other:?}"),
    };
    // Only the message that came from a source queue can go back.
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].destination, name("src"));
    run(
        &mut s,
        4,
        QueueCommand::FinishMove {
            name: name("dlq"),
            seq: taken[0].seq,
        },
    )
    .unwrap();
    run(
        &mut s,
        5,
        QueueCommand::TakeForMoveTask {
            name: name("dlq"),
            handle: "h".into(),
            max: 10,
        },
    )
    .unwrap();
    let (record, _) = counts_at(&s, "dlq", 5);
    assert_eq!(record.move_tasks[0].status, MoveStatus::Completed);
    assert_eq!(record.move_tasks[0].moved, 1);
}

#[test]
fn purge_empties_and_refuses_a_second_purge_within_a_minute() {
    let mut s = MemState::default();
    create(&mut s, "q", &[]);
    for i in 0..5 {
        send(&mut s, i, "q", msg(&format!("m{i}"), None, None));
    }
    receive_with(&mut s, 10, "q", 2, None);
    run(&mut s, 100, QueueCommand::Purge { name: name("q") }).unwrap();
    let (record, c) = counts_at(&s, "q", 100);
    assert_eq!((record.message_count, c.visible, c.not_visible), (0, 0, 0));
    assert!(matches!(
        run(&mut s, 30_000, QueueCommand::Purge { name: name("q") }),
        Err(QueueError::PurgeQueueInProgress(_))
    ));
    assert!(run(&mut s, 60_100, QueueCommand::Purge { name: name("q") }).is_ok());
}

#[test]
fn retention_expires_messages() {
    let mut s = MemState::default();
    create(&mut s, "q", &[("MessageRetentionPeriod", "60")]);
    send(&mut s, 0, "q", msg("old", None, None));
    send(&mut s, 30_000, "q", msg("young", None, None));
    run(&mut s, 61_000, QueueCommand::Sweep { name: name("q") }).unwrap();
    assert_eq!(counts_at(&s, "q", 61_000).0.message_count, 1);
    assert_eq!(ids(&receive_with(&mut s, 61_000, "q", 10, None)), ["young"]);
    // Receive also drops what expired since the last sweep.
    assert!(receive_with(&mut s, 200_000, "q", 10, None)
        .messages
        .is_empty());
    assert_eq!(counts_at(&s, "q", 200_000).0.message_count, 0);
}

#[test]
fn deleting_a_queue_removes_every_row_and_listing_sees_the_rest() {
    let mut s = MemState::default();
    create(&mut s, "a1", &[]);
    create(&mut s, "a2", &[]);
    create(&mut s, "b", &[]);
    send(&mut s, 0, "a1", msg("m", None, None));
    let list = |s: &MemState, prefix: &str, after: Option<&str>| match read(
        s,
        QueueQuery::List {
            prefix: prefix.into(),
            after: after.map(str::to_string),
            limit: 10,
        },
    )
    .unwrap()
    {
        QueueQueryReply::Names(n) => n.into_iter().map(String::from).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(list(&s, "a", None), ["a1", "a2"]);
    assert_eq!(list(&s, "", Some("a1")), ["a2", "b"]);
    run(&mut s, 1, QueueCommand::Delete { name: name("a1") }).unwrap();
    assert_eq!(list(&s, "", None), ["a2", "b"]);
    let leftovers = s.scan(&keys::space(KIND_MESSAGE, "a1"), &[], 10).unwrap();
    assert!(leftovers.is_empty());
    assert_eq!(
        run(&mut s, 2, QueueCommand::Purge { name: name("a1") }),
        Err(QueueError::QueueDoesNotExist)
    );
}

#[test]
fn a_fifo_receipt_is_good_only_while_its_message_is_in_flight() {
    let mut s = MemState::default();
    create(
        &mut s,
        "q.fifo",
        &[("FifoQueue", "true"), ("VisibilityTimeout", "1")],
    );
    send(&mut s, 0, "q.fifo", msg("m", Some("g"), Some("d")));
    let first = receive_with(&mut s, 10, "q.fifo", 1, None);
    let del = |r| QueueCommand::DeleteMessages {
        name: name("q.fifo"),
        receipts: vec![r],
    };
    // After the visibility timeout the receipt has expired, whoever holds the message now.
    assert!(matches!(
        run(&mut s, 2_000, del(receipt(&first.messages[0]))),
        Ok(QueueReply::PerEntry(v)) if matches!(v[0], Err(QueueError::InvalidParameterValue { .. }))
    ));
    let second = receive_with(&mut s, 2_000, "q.fifo", 1, None);
    assert_eq!(
        run(&mut s, 2_500, del(receipt(&second.messages[0]))),
        Ok(QueueReply::PerEntry(vec![Ok(())]))
    );
    assert_eq!(counts_at(&s, "q.fifo", 2_500).0.message_count, 0);
}

// ---------------------------------------------------------------------------------------
// The visibility indexes and their floors, under a long random history

/// Every message has exactly one index row, in the index its receive count names, at its
/// visible_at (none while it is moving); no row is below its index's floor, no message
/// below the message floor.
fn check_index_invariants(s: &MemState, q: &str) {
    let record = load_queue(s, &name(q)).unwrap().unwrap();
    let mut expected = BTreeSet::new();
    for (key, bytes) in s
        .scan(&keys::space(KIND_MESSAGE, q), &[], usize::MAX)
        .unwrap()
    {
        let seq = keys::trailing_seq(&key).unwrap();
        assert!(
            seq >= record.floors.messages(),
            "message {seq} is below the message floor"
        );
        let m: StoredMessage = decode("message", &bytes).unwrap();
        if s.get(&keys::moving(q, seq)).unwrap().is_none() {
            expected.insert((Index::of(&m) == Index::Received, m.visible_at_ms, seq));
        }
    }
    let mut found = BTreeSet::new();
    for (received, kind) in [(false, keys::KIND_WAITING), (true, keys::KIND_RECEIVED)] {
        let index = if received {
            Index::Received
        } else {
            Index::Waiting
        };
        let prefix = keys::space(kind, q);
        for (key, _) in s.scan(&prefix, &[], usize::MAX).unwrap() {
            let (at, seq) = keys::parse_indexed(&key, prefix.len()).unwrap();
            assert!(
                at >= record.floors.get(index),
                "{index:?} row at {at} is below the floor {}",
                record.floors.get(index)
            );
            found.insert((received, at, seq));
        }
    }
    assert_eq!(found, expected, "index rows vs messages");
    assert_eq!(
        record.message_count as usize,
        s.scan(&keys::space(KIND_MESSAGE, q), &[], usize::MAX)
            .unwrap()
            .len()
    );
}

/// A small deterministic generator (no dependency, same sequence on every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Sends (some delayed), receives of 1–10 with timeouts of 0–3 s, deletes, visibility
/// changes and a purge, over a clock that moves in steps of up to 1.5 s. After every
/// command the index invariants hold; a standard-queue receive that returns fewer than it
/// asked for has left nothing receivable (the floors never hide a message).
fn random_history(q: &str, attrs: &[(&str, &str)], seed: u64) {
    let fifo = q.ends_with(".fifo");
    let mut s = MemState::default();
    create(&mut s, q, attrs);
    let mut rng = Lcg(seed);
    let mut now = 1_000;
    let mut receipts: Vec<Receipt> = Vec::new();
    let mut n = 0;
    for step in 0..3_000 {
        now += rng.below(1_500);
        match rng.below(10) {
            0..=3 => {
                n += 1;
                let mut m = msg(&format!("m{n}"), None, None);
                if fifo {
                    m.group_id = Some(format!("g{}", rng.below(4)));
                    m.dedup_id = Some(format!("d{n}"));
                } else if rng.below(4) == 0 {
                    m.delay_seconds = Some(rng.below(3) as u32);
                }
                send(&mut s, now, q, m);
            }
            4..=6 => {
                let max = 1 + rng.below(10) as u32;
                let vis = rng.below(4) as u32;
                let r = receive_with(&mut s, now, q, max, Some(vis));
                receipts.extend(r.messages.iter().map(receipt));
                // (A zero timeout makes what it received receivable again at once.)
                if !fifo && vis > 0 && r.messages.len() < max as usize {
                    let again = receive_with(&mut s, now, q, 10, Some(0));
                    assert!(
                        again.messages.is_empty(),
                        "step {step}: a receive of {max} got {} but {} more were receivable",
                        r.messages.len(),
                        again.messages.len()
                    );
                }
            }
            7 | 8 if !receipts.is_empty() => {
                let i = rng.below(receipts.len() as u64) as usize;
                let r = receipts.swap_remove(i);
                let cmd = if rng.below(3) == 0 {
                    QueueCommand::ChangeVisibility {
                        name: name(q),
                        entries: vec![(r, rng.below(3) as u32)],
                    }
                } else {
                    QueueCommand::DeleteMessages {
                        name: name(q),
                        receipts: vec![r],
                    }
                };
                run(&mut s, now, cmd).unwrap();
            }
            9 if rng.below(50) == 0 => {
                now += 60_000;
                run(&mut s, now, QueueCommand::Purge { name: name(q) }).unwrap();
                receipts.clear();
            }
            _ => {}
        }
        check_index_invariants(&s, q);
    }
    // Drained: everything left is received and deleted, and the floors pass the history.
    now += 10_000;
    loop {
        let r = receive_with(&mut s, now, q, 10, Some(30));
        if r.messages.is_empty() {
            break;
        }
        let receipts = r.messages.iter().map(receipt).collect();
        run(
            &mut s,
            now,
            QueueCommand::DeleteMessages {
                name: name(q),
                receipts,
            },
        )
        .unwrap();
        check_index_invariants(&s, q);
    }
    receive_with(&mut s, now + 60_000, q, 10, None);
    let record = load_queue(&s, &name(q)).unwrap().unwrap();
    assert_eq!(record.message_count, 0);
    assert!(
        record.floors.get(Index::Waiting) > now && record.floors.get(Index::Received) > now,
        "an empty queue's floors are past its history: {:?}",
        record.floors
    );
}

#[test]
fn visibility_indexes_stay_consistent_over_a_random_standard_history() {
    for seed in [1, 2, 3] {
        random_history("std", &[], seed);
    }
}

#[test]
fn visibility_indexes_stay_consistent_over_a_random_fifo_history() {
    for seed in [4, 5] {
        random_history("q.fifo", &[("FifoQueue", "true")], seed);
    }
}

#[test]
fn a_queue_from_before_the_floors_row_is_read_from_the_start() {
    let mut s = MemState::default();
    create(&mut s, "q", &[]);
    send(&mut s, 1_000, "q", msg("m1", None, None));
    s.delete(&keys::floors("q"));
    assert_eq!(ids(&receive_with(&mut s, 2_000, "q", 10, None)), ["m1"]);
    check_index_invariants(&s, "q");
}
