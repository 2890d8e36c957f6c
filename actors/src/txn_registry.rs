//! Which producers may write transactional batches to which partitions on this node (KIP-890
//! part 1): a transaction coordinator registers each partition it adds to a transaction with
//! every replica of that partition before the client hears back, and a partition's marker
//! clears it. A transactional batch for a partition not registered for its producer and epoch
//! is refused, so a late write after its transaction ended cannot leave a transaction hanging.
//!
//! The registry is memory only: a replica re-registers the transactions its log shows open
//! when it starts.

use dashmap::DashMap;

use crate::context::TopicPartition;

/// One producer's standing on one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Standing {
    /// Its latest epoch seen here (registered, or of its latest marker).
    epoch: i16,
    /// Whether a transaction of that epoch is open here.
    open: bool,
}

/// (partition, producer id) → the producer's standing there.
#[derive(Debug, Default)]
pub struct TxnRegistry {
    /// The registrations, and the epochs of ended transactions (to recognise zombies).
    open: DashMap<(TopicPartition, i64), Standing>,
}

impl TxnRegistry {
    /// `producer_id` at `epoch` has a transaction that includes `tp`.
    pub fn register(&self, tp: TopicPartition, producer_id: i64, epoch: i16) {
        self.open.insert((tp, producer_id), Standing { epoch, open: true });
    }

    /// `producer_id`'s transaction on `tp` ended with a marker of `epoch` (the producer's, or
    /// a newer one that fences it).
    pub fn ended(&self, tp: &TopicPartition, producer_id: i64, epoch: i16) {
        let mut entry = self.open.entry((tp.clone(), producer_id)).or_insert(Standing { epoch, open: false });
        entry.epoch = entry.epoch.max(epoch);
        entry.open = false;
    }

    /// Whether `producer_id` at `epoch` may write transactional batches to `tp`.
    pub fn allows(&self, tp: &TopicPartition, producer_id: i64, epoch: i16) -> bool {
        self.open.get(&(tp.clone(), producer_id)).is_some_and(|s| s.open && s.epoch == epoch)
    }

    /// The newer epoch that fenced `epoch` of `producer_id` on `tp`, if one did.
    pub fn fenced_by(&self, tp: &TopicPartition, producer_id: i64, epoch: i16) -> Option<i16> {
        self.open.get(&(tp.clone(), producer_id)).map(|s| s.epoch).filter(|&current| current > epoch)
    }

    /// Registrations held (for `/metrics`).
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// A produce's view of the registry for one partition, as the batch checks ask it.
pub struct PartitionTransactions<'a> {
    /// The node's registry.
    pub registry: &'a TxnRegistry,
    /// The partition written.
    pub tp: TopicPartition,
}

impl chronik::records::OngoingTransactions for PartitionTransactions<'_> {
    fn is_ongoing(&self, producer_id: i64, producer_epoch: i16) -> bool {
        self.registry.allows(&self.tp, producer_id, producer_epoch)
    }

    fn fenced_by(&self, producer_id: i64, producer_epoch: i16) -> Option<i16> {
        self.registry.fenced_by(&self.tp, producer_id, producer_epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_allows_its_epoch_until_forgotten() {
        let registry = TxnRegistry::default();
        let tp = TopicPartition::new("orders", 0);
        assert!(!registry.allows(&tp, 7, 0));
        registry.register(tp.clone(), 7, 0);
        assert!(registry.allows(&tp, 7, 0));
        assert!(!registry.allows(&tp, 7, 1), "another epoch is another producer session");
        assert!(!registry.allows(&TopicPartition::new("orders", 1), 7, 0));
        registry.ended(&tp, 7, 0);
        assert!(!registry.allows(&tp, 7, 0));
        assert_eq!(registry.fenced_by(&tp, 7, 0), None, "ended, not fenced");
        registry.register(tp.clone(), 7, 0);
        registry.ended(&tp, 7, 1);
        assert_eq!(registry.fenced_by(&tp, 7, 0), Some(1), "an abort with a newer epoch fences the old one");
    }
}
