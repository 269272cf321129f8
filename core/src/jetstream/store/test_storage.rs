//! The store tests' disk: the storage layer's [`MemStorage`], shared the
//! way the stores share theirs.

use super::{share_storage, SharedStorage};
pub(crate) use crate::storage::MemStorage as TestDisk;

impl TestDisk {
    /// The disk as the stores share it.
    pub(crate) fn shared(&self) -> SharedStorage {
        share_storage(Box::new(self.clone()))
    }
}
