//! Replies that wait for syncs: asked for at a flush, released by the
//! storage's completions.
//!
//! The storage completes one file's syncs in order and different files' in
//! any order. A PubAck depends on its own stream's writes only, so it
//! waits for every sync its stream has outstanding at its flush (the
//! flush's own, and earlier ones of other files of the stream: its
//! metadata, the block before a rollover, a sync asked for by a flush
//! that failed elsewhere), and a slow sync of another stream's files does
//! not hold it back. A stream's PubAcks still go out in the order they
//! were made: a later group of them waits for every sync an earlier one
//! still waits for. Every other reply
//! that waits (an API answer after its writes, a double ack's
//! confirmation, an acknowledgement to an upstream source) must follow
//! every write made before it, whoever made it: it waits until no sync up
//! to the last one asked for at its flush is outstanding.

use super::config::StorageType;
use super::{JetStream, Reply};
use crate::storage::SyncToken;

/// Replies released together once their syncs completed.
#[derive(Debug)]
pub(super) struct Waiting {
    until: Until,
    replies: Vec<Reply>,
}

/// What must have completed before a [`Waiting`] group goes.
#[derive(Debug)]
enum Until {
    /// Every sync up to this one, whatever its file.
    Through(SyncToken),
    /// These syncs (one stream's outstanding ones).
    Each(Vec<SyncToken>),
}

impl JetStream {
    /// Asks for a sync of every stream written since the last flush; the
    /// replies waiting on those writes are released as the syncs complete
    /// (see the [module](self) documentation). A stream whose sync cannot
    /// be asked for stays dirty, and every reply still unsynced waits for
    /// a later flush: no acknowledgement goes out for a write that may not
    /// be on disk.
    pub(super) fn sync_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        let mut failed = Vec::new();
        for (account, name) in dirty {
            let Some(stream) = self.accounts.get_mut(&account).and_then(|a| a.streams.get_mut(&name)) else { continue };
            if let Err(e) = stream.store_mut().sync() {
                failed.push((account, name, e));
            }
        }
        if !failed.is_empty() {
            // The syncs asked for still complete; the replies wait for
            // the retry, and then for everything asked for before it.
            for (account, name, e) in failed {
                self.sync_failed(&account, &name, &e);
                self.mark_dirty((account, name));
            }
            return;
        }
        self.unwritten = false;
        // PubAcks by stream: (account, stream, their group).
        let mut groups: Vec<(String, String, Waiting)> = Vec::new();
        let mut rest = Vec::new();
        for (stream, reply) in std::mem::take(&mut self.unsynced) {
            let Some(name) = stream else {
                rest.push(reply);
                continue;
            };
            if let Some((.., group)) = groups.iter_mut().find(|(a, n, _)| *a == reply.account && *n == name) {
                group.replies.push(reply);
                continue;
            }
            let Some(tokens) = self.stream(&reply.account, &name).ok().map(|s| s.store().syncs_outstanding()) else {
                // The stream is gone: its removal is what the reply follows.
                rest.push(reply);
                continue;
            };
            groups.push((reply.account.clone(), name, Waiting { until: Until::Each(tokens), replies: vec![reply] }));
        }
        self.waiting.extend(groups.into_iter().map(|(.., group)| group));
        if !rest.is_empty() {
            match self.storage.as_ref().and_then(|s| s.lock().last_issued()) {
                Some(last) => self.waiting.push_back(Waiting { until: Until::Through(last), replies: rest }),
                // Nothing was ever synced, so nothing is outstanding.
                None => self.ready.extend(rest),
            }
        }
        self.release();
    }

    /// Syncs of JetStream's storage completed (in any order across files).
    pub fn handle_synced(&mut self, tokens: &[SyncToken]) {
        if let Some(storage) = &self.storage {
            storage.lock().complete(tokens);
        }
        for stream in self.accounts.values_mut().flat_map(|a| a.streams.values_mut()) {
            if stream.config().storage == StorageType::File {
                stream.store_mut().handle_synced(tokens);
            }
        }
        self.consumers_synced(tokens);
        self.release();
    }

    /// Moves every waiting group whose syncs completed to the replies
    /// ready to go. A group is done only when every group before it that
    /// it must follow is (a later group of a stream waits for a superset
    /// of what an earlier one still waits for; a group waiting for every
    /// sync up to a point, for all groups before it), so order holds.
    fn release(&mut self) {
        let Some(storage) = self.storage.clone() else { return };
        let ledger = storage.lock();
        let ready = &mut self.ready;
        self.waiting.retain_mut(|group| {
            let done = match &group.until {
                Until::Through(last) => ledger.done_through(*last),
                Until::Each(tokens) => tokens.iter().all(|&t| !ledger.is_outstanding(t)),
            };
            if done {
                ready.extend(std::mem::take(&mut group.replies));
            }
            !done
        });
    }
}
