//! Finding the first differing offset of two replicas whose epoch digests differ: chunk digests
//! narrow the range until a bounded batch list covers it, then the first differing batch's
//! records give the offset.

use chronik::log::digest::{BatchDigest, DigestAnswer, RangeDigest, RecordDigest};

use super::{Difference, Replica, ask};
use crate::cli::{AdminHttp, PartitionSummary};

/// Batches a replica lists at once; above this the range is cut into chunks first.
const BATCH_LIMIT: usize = 256;
/// Chunks per narrowing round.
const PARTS: usize = 16;
/// Rounds before giving up on narrowing (each cuts the range about `PARTS`-fold).
const MAX_ROUNDS: usize = 32;

/// The leader (`a`) and a follower (`b`) of one partition.
pub(super) struct Pair<'a> {
    /// The HTTP client.
    pub client: &'a AdminHttp,
    /// The partition.
    pub p: &'a PartitionSummary,
    /// The leader.
    pub a: &'a Replica,
    /// The follower compared with it.
    pub b: &'a Replica,
}

/// Index of the first entry where `a` and `b` differ (one ending early counts).
pub fn first_diff<T: PartialEq>(a: &[T], b: &[T]) -> Option<usize> {
    let common = a.iter().zip(b).position(|(x, y)| x != y);
    common.or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}

impl Pair<'_> {
    /// The first difference, given the two replicas' (differing) epoch digests over `[.., to)`.
    pub async fn first_difference(
        &self,
        ea: &[RangeDigest],
        eb: &[RangeDigest],
        to: i64,
    ) -> Result<Difference, String> {
        let i = first_diff(ea, eb).unwrap_or(0);
        let starts = [ea.get(i), eb.get(i)].into_iter().flatten().map(|r| r.start_offset);
        let Some(mut lo) = starts.min() else {
            return Ok(Difference { offset: to, leader_epoch: None, what: "epoch digests differ".into() });
        };
        let mut hi = to;
        for _ in 0..MAX_ROUNDS {
            let query = format!("from={lo}&to={hi}&by=batches&limit={BATCH_LIMIT}");
            let (ba, complete_a) = self.batches(self.a, &query).await?;
            let (bb, complete_b) = self.batches(self.b, &query).await?;
            if complete_a && complete_b {
                return self.in_batches(&ba, &bb, lo, hi).await;
            }
            let Some((next_lo, next_hi)) = self.narrow(lo, hi).await? else { break };
            if (next_lo, next_hi) == (lo, hi) {
                break;
            }
            (lo, hi) = (next_lo, next_hi);
        }
        Ok(Difference { offset: lo, leader_epoch: None, what: format!("data differs in [{lo}, {hi})") })
    }

    /// The first differing chunk of `[lo, hi)`, as a range holding all of its batches.
    async fn narrow(&self, lo: i64, hi: i64) -> Result<Option<(i64, i64)>, String> {
        let query = format!("from={lo}&to={hi}&by=chunks&parts={PARTS}");
        let (ca, cb) = (self.chunks(self.a, &query).await?, self.chunks(self.b, &query).await?);
        let Some(j) = first_diff(&ca, &cb) else { return Ok(None) };
        let (Some(x), Some(y)) = (ca.get(j), cb.get(j)) else { return Ok(None) };
        let end = [x.data_end, y.data_end].into_iter().flatten().max().unwrap_or(x.end_offset);
        Ok(Some((x.start_offset, end.min(hi))))
    }

    /// The first difference between two complete batch lists of `[lo, hi)`.
    async fn in_batches(&self, ba: &[BatchDigest], bb: &[BatchDigest], lo: i64, hi: i64) -> Result<Difference, String> {
        let Some(k) = first_diff(ba, bb) else {
            return Ok(Difference { offset: lo, leader_epoch: None, what: "digests differ, batches agree".into() });
        };
        let difference = match (ba.get(k), bb.get(k)) {
            (Some(x), Some(y)) if (x.base_offset, x.last_offset) == (y.base_offset, y.last_offset) => {
                return self.in_records(x, lo, hi).await;
            }
            (Some(x), Some(y)) => Difference {
                offset: x.base_offset.min(y.base_offset),
                leader_epoch: Some(x.leader_epoch),
                what: format!(
                    "the leader has batch {}..={} there, the replica {}..={}",
                    x.base_offset, x.last_offset, y.base_offset, y.last_offset
                ),
            },
            (Some(x), None) => Difference {
                offset: x.base_offset,
                leader_epoch: Some(x.leader_epoch),
                what: format!("the replica lacks batch {}..={}", x.base_offset, x.last_offset),
            },
            (None, Some(y)) => Difference {
                offset: y.base_offset,
                leader_epoch: None,
                what: format!("the replica has batch {}..={} the leader lacks", y.base_offset, y.last_offset),
            },
            (None, None) => Difference { offset: lo, leader_epoch: None, what: "batch lists differ".into() },
        };
        Ok(difference)
    }

    /// The first differing record of batch `x`, which both replicas hold with different bytes.
    async fn in_records(&self, x: &BatchDigest, lo: i64, hi: i64) -> Result<Difference, String> {
        let batch = format!("batch {}..={}", x.base_offset, x.last_offset);
        let query = format!("from={lo}&to={hi}&by=records&offset={}", x.base_offset);
        let records = match (self.records(self.a, &query).await, self.records(self.b, &query).await) {
            (Ok(ra), Ok(rb)) => first_diff(&ra, &rb).map(|i| (ra, rb, i)),
            (Err(e), _) | (_, Err(e)) => {
                let what = format!("{batch} differs; its records could not be compared: {e}");
                return Ok(Difference { offset: x.base_offset, leader_epoch: Some(x.leader_epoch), what });
            }
        };
        let Some((ra, rb, i)) = records else {
            let what = format!("{batch} differs in its header; its records are identical");
            return Ok(Difference { offset: x.base_offset, leader_epoch: Some(x.leader_epoch), what });
        };
        let offset = ra.get(i).or(rb.get(i)).map_or(x.base_offset, |r| r.offset);
        let what = format!("record {offset} of {batch} differs (key, value, headers or timestamp)");
        Ok(Difference { offset, leader_epoch: Some(x.leader_epoch), what })
    }

    async fn batches(&self, r: &Replica, query: &str) -> Result<(Vec<BatchDigest>, bool), String> {
        match ask(self.client, r, self.p, query).await?.digest {
            Some(DigestAnswer::Batches { batches, complete }) => Ok((batches, complete)),
            other => Err(format!("node {} answered {other:?} to a batches query", r.id)),
        }
    }

    async fn chunks(&self, r: &Replica, query: &str) -> Result<Vec<RangeDigest>, String> {
        match ask(self.client, r, self.p, query).await?.digest {
            Some(DigestAnswer::Chunks { ranges }) => Ok(ranges),
            other => Err(format!("node {} answered {other:?} to a chunks query", r.id)),
        }
    }

    async fn records(&self, r: &Replica, query: &str) -> Result<Vec<RecordDigest>, String> {
        match ask(self.client, r, self.p, query).await?.digest {
            Some(DigestAnswer::Records { records, .. }) => Ok(records),
            other => Err(format!("node {} answered {other:?} to a records query", r.id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::first_diff;

    #[test]
    fn first_diff_finds_the_first_unequal_or_missing_entry() {
        assert_eq!(first_diff(&[1, 2, 3], &[1, 2, 3]), None);
        assert_eq!(first_diff(&[1, 2, 3], &[1, 5, 3]), Some(1));
        assert_eq!(first_diff(&[1, 2], &[1, 2, 3]), Some(2));
        assert_eq!(first_diff::<i32>(&[], &[7]), Some(0));
    }
}
