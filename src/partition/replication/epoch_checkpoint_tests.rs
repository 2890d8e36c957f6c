//! The `leader-epoch-checkpoint` text: round trips and every way decoding refuses a file.

use super::*;
use crate::partition::replication::EpochEndOffset;

/// Decodes `text`, expecting an error.
fn decode_err(text: &str) -> EpochCheckpointError {
    match LeaderEpochCache::decode(text) {
        Ok(c) => panic!("{text:?} decoded to {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn encodes_as_kafka_does() {
    let mut c = LeaderEpochCache::new();
    c.assign(0, 0);
    c.assign(3, 120);
    assert_eq!(c.encode(), "0\n2\n0 0\n3 120\n");
    assert_eq!(LeaderEpochCache::new().encode(), "0\n0\n");
}

#[test]
fn round_trips() {
    let mut c = LeaderEpochCache::new();
    assert_eq!(LeaderEpochCache::decode(&c.encode()), Ok(c.clone()));
    for (epoch, start) in [(0, 0), (1, 7), (4, 1_000), (i32::MAX, i64::MAX)] {
        c.assign(epoch, start);
        assert_eq!(LeaderEpochCache::decode(&c.encode()), Ok(c.clone()));
    }
}

#[test]
fn accepts_crlf_any_whitespace_and_no_final_newline() {
    let c = LeaderEpochCache::decode("0\r\n2\r\n0\t0\r\n3   120").expect("valid");
    assert_eq!(c.entries(), [EpochEntry { epoch: 0, start_offset: 0 }, EpochEntry { epoch: 3, start_offset: 120 }]);
}

#[test]
fn refuses_missing_lines() {
    assert_eq!(decode_err(""), EpochCheckpointError::Missing { what: "version" });
    assert_eq!(decode_err("0\n"), EpochCheckpointError::Missing { what: "count" });
}

#[test]
fn refuses_other_versions() {
    assert_eq!(decode_err("1\n0\n"), EpochCheckpointError::UnsupportedVersion { found: "1".into() });
    assert!(matches!(decode_err("x\n0\n"), EpochCheckpointError::UnsupportedVersion { .. }));
}

#[test]
fn refuses_a_bad_count() {
    for bad in ["-1", "two", "", "99999999999999999999999"] {
        assert_eq!(decode_err(&format!("0\n{bad}\n")), EpochCheckpointError::BadCount { found: bad.into() });
    }
}

#[test]
fn refuses_malformed_entries_naming_the_line() {
    for bad in ["1", "1 2 3", "a 2", "1 b", "", "3000000000 0", "1 99999999999999999999"] {
        let err = decode_err(&format!("0\n2\n0 0\n{bad}\n"));
        assert_eq!(err, EpochCheckpointError::BadEntry { line: 4, found: bad.into() }, "line {bad:?}");
    }
}

#[test]
fn refuses_entries_out_of_order_or_negative() {
    let cases = [
        ("0\n1\n-1 0\n", 3, "negative"),
        ("0\n1\n0 -5\n", 3, "negative"),
        ("0\n2\n2 0\n2 10\n", 4, "epoch not greater than the previous entry's"),
        ("0\n2\n2 10\n1 20\n", 4, "epoch not greater than the previous entry's"),
        ("0\n2\n1 10\n2 10\n", 4, "start offset not greater than the previous entry's"),
        ("0\n2\n1 10\n2 5\n", 4, "start offset not greater than the previous entry's"),
    ];
    for (text, line, reason) in cases {
        match decode_err(text) {
            EpochCheckpointError::InvalidEntry { line: l, reason: r, .. } => {
                assert_eq!((l, r), (line, reason), "{text:?}")
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn refuses_a_count_that_does_not_match() {
    assert_eq!(decode_err("0\n3\n0 0\n1 5\n"), EpochCheckpointError::CountMismatch { expected: 3, found: 2 });
    assert_eq!(decode_err("0\n0\n0 0\n"), EpochCheckpointError::CountMismatch { expected: 0, found: 1 });
    // A huge count is compared, never allocated.
    assert_eq!(
        decode_err(&format!("0\n{}\n", u64::MAX)),
        EpochCheckpointError::CountMismatch { expected: u64::MAX, found: 0 }
    );
}

#[test]
fn refuses_a_trailing_blank_line() {
    assert_eq!(decode_err("0\n1\n0 0\n\n"), EpochCheckpointError::BadEntry { line: 4, found: String::new() });
}

#[test]
fn quotes_only_the_start_of_a_long_bad_line() {
    let garbage = "z".repeat(10_000);
    match decode_err(&garbage) {
        EpochCheckpointError::UnsupportedVersion { found } => assert_eq!(found.len(), 40),
        other => panic!("{other:?}"),
    }
}

#[test]
fn error_messages_name_the_line() {
    let err = decode_err("0\n1\nnope\n");
    assert_eq!(err.to_string(), "leader-epoch checkpoint line 3: expected `<epoch> <start_offset>`, got \"nope\"");
}

#[test]
fn decoded_history_answers_like_the_original() {
    let c = LeaderEpochCache::decode("0\n3\n0 0\n2 50\n5 120\n").expect("valid");
    assert_eq!(c.end_offset_for(3, 200), Some(EpochEndOffset { epoch: 2, end_offset: 120 }));
    assert_eq!(c.latest_epoch(), Some(5));
}
