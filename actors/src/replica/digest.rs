//! Digests of this replica's batches, for `chronik-server cluster verify`: the replica answers
//! with its bounds at once and computes the digest on the blocking pool, from a view of its
//! segments, so a long hash never holds up produces and fetches.

use chronik::log::digest::{DigestAnswer, DigestQuery};
use kafka_protocol::ResponseError;
use ractor::RpcReplyPort;
use serde::Serialize;

use super::{PartitionError, ReplicaState};

/// What `cluster verify` asks a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestRequest {
    /// `(from, to, query)`: digest the batches wholly inside `[from, to)`; `None` for the bounds
    /// only.
    pub range: Option<(i64, i64, DigestQuery)>,
}

/// A replica's bounds, and the digest asked for.
#[derive(Debug, Clone, Serialize)]
pub struct DigestReply {
    /// `leader` or `follower`.
    pub role: &'static str,
    /// The leader epoch this replica acts under.
    pub leader_epoch: i32,
    /// First offset in its log.
    pub log_start_offset: i64,
    /// Its log end offset.
    pub log_end_offset: i64,
    /// Its high watermark (the leader's is the one `verify` compares up to).
    pub high_watermark: i64,
    /// In a compacted log: offsets below it may have been cleaned here, which each replica does
    /// on its own, so only the part above it is the same on every replica.
    pub cleaned_below: Option<i64>,
    /// The range digested, `[from, to)`.
    pub from: Option<i64>,
    /// See `from`.
    pub to: Option<i64>,
    /// The digest; `None` when only the bounds were asked for.
    pub digest: Option<DigestAnswer>,
}

/// The reply port of a digest request.
pub type DigestPort = RpcReplyPort<Result<DigestReply, PartitionError>>;

impl ReplicaState {
    /// Answers a digest request: refuses a range outside the log, else hashes on the blocking
    /// pool and replies from there.
    pub(super) fn digest(&self, request: DigestRequest, reply: DigestPort) {
        let mut answer = DigestReply {
            role: if self.followers.is_some() { "leader" } else { "follower" },
            leader_epoch: self.leadership.leader_epoch,
            log_start_offset: self.log.log_start_offset(),
            log_end_offset: self.log.log_end_offset(),
            high_watermark: self.high_watermark,
            cleaned_below: self.log.cleaned_below(),
            from: None,
            to: None,
            digest: None,
        };
        let Some((from, to, query)) = request.range else {
            let _ = reply.send(Ok(answer));
            return;
        };
        if from < answer.log_start_offset || to > answer.log_end_offset || from > to {
            let message = format!(
                "range [{from}, {to}) is not inside this replica's log [{}, {})",
                answer.log_start_offset, answer.log_end_offset
            );
            let _ = reply.send(Err(PartitionError::new(ResponseError::OffsetOutOfRange, message)));
            return;
        }
        (answer.from, answer.to) = (Some(from), Some(to));
        let view = self.log.view();
        let tp = self.tp.clone();
        tokio::task::spawn_blocking(move || {
            let result = match view.digest(from, to, query) {
                Ok(digest) => Ok(DigestReply { digest: Some(digest), ..answer }),
                Err(e) => {
                    tracing::warn!(%tp, error = %e, "digest failed");
                    Err(PartitionError::new(ResponseError::KafkaStorageError, e.to_string()))
                }
            };
            let _ = reply.send(result);
        });
    }
}
