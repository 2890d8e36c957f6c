//! Records of `__transaction_state`: the key names the transactional id, the value is its
//! whole [`TxnMetadata`], both JSON (like `__consumer_offsets`, so the topic stays readable with
//! any Kafka tool). The latest record of an id wins; a record without a value is a tombstone.

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use serde::{Deserialize, Serialize};

use super::TxnMetadata;
use crate::records::encode_batch;

/// One record of `__transaction_state`: a transactional id and its metadata (`None`:
/// tombstone, the id expired).
pub type TxnRecord = (String, Option<TxnMetadata>);

/// The key of a record. Unknown fields are refused so that a key of another kind (an offset
/// commit produced here by mistake) is not read as ours.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TxnKey {
    /// The transactional id the record describes.
    transactional_id: String,
}

/// Encodes records as one record batch, ready to append.
pub fn encode_txn_records(records: &[TxnRecord], now_ms: i64) -> Result<Bytes, String> {
    let entries = records
        .iter()
        .map(|(transactional_id, value)| {
            let key = TxnKey { transactional_id: transactional_id.clone() };
            let key = serde_json::to_vec(&key).map_err(|e| e.to_string())?;
            let value = value.as_ref().map(serde_json::to_vec).transpose().map_err(|e| e.to_string())?;
            Ok((Some(Bytes::from(key)), value.map(Bytes::from)))
        })
        .collect::<Result<Vec<_>, String>>()?;
    encode_batch(&entries, now_ms, Compression::None)
}

/// Decodes the records of batches read back from `__transaction_state`, in log order.
/// Control records (markers of someone's transactional write to the topic) and records that
/// are not ours are skipped.
pub fn decode_txn_records(mut batches: Bytes) -> Result<Vec<TxnRecord>, String> {
    let sets = RecordBatchDecoder::decode_all(&mut batches).map_err(|e| format!("{e:#}"))?;
    let records = sets.into_iter().flat_map(|set| set.records);
    Ok(records
        .filter(|r| !r.control)
        .filter_map(|r| {
            let key: TxnKey = serde_json::from_slice(r.key.as_deref()?).ok()?;
            let value = match r.value {
                None => None,
                Some(v) => Some(serde_json::from_slice(&v).ok()?),
            };
            Some((key.transactional_id, value))
        })
        .collect())
}
