//! Decompression of a produced batch's records, capped so a small "bomb" cannot exhaust
//! memory: every codec stops at [`MAX_DECOMPRESSED_BATCH`], and snappy's declared block sizes
//! are checked against what the block could possibly hold before anything is allocated.

use std::io::Read;

/// Largest decompressed size accepted for one batch.
pub const MAX_DECOMPRESSED_BATCH: u64 = 256 * 1024 * 1024;

/// The header xerial's snappy-java writes before its blocks (what Kafka clients send): magic,
/// version 1, compatible version 1. Anything else is read as one raw block, as kafka-python
/// and kafka-protocol do, so every reader agrees on what the bytes mean.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// A snappy copy element turns at most 3 input bytes into 64 output bytes, so no block can
/// honestly declare more than 22 times its own size; a larger claim is a lie to refuse
/// before allocating it.
const SNAPPY_MAX_RATIO: usize = 22;

/// Decompresses the records of a batch compressed with `codec` (the attribute bits: 1 gzip,
/// 2 snappy, 3 lz4, 4 zstd). The error says why the bytes do not decompress.
pub(crate) fn decompress(codec: u8, compressed: &[u8]) -> Result<Vec<u8>, String> {
    let out = match codec {
        1 => read_capped(flate2::read::MultiGzDecoder::new(compressed)),
        2 => snappy(compressed),
        3 => lz4_frame(compressed),
        4 => zstd::stream::read::Decoder::with_buffer(compressed).map_err(|e| e.to_string()).and_then(read_capped),
        other => Err(format!("unknown compression codec {other}")),
    };
    out.map_err(|e| format!("records do not decompress: {e}"))
}

fn read_capped(reader: impl Read) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    reader.take(MAX_DECOMPRESSED_BATCH + 1).read_to_end(&mut out).map_err(|e| e.to_string())?;
    if out.len() as u64 > MAX_DECOMPRESSED_BATCH {
        return Err(format!("decompresses to more than {MAX_DECOMPRESSED_BATCH} bytes"));
    }
    Ok(out)
}

/// One complete lz4 frame and nothing after it. lz4's reader stops quietly when the input
/// ends mid-frame, and after the first frame; both would let a cut or padded batch through
/// that consumers then fail to read.
fn lz4_frame(compressed: &[u8]) -> Result<Vec<u8>, String> {
    let mut decoder = lz4::Decoder::new(compressed).map_err(|e| e.to_string())?;
    let out = read_capped(&mut decoder)?;
    let (rest, finished) = decoder.finish();
    finished.map_err(|_| "the lz4 frame is cut short".to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes follow the lz4 frame", rest.len()));
    }
    Ok(out)
}

/// Xerial-framed snappy (blocks of `u32 length + raw snappy`), or one raw snappy block when
/// the magic is absent, as snappy-java reads it.
fn snappy(compressed: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let Some(mut rest) = compressed.strip_prefix(XERIAL_HEADER) else {
        snappy_block(compressed, &mut out)?;
        return Ok(out);
    };
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<4>().ok_or("snappy block length cut short")?;
        let len = u32::from_be_bytes(*len) as usize;
        let block = tail.get(..len).ok_or_else(|| format!("snappy block of {len} bytes cut short"))?;
        snappy_block(block, &mut out)?;
        rest = &tail[len..];
    }
    Ok(out)
}

/// Appends one raw snappy block to `out`, refusing impossible or over-cap sizes first.
fn snappy_block(block: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let declared = snap::raw::decompress_len(block).map_err(|e| e.to_string())?;
    if declared > block.len().saturating_mul(SNAPPY_MAX_RATIO) {
        return Err(format!("snappy block of {} bytes claims {declared} bytes", block.len()));
    }
    let start = out.len();
    if (start + declared) as u64 > MAX_DECOMPRESSED_BATCH {
        return Err(format!("decompresses to more than {MAX_DECOMPRESSED_BATCH} bytes"));
    }
    out.resize(start + declared, 0);
    snap::raw::Decoder::new().decompress(block, &mut out[start..]).map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gzip_bomb_is_capped() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(MAX_DECOMPRESSED_BATCH >> 20) + 1 {
            enc.write_all(&zeros).expect("compress");
        }
        let compressed = enc.finish().expect("finish");
        let err = decompress(1, &compressed).unwrap_err();
        assert!(err.contains("more than"), "{err}");
    }

    #[test]
    fn a_snappy_block_that_lies_about_its_size_is_refused_before_allocating() {
        // A varint claiming 4 GiB followed by one literal byte.
        let lying = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, b'x'];
        let err = decompress(2, &lying).unwrap_err();
        assert!(err.contains("claims"), "{err}");
        let mut framed = XERIAL_HEADER.to_vec();
        framed.extend_from_slice(&(lying.len() as u32).to_be_bytes());
        framed.extend_from_slice(&lying);
        let err = decompress(2, &framed).unwrap_err();
        assert!(err.contains("claims"), "{err}");
    }

    #[test]
    fn snappy_raw_and_framed_round_trip() {
        let data = b"hello hello hello hello hello".repeat(100);
        let raw = snap::raw::Encoder::new().compress_vec(&data).expect("compress");
        assert_eq!(decompress(2, &raw).expect("raw"), data);
        let mut framed = XERIAL_HEADER.to_vec();
        for chunk in data.chunks(1000) {
            let block = snap::raw::Encoder::new().compress_vec(chunk).expect("compress");
            framed.extend_from_slice(&(block.len() as u32).to_be_bytes());
            framed.extend_from_slice(&block);
        }
        assert_eq!(decompress(2, &framed).expect("framed"), data);
        framed.pop();
        assert!(decompress(2, &framed).is_err(), "a cut block is refused");
    }

    #[test]
    fn cut_or_padded_streams_are_refused_for_every_codec() {
        use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
        let data = b"chronik chronik chronik ".repeat(50);
        for codec in 1..=4u8 {
            let mut out = bytes::BytesMut::new();
            let fill = |b: &mut bytes::BytesMut| {
                b.extend_from_slice(&data);
                Ok(())
            };
            match codec {
                1 => Gzip::compress(&mut out, fill),
                2 => Snappy::compress(&mut out, fill),
                3 => Lz4::compress(&mut out, fill),
                _ => Zstd::compress(&mut out, fill),
            }
            .expect("compress");
            assert_eq!(decompress(codec, &out).expect("whole stream"), data, "codec {codec}");
            for cut in 1..=4 {
                assert!(decompress(codec, &out[..out.len() - cut]).is_err(), "codec {codec} cut by {cut}");
            }
            let padded = [&out[..], b"\x01\x02\x03\x04"].concat();
            assert!(decompress(codec, &padded).is_err(), "codec {codec} with trailing bytes");
        }
    }

    #[test]
    fn unknown_codecs_are_refused() {
        for codec in [0, 5, 6, 7] {
            assert!(decompress(codec, b"abc").is_err(), "{codec}");
        }
    }
}
