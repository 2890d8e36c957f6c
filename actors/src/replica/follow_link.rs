//! The follower's side of `FollowMany`: one stream to each leader node, shared by every partition
//! this node follows there. Each fetcher opens a [`PartitionStream`] on it and uses it as it
//! would its own stream; what the fetchers send at once leaves in one frame. When the shared
//! stream fails, every partition stream on it ends and its fetcher starts over on a new one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::raft::PeerChannels;
use crate::replication_service::proto::replication_client::ReplicationClient;
use crate::replication_service::proto::{FetchRequest, FetchResponse, FollowFrame, FollowItem, FollowedFrame};
use crate::replication_service::{FRAME_ITEMS, MAX_ANSWER_BYTES, batches};

/// Fetches and progress reports waiting for the frame writer, over all partitions of one link.
const LINK_QUEUE: usize = 4096;
/// Answers waiting for one partition's fetcher: it has one fetch outstanding, so more means the
/// leader broke the exchange.
const ANSWERS: usize = 2;
/// What a partition stream yields: the leader's answer, or why the stream ended.
type Answer = Result<FetchResponse, String>;

/// The links of this node's followers, one per leader address.
#[derive(Default)]
pub struct FollowLinks {
    /// The current link to each leader's wal address (replaced once it has failed).
    links: Mutex<HashMap<String, Arc<Link>>>,
    /// The next partition stream's number (unique per node, so never reused on a link).
    next_stream: AtomicU64,
}

impl FollowLinks {
    /// Opens a partition stream to the leader at `addr`, over its link (started if there is
    /// none, or the last one failed).
    pub(super) fn open(&self, peers: &PeerChannels, addr: &str) -> Result<PartitionStream, String> {
        let stream = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let (tx, answers) = mpsc::channel(ANSWERS);
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        let link = match links.get(addr) {
            Some(link) if link.routes().is_some() => link.clone(),
            _ => {
                let client = ReplicationClient::new(peers.channel(addr)?).max_decoding_message_size(MAX_ANSWER_BYTES);
                let link = Link::start(client);
                links.insert(addr.to_string(), link.clone());
                link
            }
        };
        // A link that has failed meanwhile leaves `tx` unrouted: the stream then ends at once.
        if let Some(routes) = link.routes().as_mut() {
            routes.insert(stream, tx);
        }
        Ok(PartitionStream { stream, link, answers })
    }
}

/// One `FollowMany` stream to a leader.
struct Link {
    /// Fetches and progress reports to send.
    out: mpsc::Sender<FollowItem>,
    /// Partition streams closed by their fetcher, to tell the leader (unbounded: at most one
    /// per stream ever opened, and a close must not wait behind a full queue).
    closes: mpsc::UnboundedSender<u64>,
    /// Where each partition stream's answers go; `None` once the link has failed.
    routes: Mutex<Option<HashMap<u64, mpsc::Sender<Answer>>>>,
}

impl Link {
    /// Opens the stream on a task, which reads the leader's frames until the stream fails.
    fn start(mut client: ReplicationClient<crate::peer_auth::PeerChannel>) -> Arc<Self> {
        let (out, items) = mpsc::channel(LINK_QUEUE);
        let (closes, closed) = mpsc::unbounded_channel();
        let link = Arc::new(Self { out, closes, routes: Mutex::new(Some(HashMap::new())) });
        let frames = outgoing(items, closed);
        let reader = link.clone();
        tokio::spawn(async move {
            let why = match client.follow_many(frames).await {
                Ok(response) => reader.read(response.into_inner()).await,
                Err(status) => status.message().to_string(),
            };
            reader.fail(&why);
        });
        link
    }

    fn routes(&self) -> MutexGuard<'_, Option<HashMap<u64, mpsc::Sender<Answer>>>> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Passes each answer to its partition stream until the leader's frames end; says why.
    async fn read(&self, mut frames: tonic::Streaming<FollowedFrame>) -> String {
        loop {
            let frame = match frames.next().await {
                Some(Ok(frame)) => frame,
                Some(Err(status)) => return status.message().to_string(),
                None => return "the leader closed the stream".into(),
            };
            let mut routes = self.routes();
            let Some(routes) = routes.as_mut() else { return "the link failed".into() };
            for item in frame.items {
                let answer = item.response.ok_or(item.ended);
                let ended = answer.is_err();
                // A stream closed meanwhile has no route; one given more than it asked for is
                // dropped, which ends it, and its fetcher starts over.
                if let Some(route) = routes.get(&item.stream)
                    && (route.try_send(answer).is_err() || ended)
                {
                    routes.remove(&item.stream);
                }
            }
        }
    }

    /// Ends every partition stream on the link, telling each why.
    fn fail(&self, why: &str) {
        for (_, route) in self.routes().take().unwrap_or_default() {
            let _ = route.try_send(Err(format!("the stream to the leader failed: {why}")));
        }
    }
}

/// The frames to send: each takes every close and item already queued.
fn outgoing(
    items: mpsc::Receiver<FollowItem>,
    closed: mpsc::UnboundedReceiver<u64>,
) -> impl futures::Stream<Item = FollowFrame> + Send + 'static {
    let closes = futures::stream::unfold(closed, |mut rx| async move { Some((close(rx.recv().await?), rx)) });
    let items = futures::stream::unfold(items, |mut rx| async move { Some((rx.recv().await?, rx)) });
    let merged = Box::pin(futures::stream::select(items, closes));
    batches(merged, FRAME_ITEMS, usize::MAX, |_| 0).map(|items| FollowFrame { items })
}

/// The item that closes partition stream `stream`.
fn close(stream: u64) -> FollowItem {
    FollowItem { stream, request: None }
}

/// One partition's exchange with its leader, on the link to that leader.
pub(super) struct PartitionStream {
    /// Its number on the link.
    stream: u64,
    /// The link.
    link: Arc<Link>,
    /// The leader's answers.
    answers: mpsc::Receiver<Answer>,
}

impl PartitionStream {
    /// Sends a fetch or progress report.
    pub(super) async fn send(&self, request: FetchRequest) -> Result<(), String> {
        let item = FollowItem { stream: self.stream, request: Some(request) };
        self.link.out.send(item).await.map_err(|_| "the stream to the leader failed".to_string())
    }

    /// The next answer; an error once the stream has ended.
    pub(super) async fn next(&mut self) -> Result<FetchResponse, String> {
        self.answers.recv().await.unwrap_or_else(|| Err("the stream to the leader ended".into()))
    }
}

impl Drop for PartitionStream {
    fn drop(&mut self) {
        if let Some(routes) = self.link.routes().as_mut() {
            routes.remove(&self.stream);
            let _ = self.link.closes.send(self.stream);
        }
    }
}
