//! `FollowMany`, the leader's side: one stream from a follower node carries the fetches of every
//! partition it follows here. Each partition's logical stream is served by the same ordered loop
//! as a `Follow` stream ([`super::follow`]); their answers share one outgoing queue, and whatever
//! is ready at once leaves in one frame. Per partition this keeps the order and the long poll of
//! its own stream, and a busy node sends a few frames per round instead of one per partition.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use futures::channel::mpsc;
use futures::{SinkExt, Stream, StreamExt};
use tonic::{Status, Streaming};
use tracing::{debug, warn};

use super::proto::{FetchRequest, FetchResponse, FollowFrame, FollowedFrame, FollowedItem};
use crate::context::NodeContext;
use chronik::config::NodeId;

/// Messages one logical stream may have waiting for its loop. A follower has at most one fetch
/// outstanding plus the progress reports of its fsync rounds meanwhile; more is a broken
/// follower, whose logical stream is ended rather than let hold up the others.
const STREAM_QUEUE: usize = 64;
/// Logical streams one follower node may keep open here (one per partition it follows).
const MAX_STREAMS: usize = 200_000;
/// Answers waiting for the outgoing frame writer.
const OUT_QUEUE: usize = 1024;
/// A frame takes no more items...
pub(crate) const FRAME_ITEMS: usize = 1024;
/// ...and no more record bytes than this, except for a single larger answer, which travels alone.
pub(crate) const FRAME_BYTES: usize = 4 * 1024 * 1024;

/// The outgoing frames of one `FollowMany` stream.
pub(super) type Frames = Pin<Box<dyn Stream<Item = Result<FollowedFrame, Status>> + Send>>;

/// One logical stream's answer (or the status that ended it), tagged with its number.
type Tagged = (u64, Result<FetchResponse, Status>);

/// Serves a `FollowMany` stream: reads the follower's frames on a task and returns the frames
/// of answers. `caller` is the node the follower's certificate names (with node TLS).
pub(super) fn serve(ctx: Arc<NodeContext>, frames: Streaming<FollowFrame>, caller: Option<NodeId>) -> Frames {
    let (out, answers) = mpsc::channel(OUT_QUEUE);
    let (failed, failure) = futures::channel::oneshot::channel();
    tokio::spawn(async move {
        if let Err(status) = demux(ctx, frames, out, caller).await {
            // Also how a follower that went away ends, so not a warning.
            debug!(error = %status, "a follower's stream of fetches failed; ending it");
            let _ = failed.send(status);
        }
    });
    let frames =
        batches(answers, FRAME_ITEMS, FRAME_BYTES, |(_, answer)| answer.as_ref().map_or(0, |r| r.records.len()));
    let frames = frames.map(|answers| Ok(FollowedFrame { items: answers.into_iter().map(followed).collect() }));
    // Once every answer is out, a stream that failed (a frame that would not decode) ends with
    // that error, so the follower learns why.
    let failure = futures::stream::once(failure).filter_map(|failed| futures::future::ready(failed.ok().map(Err)));
    Box::pin(frames.chain(failure))
}

/// The wire item for a logical stream's answer or end.
fn followed((stream, answer): Tagged) -> FollowedItem {
    match answer {
        Ok(response) => FollowedItem { stream, response: Some(response), ended: String::new() },
        Err(status) => FollowedItem { stream, response: None, ended: status.message().to_string() },
    }
}

/// Hands each item to its logical stream's loop, starting one for a new stream number. Every
/// loop ends when this does: the follower closed the stream, or it failed (the error).
async fn demux(
    ctx: Arc<NodeContext>,
    mut frames: Streaming<FollowFrame>,
    mut out: mpsc::Sender<Tagged>,
    caller: Option<NodeId>,
) -> Result<(), Status> {
    // `None`: a stream this side ended; its further items are dropped until the follower closes it.
    let mut streams: HashMap<u64, Option<mpsc::Sender<Result<FetchRequest, Status>>>> = HashMap::new();
    while let Some(frame) = frames.next().await {
        let frame = frame?;
        for item in frame.items {
            let Some(request) = item.request else {
                streams.remove(&item.stream);
                continue;
            };
            if !streams.contains_key(&item.stream) && streams.len() >= MAX_STREAMS {
                let refusal = Status::resource_exhausted(format!("more than {MAX_STREAMS} partitions followed"));
                let _ = out.send((item.stream, Err(refusal))).await;
                continue;
            }
            let entry = streams.entry(item.stream).or_insert_with(|| Some(start(&ctx, item.stream, &out, caller)));
            let Some(requests) = entry else { continue };
            if let Err(e) = requests.try_send(Ok(request)) {
                // A loop that ended by itself has already said why; one that is this far behind
                // is ended here, and its follower starts the partition's stream over.
                if e.is_full() {
                    warn!(stream = item.stream, "a follower's partition stream fell too far behind; ending it");
                    let _ = out.send((item.stream, Err(Status::resource_exhausted("too many requests queued")))).await;
                }
                *entry = None;
            }
        }
    }
    Ok(())
}

/// Starts the loop of logical stream `stream`; returns where its requests go.
fn start(
    ctx: &Arc<NodeContext>,
    stream: u64,
    out: &mpsc::Sender<Tagged>,
    caller: Option<NodeId>,
) -> mpsc::Sender<Result<FetchRequest, Status>> {
    let (requests, rx) = mpsc::channel(STREAM_QUEUE);
    let answers = out.clone().with(move |answer| futures::future::ok::<_, mpsc::SendError>((stream, answer)));
    tokio::spawn(super::follow(ctx.clone(), rx, answers, caller));
    requests
}

/// Groups what `rx` has ready into batches of at most `max_items` and (unless one item alone is
/// larger) `max_bytes` as `size` counts them; waits only for a batch's first item.
pub(crate) fn batches<T: Send + 'static>(
    rx: impl Stream<Item = T> + Unpin + Send + 'static,
    max_items: usize,
    max_bytes: usize,
    size: fn(&T) -> usize,
) -> impl Stream<Item = Vec<T>> + Send + 'static {
    futures::stream::unfold(rx.peekable(), move |mut rx| async move {
        let first = rx.next().await?;
        let mut bytes = size(&first);
        let mut batch = vec![first];
        while batch.len() < max_items {
            // Only what is already queued joins the batch.
            let Some(Some(next)) = futures::FutureExt::now_or_never(Pin::new(&mut rx).peek()) else { break };
            if bytes + size(next) > max_bytes {
                break;
            }
            bytes += size(next);
            let Some(Some(next)) = futures::FutureExt::now_or_never(rx.next()) else { break };
            batch.push(next);
        }
        Some((batch, rx))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_takes_what_is_queued_within_its_limits() {
        let (mut tx, rx) = mpsc::channel::<usize>(16);
        for n in [1, 2, 3, 10, 1, 1, 1] {
            tx.send(n).await.unwrap();
        }
        let mut out = Box::pin(batches(rx, 3, 8, |n| *n));
        // Three items at most; the 10 is larger than a batch may hold, so it travels alone.
        assert_eq!(out.next().await, Some(vec![1, 2, 3]));
        assert_eq!(out.next().await, Some(vec![10]));
        assert_eq!(out.next().await, Some(vec![1, 1, 1]));
        // Nothing queued: the next batch waits for its first item, then takes only that.
        tx.send(4).await.unwrap();
        assert_eq!(out.next().await, Some(vec![4]));
        drop(tx);
        assert_eq!(out.next().await, None);
    }
}
