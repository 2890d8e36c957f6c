use kafka_protocol::ResponseError;

use super::*;

const PID: i64 = 7;
const EPOCH: i16 = 3;
const T0: i64 = 1_000;
const TIMEOUT: i32 = 60_000;

fn tp(topic: &str, partition: i32) -> (String, i32) {
    (topic.to_owned(), partition)
}

/// Metadata of producer `PID`/`EPOCH` in `state`, with partition a-0 when a transaction is on.
fn meta(state: TxnState) -> TxnMetadata {
    let in_txn = matches!(state, TxnState::Ongoing | TxnState::PrepareCommit | TxnState::PrepareAbort);
    TxnMetadata {
        producer_id: PID,
        producer_epoch: EPOCH,
        timeout_ms: TIMEOUT,
        state,
        partitions: if in_txn { [tp("a", 0)].into() } else { Default::default() },
        start_ms: if in_txn { T0 } else { -1 },
        last_update_ms: T0,
    }
}

fn ready(step: Result<InitStep, ResponseError>) -> TxnMetadata {
    match step {
        Ok(InitStep::Ready(m)) => m,
        other => panic!("expected Ready, got {other:?}"),
    }
}

fn prepared(step: Result<EndStep, ResponseError>) -> TxnMetadata {
    match step {
        Ok(EndStep::Prepare(m)) => m,
        other => panic!("expected Prepare, got {other:?}"),
    }
}

const IDLE: [TxnState; 3] = [TxnState::Empty, TxnState::CompleteCommit, TxnState::CompleteAbort];
const PREPARE: [TxnState; 2] = [TxnState::PrepareCommit, TxnState::PrepareAbort];

#[test]
fn states_use_kafkas_names() {
    for state in TxnState::ALL {
        assert_eq!(TxnState::from_name(state.name()), Some(state));
        // The stored JSON uses the same names, so the topic reads like Kafka's tools print.
        assert_eq!(serde_json::to_string(&state).unwrap(), format!("\"{}\"", state.name()));
    }
    assert_eq!(TxnState::PrepareCommit.name(), "PrepareCommit");
    assert_eq!(TxnState::from_name("Dead"), None);
    assert_eq!(TxnState::from_name("ongoing"), None);
}

#[test]
fn transactional_ids_hash_like_groups() {
    for id in ["my-group", "", "txn-1", "ünïcode"] {
        assert_eq!(partition_for_transaction(id, 50), crate::offsets::partition_for_group(id, 50));
    }
    assert_eq!(partition_for_transaction("my-group", 50), 12);
}

#[test]
fn init_refuses_timeouts_outside_kafkas_range() {
    for timeout in [0, -1, MAX_TIMEOUT_MS + 1, i32::MIN] {
        assert_eq!(init(None, timeout, None, T0), Err(ResponseError::InvalidTransactionTimeout));
        let m = meta(TxnState::Empty);
        assert_eq!(init(Some(&m), timeout, None, T0), Err(ResponseError::InvalidTransactionTimeout));
    }
    assert_eq!(init(None, MAX_TIMEOUT_MS, None, T0), Ok(InitStep::NeedProducerId));
}

#[test]
fn a_new_transactional_id_gets_a_fresh_producer() {
    assert_eq!(init(None, TIMEOUT, None, T0), Ok(InitStep::NeedProducerId));
    // A KIP-360 retry naming an id the coordinator lost still gets a new producer, as in Kafka.
    assert_eq!(init(None, TIMEOUT, Some((PID, EPOCH)), T0), Ok(InitStep::NeedProducerId));
    let m = fresh(PID, TIMEOUT, T0);
    assert_eq!((m.producer_id, m.producer_epoch, m.state), (PID, 0, TxnState::Empty));
    assert_eq!((m.timeout_ms, m.start_ms, m.last_update_ms), (TIMEOUT, -1, T0));
    assert!(m.partitions.is_empty());
}

#[test]
fn init_from_an_idle_state_bumps_the_epoch() {
    for state in IDLE {
        let m = ready(init(Some(&meta(state)), 5_000, None, T0 + 1));
        let expected = TxnMetadata {
            producer_epoch: EPOCH + 1,
            timeout_ms: 5_000,
            state: TxnState::Empty,
            last_update_ms: T0 + 1,
            ..meta(TxnState::Empty)
        };
        assert_eq!(m, expected, "from {state:?}");
    }
}

#[test]
fn init_with_an_exhausted_epoch_needs_a_new_producer_id() {
    for epoch in [i16::MAX - 1, i16::MAX] {
        let m = TxnMetadata { producer_epoch: epoch, ..meta(TxnState::CompleteCommit) };
        assert_eq!(init(Some(&m), TIMEOUT, None, T0), Ok(InitStep::NeedProducerId));
    }
    let m = TxnMetadata { producer_epoch: i16::MAX - 2, ..meta(TxnState::Empty) };
    assert_eq!(ready(init(Some(&m), TIMEOUT, None, T0)).producer_epoch, i16::MAX - 1);
}

#[test]
fn init_while_markers_are_written_is_concurrent() {
    for state in PREPARE {
        assert_eq!(init(Some(&meta(state)), TIMEOUT, None, T0), Err(ResponseError::ConcurrentTransactions));
    }
}

#[test]
fn init_during_a_transaction_aborts_it_first() {
    let m = meta(TxnState::Ongoing);
    let Ok(InitStep::AbortFirst(next)) = init(Some(&m), 5_000, None, T0 + 9) else { panic!("expected AbortFirst") };
    let expected =
        TxnMetadata { producer_epoch: EPOCH + 1, state: TxnState::PrepareAbort, last_update_ms: T0 + 9, ..m.clone() };
    assert_eq!(next, expected);
    // The old producer is fenced at once, before the abort completes.
    assert_eq!(end(&next, PID, EPOCH, true, T0 + 10), Err(ResponseError::ProducerFenced));
}

#[test]
fn init_checks_the_producer_the_client_expects() {
    let m = meta(TxnState::CompleteAbort);
    assert_eq!(ready(init(Some(&m), TIMEOUT, Some((PID, EPOCH)), T0)).producer_epoch, EPOCH + 1);
    for expected in [(PID, EPOCH - 1), (PID + 1, EPOCH), (PID, EPOCH + 1)] {
        assert_eq!(init(Some(&m), TIMEOUT, Some(expected), T0), Err(ResponseError::ProducerFenced));
    }
}

#[test]
fn a_reinit_fences_the_previous_producer() {
    let old = fresh(PID, TIMEOUT, T0);
    let old = add_partitions(&old, PID, 0, &[tp("a", 0)], T0).unwrap().unwrap();
    let prepared = match init(Some(&old), TIMEOUT, None, T0 + 1) {
        Ok(InitStep::AbortFirst(m)) => m,
        other => panic!("expected AbortFirst, got {other:?}"),
    };
    let aborted = complete(&prepared, T0 + 2);
    let new = ready(init(Some(&aborted), TIMEOUT, None, T0 + 3));
    assert_eq!((new.producer_id, new.producer_epoch), (PID, 2));

    assert_eq!(add_partitions(&new, PID, 0, &[tp("a", 0)], T0), Err(ResponseError::ProducerFenced));
    assert_eq!(end(&new, PID, 0, true, T0), Err(ResponseError::ProducerFenced));
    assert_eq!(check_producer(&new, PID, 0), Err(ResponseError::ProducerFenced));
    assert_eq!(init(Some(&new), TIMEOUT, Some((PID, 0)), T0), Err(ResponseError::ProducerFenced));
    assert!(add_partitions(&new, PID, 2, &[tp("a", 0)], T0).unwrap().is_some());
}

#[test]
fn requests_of_another_producer_are_refused() {
    for state in TxnState::ALL {
        let m = meta(state);
        let parts = [tp("a", 0)];
        assert_eq!(add_partitions(&m, PID + 1, EPOCH, &parts, T0), Err(ResponseError::InvalidProducerIdMapping));
        assert_eq!(end(&m, PID + 1, EPOCH, true, T0), Err(ResponseError::InvalidProducerIdMapping));
        assert_eq!(check_producer(&m, PID + 1, EPOCH), Err(ResponseError::InvalidProducerIdMapping));
        for epoch in [EPOCH - 1, EPOCH + 1] {
            assert_eq!(add_partitions(&m, PID, epoch, &parts, T0), Err(ResponseError::ProducerFenced));
            assert_eq!(end(&m, PID, epoch, false, T0), Err(ResponseError::ProducerFenced));
            assert_eq!(check_producer(&m, PID, epoch), Err(ResponseError::ProducerFenced));
        }
    }
}

#[test]
fn nothing_is_added_while_markers_are_written() {
    for state in PREPARE {
        let m = meta(state);
        assert_eq!(add_partitions(&m, PID, EPOCH, &[tp("b", 1)], T0), Err(ResponseError::ConcurrentTransactions));
        assert_eq!(check_producer(&m, PID, EPOCH), Err(ResponseError::ConcurrentTransactions));
    }
    for state in [TxnState::Empty, TxnState::Ongoing, TxnState::CompleteCommit, TxnState::CompleteAbort] {
        assert_eq!(check_producer(&meta(state), PID, EPOCH), Ok(()));
    }
}

#[test]
fn adding_partitions_starts_a_transaction() {
    for state in IDLE {
        let next = add_partitions(&meta(state), PID, EPOCH, &[tp("b", 1), tp("a", 0)], T0 + 5).unwrap().unwrap();
        assert_eq!(next.state, TxnState::Ongoing);
        assert_eq!(next.partitions, [tp("a", 0), tp("b", 1)].into());
        assert_eq!((next.start_ms, next.last_update_ms), (T0 + 5, T0 + 5));
        assert_eq!((next.producer_id, next.producer_epoch), (PID, EPOCH));
    }
}

#[test]
fn adding_to_an_ongoing_transaction_keeps_its_start() {
    let m = meta(TxnState::Ongoing);
    assert_eq!(add_partitions(&m, PID, EPOCH, &[tp("a", 0)], T0 + 5), Ok(None));
    assert_eq!(add_partitions(&m, PID, EPOCH, &[], T0 + 5), Ok(None));
    let next = add_partitions(&m, PID, EPOCH, &[tp("a", 0), tp("a", 1)], T0 + 5).unwrap().unwrap();
    assert_eq!(next.partitions, [tp("a", 0), tp("a", 1)].into());
    assert_eq!((next.state, next.start_ms, next.last_update_ms), (TxnState::Ongoing, T0, T0 + 5));
}

#[test]
fn ending_an_ongoing_transaction_prepares_it() {
    let m = meta(TxnState::Ongoing);
    for (commit, state) in [(true, TxnState::PrepareCommit), (false, TxnState::PrepareAbort)] {
        let next = prepared(end(&m, PID, EPOCH, commit, T0 + 5));
        assert_eq!(next, TxnMetadata { state, last_update_ms: T0 + 5, ..m.clone() });
    }
}

#[test]
fn end_answers_retries_and_refuses_contradictions() {
    use TxnState::*;
    let cases = [
        (PrepareCommit, true, Err(ResponseError::ConcurrentTransactions)),
        (PrepareAbort, false, Err(ResponseError::ConcurrentTransactions)),
        (PrepareCommit, false, Err(ResponseError::InvalidTxnState)),
        (PrepareAbort, true, Err(ResponseError::InvalidTxnState)),
        (CompleteCommit, true, Ok(EndStep::AlreadyDone)),
        (CompleteAbort, false, Ok(EndStep::AlreadyDone)),
        (CompleteCommit, false, Err(ResponseError::InvalidTxnState)),
        (CompleteAbort, true, Err(ResponseError::InvalidTxnState)),
        (Empty, true, Err(ResponseError::InvalidTxnState)),
        (Empty, false, Err(ResponseError::InvalidTxnState)),
    ];
    for (state, commit, expected) in cases {
        assert_eq!(end(&meta(state), PID, EPOCH, commit, T0), expected, "{state:?} commit={commit}");
    }
}

#[test]
fn complete_finishes_only_a_prepared_transaction() {
    for (from, to) in
        [(TxnState::PrepareCommit, TxnState::CompleteCommit), (TxnState::PrepareAbort, TxnState::CompleteAbort)]
    {
        let done = complete(&meta(from), T0 + 7);
        let expected = TxnMetadata {
            state: to,
            partitions: Default::default(),
            start_ms: -1,
            last_update_ms: T0 + 7,
            ..meta(from)
        };
        assert_eq!(done, expected);
    }
    for state in [TxnState::Empty, TxnState::Ongoing, TxnState::CompleteCommit, TxnState::CompleteAbort] {
        assert_eq!(complete(&meta(state), T0 + 7), meta(state));
    }
}

#[test]
fn a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let m = meta(TxnState::Ongoing);
    let deadline = T0 + i64::from(TIMEOUT);
    assert_eq!(timed_out(&m, deadline), None);
    let aborted = timed_out(&m, deadline + 1).expect("expired");
    let expected =
        TxnMetadata { producer_epoch: EPOCH + 1, state: TxnState::PrepareAbort, last_update_ms: deadline + 1, ..m };
    assert_eq!(aborted, expected);
    assert_eq!(end(&aborted, PID, EPOCH, true, deadline + 2), Err(ResponseError::ProducerFenced));
    for state in [TxnState::Empty, TxnState::PrepareCommit, TxnState::PrepareAbort, TxnState::CompleteCommit] {
        assert_eq!(timed_out(&meta(state), i64::MAX), None, "{state:?}");
    }
}

#[test]
fn an_operator_aborts_only_an_ongoing_transaction() {
    let m = meta(TxnState::Ongoing);
    let aborted = abort_by_operator(&m, T0 + 3).unwrap();
    assert_eq!((aborted.state, aborted.producer_epoch), (TxnState::PrepareAbort, EPOCH + 1));
    assert_eq!((aborted.partitions, aborted.last_update_ms), (m.partitions, T0 + 3));
    for state in [TxnState::Empty, TxnState::PrepareCommit, TxnState::PrepareAbort, TxnState::CompleteAbort] {
        assert_eq!(abort_by_operator(&meta(state), T0), Err(ResponseError::InvalidTxnState));
    }
}

#[test]
fn fencing_at_the_last_epoch_does_not_overflow() {
    let m = TxnMetadata { producer_epoch: i16::MAX, ..meta(TxnState::Ongoing) };
    assert_eq!(abort_by_operator(&m, T0).unwrap().producer_epoch, i16::MAX);
    assert_eq!(timed_out(&m, i64::MAX).unwrap().producer_epoch, i16::MAX);
}

#[test]
fn only_the_ongoing_transactions_partitions_verify() {
    let m = meta(TxnState::Ongoing);
    assert!(verifies(&m, PID, EPOCH, "a", 0));
    assert!(!verifies(&m, PID, EPOCH, "a", 1));
    assert!(!verifies(&m, PID, EPOCH, "b", 0));
    assert!(!verifies(&m, PID + 1, EPOCH, "a", 0));
    assert!(!verifies(&m, PID, EPOCH + 1, "a", 0));
    for state in PREPARE {
        assert!(!verifies(&meta(state), PID, EPOCH, "a", 0));
    }
}

#[test]
fn a_whole_transaction_commits_then_the_next_one_starts() {
    let m = fresh(PID, TIMEOUT, T0);
    let m = add_partitions(&m, PID, 0, &[tp("a", 0), tp("b", 2)], T0 + 1).unwrap().unwrap();
    assert!(verifies(&m, PID, 0, "b", 2));
    let m = prepared(end(&m, PID, 0, true, T0 + 2));
    let m = complete(&m, T0 + 3);
    assert_eq!(m.state, TxnState::CompleteCommit);
    assert_eq!(end(&m, PID, 0, true, T0 + 4), Ok(EndStep::AlreadyDone));
    let m = add_partitions(&m, PID, 0, &[tp("c", 0)], T0 + 5).unwrap().unwrap();
    assert_eq!((m.partitions.len(), m.start_ms), (1, T0 + 5));
}

mod codec;

#[test]
fn only_an_idle_id_expires_and_only_after_the_expiration() {
    use TxnState::*;
    for state in [Empty, CompleteCommit, CompleteAbort] {
        assert!(!expired(&meta(state), T0 + 1_000, 1_000), "{state:?}: not past the expiration yet");
        assert!(expired(&meta(state), T0 + 1_001, 1_000), "{state:?}");
    }
    for state in [Ongoing, PrepareCommit, PrepareAbort] {
        assert!(!expired(&meta(state), i64::MAX, 1_000), "{state:?}: a transaction is open or being decided");
    }
}
