//! Deep validation of produced record batches. The CRC already proves an uncompressed batch
//! arrived intact; a compressed one must also decompress and hold the records its header
//! claims, or the producer gets CORRUPT_MESSAGE instead of a silent success (consumers could
//! never read it back). Decompression is capped so a small "bomb" cannot exhaust memory.
//! [`encode_batch`] builds the batches the broker writes itself.

use std::io::Read;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::compression::{Decompressor, Snappy};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// Largest decompressed size accepted for one batch.
pub const MAX_DECOMPRESSED_BATCH: u64 = 256 * 1024 * 1024;

/// Bits 0–2 of the batch attributes name the codec.
const COMPRESSION_MASK: i16 = 0x7;
/// Offset of the attributes in a v2 batch.
const ATTRIBUTES_AT: usize = 21;

/// Checks every compressed batch decodes to exactly its declared records.
pub fn validate_batches(batches: &[Bytes]) -> Result<(), String> {
    for (i, batch) in batches.iter().enumerate() {
        let Some(attrs) = batch.get(ATTRIBUTES_AT..ATTRIBUTES_AT + 2) else {
            return Err(format!("batch {i}: shorter than a batch header"));
        };
        if i16::from_be_bytes([attrs[0], attrs[1]]) & COMPRESSION_MASK == 0 {
            continue;
        }
        let mut buf = batch.clone();
        RecordBatchDecoder::decode_with_custom_compression(&mut buf, Some(capped_decompress))
            .map_err(|e| format!("batch {i}: records do not decode: {e:#}"))?;
    }
    Ok(())
}

/// Decompresses one batch's records with the same cap as produce validation (also used to
/// decode stored batches for replica digests).
pub(crate) fn capped_decompress(compressed: &mut Bytes, codec: Compression) -> anyhow::Result<Bytes> {
    let input = compressed.split_to(compressed.len());
    match codec {
        Compression::None => Ok(input),
        Compression::Gzip => read_capped(flate2::read::MultiGzDecoder::new(input.reader())),
        Compression::Lz4 => read_capped(lz4::Decoder::new(input.reader())?),
        Compression::Zstd => read_capped(zstd::stream::read::Decoder::new(input.reader())?),
        // Snappy expands at most ~21x per block, so the codec's own decoder is bounded by
        // the frame size limit already.
        Compression::Snappy => Snappy::decompress(&mut input.clone(), |b: &mut Bytes| Ok(b.split_to(b.len()))),
    }
}

fn read_capped(reader: impl Read) -> anyhow::Result<Bytes> {
    let mut out = Vec::new();
    reader.take(MAX_DECOMPRESSED_BATCH + 1).read_to_end(&mut out)?;
    if out.len() as u64 > MAX_DECOMPRESSED_BATCH {
        anyhow::bail!("decompresses to more than {MAX_DECOMPRESSED_BATCH} bytes");
    }
    Ok(Bytes::from(out))
}

/// Encodes `(key, value)` records as one v2 batch with no producer id, all stamped
/// `timestamp_ms` (the broker's own writes, such as committed offsets, and tests).
/// Consecutive sequences keep the encoder from splitting it into one batch per record.
pub fn encode_batch(
    entries: &[(Option<Bytes>, Option<Bytes>)],
    timestamp_ms: i64,
    compression: Compression,
) -> Result<Bytes, String> {
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: timestamp_ms,
            key: key.clone(),
            value: value.clone(),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).map_err(|e| e.to_string())?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(compression: Compression, n: i32) -> Bytes {
        let entries: Vec<_> = (0..n).map(|i| (None, Some(Bytes::from(format!("value-{i}").repeat(10))))).collect();
        encode_batch(&entries, 1_700_000_000_000, compression).expect("encode")
    }

    #[test]
    fn every_codec_validates() {
        for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            validate_batches(&[batch(codec, 50)]).unwrap_or_else(|e| panic!("{codec:?}: {e}"));
        }
    }

    #[test]
    fn garbage_inside_a_compressed_batch_is_refused() {
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let mut bytes = BytesMut::from(&batch(codec, 50)[..]);
            let end = bytes.len();
            for b in &mut bytes[61..end] {
                *b ^= 0x5a;
            }
            assert!(validate_batches(&[bytes.freeze()]).is_err(), "{codec:?}");
        }
    }

    #[test]
    fn a_gzip_bomb_is_capped() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(MAX_DECOMPRESSED_BATCH >> 20) + 1 {
            enc.write_all(&zeros).expect("compress");
        }
        let compressed = Bytes::from(enc.finish().expect("finish"));
        let err = capped_decompress(&mut compressed.clone(), Compression::Gzip).unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
    }
}
