//! The leader's single door into the Raft log: proposals that arrive while an entry is being
//! committed wait, and go together as the next entry.
//!
//! Every entry costs each node a durable log append (a redb commit with an fsync) and an apply.
//! A rebalance proposes hundreds of small commands a second (move steps from the rebalancer,
//! ISR changes from every partition leader); one entry each made every node fsync its Raft log
//! hundreds of times a second, on the disk every acks=all produce waits on. Coalesced, they cost
//! about one entry per commit round trip, and a lone proposal waits for nothing.

use chronik::cluster::{MetadataCommand, NodeInfo};
use chronik::config::NodeId;
use openraft::error::{ClientWriteError, Fatal, RaftError};
use tokio::sync::{mpsc, oneshot};

use super::{CommandResult, Raft};
use crate::directory::TaskGuard;

/// Why a write failed: openraft's error, shared by every proposal in the entry.
pub(crate) type WriteError = RaftError<NodeId, ClientWriteError<NodeId, NodeInfo>>;

/// Most commands in one entry: keeps an entry (and an AppendEntries of many) well under the
/// Raft message limit even when it holds topic creations with their assignments.
const MAX_BATCH_COMMANDS: usize = 64;
/// Proposals waiting for the writer; callers wait for room beyond it.
const QUEUE: usize = 1024;

/// One caller's proposal.
struct Pending {
    /// The caller's commands, kept together and in order.
    commands: Vec<MetadataCommand>,
    /// The entry's log index and one result per command, or the entry's error.
    reply: oneshot::Sender<Result<(u64, Vec<CommandResult>), WriteError>>,
}

/// Hands proposals to the writer task. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    /// The openraft instance written to.
    raft: Raft,
    /// Proposals for the writer task.
    queue: mpsc::Sender<Pending>,
}

impl Writer {
    /// Starts the writer task for `raft`; it stops when the guard drops.
    pub(crate) fn start(raft: Raft) -> (Writer, TaskGuard) {
        let (queue, rx) = mpsc::channel(QUEUE);
        let task = TaskGuard(tokio::spawn(run(raft.clone(), rx)));
        (Writer { raft, queue }, task)
    }

    /// The openraft instance, for everything but client writes.
    pub(crate) fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Commits `commands` in one entry, possibly with other proposals, and returns the entry's
    /// log index and one result per command once applied here. Off the leader this is openraft's
    /// `ForwardToLeader`.
    pub(crate) async fn write(&self, commands: Vec<MetadataCommand>) -> Result<(u64, Vec<CommandResult>), WriteError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || RaftError::Fatal(Fatal::Stopped);
        self.queue.send(Pending { commands, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Takes the first waiting proposal and every one behind it (up to the cap), commits them as
/// one entry, and hands each caller its share of the results.
async fn run(raft: Raft, mut rx: mpsc::Receiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let mut count = batch[0].commands.len();
        while count < MAX_BATCH_COMMANDS {
            let Ok(next) = rx.try_recv() else { break };
            count += next.commands.len();
            batch.push(next);
        }
        // A caller that gave up (its proposal waited out a commit that could not happen) has
        // its answer already: not proposed. Committing it later would surprise it.
        batch.retain(|p| !p.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let sizes: Vec<usize> = batch.iter().map(|p| p.commands.len()).collect();
        let (commands, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.commands, p.reply)).unzip();
        match raft.client_write(commands.into_iter().flatten().collect()).await {
            Ok(response) => {
                let index = response.log_id.index;
                for (results, reply) in split(response.data, &sizes).into_iter().zip(replies) {
                    let _ = reply.send(Ok((index, results)));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Cuts one entry's results into the callers' shares, `sizes` commands each, in order.
fn split<T>(results: Vec<T>, sizes: &[usize]) -> Vec<Vec<T>> {
    let mut results = results.into_iter();
    sizes.iter().map(|&n| results.by_ref().take(n).collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn each_caller_gets_its_own_results_in_order() {
        assert_eq!(split(vec![1, 2, 3, 4, 5, 6], &[1, 0, 3, 2]), vec![vec![1], vec![], vec![2, 3, 4], vec![5, 6]]);
        assert_eq!(split(Vec::<u8>::new(), &[]), Vec::<Vec<u8>>::new());
    }
}
