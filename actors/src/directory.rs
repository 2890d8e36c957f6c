//! What `/admin/actors` shows: every live actor's name, role, restart count and mailbox length,
//! arranged as ractor's supervision tree.
//!
//! ractor keeps the tree (`ActorCell::get_children`) but not names of roles, restart counts or
//! queue lengths, so actors register here in `pre_start` and leave in `post_stop`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use ractor::{ActorCell, ActorId, ActorRef, Message, MessagingErr, RpcReplyPort, rpc::CallResult};
use serde::Serialize;

/// Messages queued for one actor: senders that go through [`Counted`] add one, the actor's
/// `handle` takes one off.
#[derive(Debug, Clone, Default)]
pub struct MailboxGauge(Arc<AtomicI64>);

impl MailboxGauge {
    /// Called by the actor at the top of `handle`.
    pub fn received(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    fn sent(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Messages waiting (never negative: messages sent around the gauge are not counted).
    pub fn queued(&self) -> i64 {
        self.0.load(Ordering::Relaxed).max(0)
    }
}

/// An actor reference that keeps the actor's mailbox gauge up to date.
pub struct Counted<M: Message> {
    /// The actor.
    pub actor: ActorRef<M>,
    /// Its mailbox gauge.
    pub gauge: MailboxGauge,
}

impl<M: Message> Clone for Counted<M> {
    fn clone(&self) -> Self {
        Self { actor: self.actor.clone(), gauge: self.gauge.clone() }
    }
}

impl<M: Message> Counted<M> {
    /// Sends an event.
    pub fn cast(&self, msg: M) -> Result<(), MessagingErr<M>> {
        self.gauge.sent();
        self.actor.cast(msg).inspect_err(|_| self.gauge.received())
    }

    /// Sends a request and waits for its reply, at most `timeout`.
    pub async fn call<T: Send + 'static>(
        &self,
        msg: impl FnOnce(RpcReplyPort<T>) -> M,
        timeout: Duration,
    ) -> Result<CallResult<T>, MessagingErr<M>> {
        self.gauge.sent();
        let result = self.actor.call(msg, Some(timeout)).await;
        if matches!(result, Err(MessagingErr::SendErr(_))) {
            self.gauge.received();
        }
        result
    }
}

/// One registered actor.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    role: &'static str,
    restarts: u32,
    gauge: MailboxGauge,
}

/// All live actors of this node.
#[derive(Debug, Default)]
pub struct ActorDirectory {
    // SHARED: written by each actor for itself, read by the admin API without asking any actor.
    entries: DashMap<ActorId, Entry>,
    // SHARED: long-lived tasks an actor runs (a follower's replication stream), by owner.
    tasks: DashMap<u64, (ActorId, String, &'static str)>,
    /// Key of the next task entry.
    next_task: std::sync::atomic::AtomicU64,
}

/// A task's entry in the directory, removed when dropped (kept next to the task's guard).
pub struct TaskRegistration {
    /// The directory holding the entry.
    directory: Arc<ActorDirectory>,
    /// The entry's key.
    key: u64,
}

impl Drop for TaskRegistration {
    fn drop(&mut self) {
        self.directory.tasks.remove(&self.key);
    }
}

/// One node of the `/admin/actors` tree.
#[derive(Debug, Clone, Serialize)]
pub struct ActorNode {
    /// Actor name (unique among its siblings).
    pub name: String,
    /// What the actor does (`ReplicaActor`, `ConnectionActor`, ...).
    pub role: String,
    /// ractor's lifecycle status, lower case.
    pub status: String,
    /// How many times the supervisor restarted this child.
    pub restarts: u32,
    /// Messages waiting in its mailbox.
    pub mailbox_len: i64,
    /// Supervised children.
    pub children: Vec<ActorNode>,
}

/// An actor's entry in the directory, removed when dropped. Actors keep it in their state,
/// so the entry goes on a clean stop and after a panic alike (ractor skips `post_stop` then).
pub struct Registration {
    /// The directory holding the entry.
    directory: Arc<ActorDirectory>,
    /// The actor.
    id: ActorId,
    /// Its mailbox gauge.
    gauge: MailboxGauge,
}

impl Registration {
    /// The actor's mailbox gauge.
    pub fn gauge(&self) -> &MailboxGauge {
        &self.gauge
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.directory.entries.remove(&self.id);
    }
}

/// A background task owned by an actor's state: aborted when the state is dropped, however the
/// actor ended, so a failed listener never keeps its socket (or a connection its client).
pub struct TaskGuard(pub tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ActorDirectory {
    /// Registers an actor under `gauge` (created by whoever counts messages sent to it).
    pub fn register(
        self: &Arc<Self>,
        cell: &ActorCell,
        name: String,
        role: &'static str,
        restarts: u32,
        gauge: MailboxGauge,
    ) -> Registration {
        self.entries.insert(cell.get_id(), Entry { name, role, restarts, gauge: gauge.clone() });
        Registration { directory: self.clone(), id: cell.get_id(), gauge }
    }

    /// Lists a long-lived task under its owner actor, with status `running`.
    pub fn register_task(self: &Arc<Self>, owner: &ActorCell, name: String, role: &'static str) -> TaskRegistration {
        let key = self.next_task.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.tasks.insert(key, (owner.get_id(), name, role));
        TaskRegistration { directory: self.clone(), key }
    }

    /// The running child of `parent` registered under `name`.
    pub fn child(&self, parent: &ActorCell, name: &str) -> Option<ActorCell> {
        parent.get_children().into_iter().find(|c| self.entries.get(&c.get_id()).is_some_and(|e| e.name == name))
    }

    /// The live tree below `root`.
    pub fn tree(&self, root: &ActorCell) -> ActorNode {
        let entry = self.entries.get(&root.get_id()).map(|e| e.clone());
        let mut children: Vec<ActorNode> = root.get_children().iter().map(|c| self.tree(c)).collect();
        let tasks = self.tasks.iter().filter(|t| t.value().0 == root.get_id()).map(|t| {
            let (_, name, role) = t.value();
            let (name, role) = (name.clone(), role.to_string());
            ActorNode { name, role, status: "running".into(), restarts: 0, mailbox_len: 0, children: Vec::new() }
        });
        children.extend(tasks);
        children.sort_by(|a, b| (&a.role, &a.name).cmp(&(&b.role, &b.name)));
        let (name, role, restarts, mailbox_len) = match entry {
            Some(e) => (e.name, e.role.to_string(), e.restarts, e.gauge.queued()),
            None => (root.get_name().unwrap_or_else(|| root.get_id().to_string()), "Unknown".into(), 0, 0),
        };
        ActorNode {
            name,
            role,
            status: format!("{:?}", root.get_status()).to_lowercase(),
            restarts,
            mailbox_len,
            children,
        }
    }
}
