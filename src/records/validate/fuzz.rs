//! Seeded random mutations of real batches: the validator never panics, and every batch it
//! accepts decodes with kafka-protocol's decoder to exactly the records its header claims,
//! matching what the walk saw. `VALIDATOR_FUZZ_SEED` / `VALIDATOR_FUZZ_CASES` override the run (not `CHRONIK_*`,
//! which the broker reads as its own config).
//!
//! Also the by-hand cost measurement (`--ignored`, run in release).

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use super::super::test_support::*;
use super::*;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A valid batch with random codec, size, keys, values, headers and producer.
fn random_batch(rng: &mut fastrand::Rng) -> Vec<u8> {
    let codec = CODECS[rng.usize(..CODECS.len())];
    let producer_id = if rng.bool() { rng.i64(0..1000) } else { -1 };
    let base_ts = rng.i64(1_600_000_000_000..1_800_000_000_000);
    let records: Vec<_> = (0..rng.usize(1..12))
        .map(|i| {
            let mut r = record(i, producer_id, base_ts + rng.i64(-5000..5000));
            r.key = rng.bool().then(|| Bytes::from(vec![rng.u8(..); rng.usize(0..20)]));
            r.value = rng.bool().then(|| Bytes::from(vec![rng.u8(..); rng.usize(0..300)]));
            if rng.bool() {
                r.headers.clear();
            }
            r
        })
        .collect();
    let mut b = encode(&records, codec);
    if producer_id < 0 {
        put(&mut b, 53, &(-1i32).to_be_bytes());
    }
    b
}

/// One random fault; the CRC is always recomputed so only deeper checks can catch it.
fn mutate(rng: &mut fastrand::Rng, b: &mut Vec<u8>) {
    let plain = match codec_of(b) {
        0 => None,
        codec => super::super::decompress::decompress(codec, &b[RECORDS_AT..]).ok(),
    };
    if let Some(mut plain) = plain.filter(|_| rng.bool()) {
        // Fault the plain records and compress them again, so the walk sees it.
        mutate_bytes(rng, &mut plain);
        *b = with_plain_records(b, &plain);
        return;
    }
    match rng.u8(..4) {
        0 => {
            let at = rng.usize(8..b.len());
            b[at] ^= 1 << rng.u8(..8);
        }
        1 => {
            let field = [23, 27, 43, 51, 53, 57][rng.usize(..6)];
            b[field + rng.usize(..4)] = rng.u8(..);
        }
        _ => {
            let mut body = b.split_off(RECORDS_AT);
            mutate_bytes(rng, &mut body);
            b.extend_from_slice(&body);
            if rng.u8(..8) != 0 {
                fix_length(b);
            }
        }
    }
    fix_crc(b);
}

/// Flips, overwrites, cuts, inserts or deletes bytes.
fn mutate_bytes(rng: &mut fastrand::Rng, bytes: &mut Vec<u8>) {
    if bytes.is_empty() {
        bytes.push(rng.u8(..));
        return;
    }
    let at = rng.usize(..bytes.len());
    match rng.u8(..5) {
        0 => bytes[at] ^= 1 << rng.u8(..8),
        1 => bytes[at] = [0x00, 0x01, 0x7f, 0x80, 0xff][rng.usize(..5)],
        2 => bytes.truncate(at),
        3 => bytes.insert(at, rng.u8(..)),
        _ => drop(bytes.remove(at)),
    }
}

/// Decodes an accepted batch and compares it with the header and with what the walk saw.
/// What the walk saw of one record: timestamp, key, value, header count.
type Seen = (i64, Option<Vec<u8>>, Option<Vec<u8>>, usize);

fn assert_decodes_as_walked(batch: &Bytes, seen: &[Seen]) {
    let header = BatchHeader::parse(batch).expect("accepted header");
    let set = RecordBatchDecoder::decode(&mut batch.clone()).expect("kafka-protocol decodes what was accepted");
    assert_eq!(set.records.len(), header.record_count as usize);
    assert_eq!(seen.len(), set.records.len());
    for (i, (r, (ts, key, value, headers))) in set.records.iter().zip(seen).enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.timestamp, *ts);
        assert_eq!(r.key.as_deref(), key.as_deref());
        assert_eq!(r.value.as_deref(), value.as_deref());
        // kafka-protocol keeps headers in a map, so repeated keys fold into one.
        assert!(r.headers.len() <= *headers && (r.headers.is_empty() == (*headers == 0)));
    }
}

#[test]
fn random_mutations_never_panic_and_accepted_batches_decode_as_claimed() {
    let seed = env_u64("VALIDATOR_FUZZ_SEED", 0x5eed_ba7c);
    let cases = env_u64("VALIDATOR_FUZZ_CASES", 3000);
    println!("batch mutation seed {seed:#x}, {cases} cases");
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..cases {
        let mut b = random_batch(&mut rng);
        for _ in 0..rng.usize(1..3) {
            mutate(&mut rng, &mut b);
        }
        let mut seen = Vec::new();
        let visit = |r: RecordView<'_>| {
            seen.push((r.timestamp, r.key.map(<[u8]>::to_vec), r.value.map(<[u8]>::to_vec), r.header_count))
        };
        match validate_visiting(Some(&Bytes::from(b)), &rules(), visit) {
            Ok(batch) => {
                accepted += 1;
                assert_decodes_as_walked(&batch, &seen);
            }
            Err(e) => {
                refused += 1;
                assert!(!e.to_string().is_empty(), "case {case}");
            }
        }
    }
    println!("accepted {accepted}, refused {refused}");
    assert!(refused > cases / 2, "most mutations break something: {refused} of {cases}");
    assert!(accepted > 0, "some mutations (values, keys) keep a valid batch");
}

/// Nanoseconds per record of `f` over `rounds` passes of a `records`-record batch.
fn ns_per_record(rounds: u32, records: u32, mut f: impl FnMut()) -> f64 {
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(rounds * records)
}

/// Prints the validator's cost per record next to its parts: the CRC (paid before this
/// validator existed), decompression, the in-place walk, and kafka-protocol's full decode (what
/// the broker used to run on compressed batches). Run by hand, on an idle machine:
/// `cargo test --release -p chronik measure_validation_cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_validation_cost() {
    use std::hint::black_box;
    let n = 500u32;
    for (codec, name) in [(Compression::None, "none"), (Compression::Lz4, "lz4")] {
        for value_len in [100, 1024] {
            let records: Vec<_> = (0..n as usize)
                .map(|i| {
                    let mut r = record(i, 7, 1_700_000_000_000 + i as i64);
                    r.value = Some(Bytes::from(vec![b'x'; value_len]));
                    r
                })
                .collect();
            let b = Bytes::from(encode(&records, codec));
            let plain = plain_records(&b);
            let rounds = 2000;
            let full = ns_per_record(rounds, n, || drop(black_box(validate_produce(Some(black_box(&b)), &rules()))));
            let crc = ns_per_record(rounds, n, || drop(black_box(verify_crc(black_box(&b)))));
            let unzip = match codec {
                Compression::None => 0.0,
                _ => ns_per_record(rounds, n, || drop(black_box(plain_records(black_box(&b))))),
            };
            let walk = ns_per_record(rounds, n, || {
                drop(black_box(super::walk_records(black_box(&plain), n as i32, 1_700_000_000_000, |_| {})))
            });
            let decode = ns_per_record(rounds / 4, n, || drop(black_box(RecordBatchDecoder::decode(&mut b.clone()))));
            println!(
                "{name:>4} {value_len:>4} B values: validate {full:6.1} ns/record = CRC {crc:5.1} + \
                 decompress {unzip:6.1} + walk {walk:5.1}; kafka-protocol decode {decode:6.1}"
            );
        }
    }
}
