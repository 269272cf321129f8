//! Saving and recovering consumers of file streams.
//!
//! A consumer is saved as generations: `{account}.{stream}.obs.{consumer}.{n}`
//! (names escaped), each one checksummed record of its config, creation
//! time and state. A save writes generation `n + 1` and asks for its sync;
//! older generations are removed only once that sync completed, so a crash
//! at any point leaves at least one intact generation. Saves happen at
//! [`JetStream::flush`], once per batch: one sync covers every consumer
//! changed in the batch, and double-ack confirmations wait for it. When
//! nothing waits, a consumer is saved at most once per
//! [`CONSUMER_SAVE_INTERVAL`], and not while its last save is still being
//! synced: a consumer acked message by message is written about ten times a
//! second, as nats-server writes its consumers' state under load.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::ConsumerConfig;
use super::state::{self, ConsumerState};
use super::Consumer;
use crate::jetstream::config::StorageType;
use crate::jetstream::store::{escape_name, unescape_name};
use crate::jetstream::JetStream;
use crate::log::Level;
use crate::storage::{Storage as _, StorageExt as _, SyncToken};
use crate::time::UnixNanos;

/// The least time between two saves of one consumer that nothing waits
/// for. What a crash may undo meanwhile is at most a redelivery.
pub(crate) const CONSUMER_SAVE_INTERVAL: Duration = Duration::from_millis(100);

/// What a consumer's file holds.
#[derive(Serialize, Deserialize)]
struct Saved {
    created_ns: i64,
    config: ConsumerConfig,
    state: ConsumerState,
}

/// Consumer files of the store: their newest generation, and older ones to
/// remove once a sync completes.
#[derive(Debug, Default)]
pub(crate) struct SavedFiles {
    /// By file prefix, what is known of the consumer's saves.
    files: BTreeMap<String, SavedFile>,
    /// Files to remove once the sync with this token completed.
    superseded: Vec<(SyncToken, String)>,
    /// Consumers changed since the last save: (account, stream, consumer).
    pub(super) dirty: std::collections::BTreeSet<(String, String, String)>,
    /// A consumer joined `dirty` since the last save looked at it: the
    /// input's end has a save to consider.
    fresh: bool,
    /// When the first save held back by [`CONSUMER_SAVE_INTERVAL`] is due
    /// (a save held back by a sync in flight goes when the sync completes).
    due: Option<UnixNanos>,
}

/// One consumer's saves.
#[derive(Debug, Default)]
struct SavedFile {
    /// The newest generation on disk.
    generation: u64,
    /// The token of the latest save, while its sync has not completed.
    in_flight: Option<SyncToken>,
    /// When the latest save was written (none since the start: none yet).
    saved_at: Option<UnixNanos>,
}

impl SavedFiles {
    /// Marks a consumer changed. Acknowledgements mark their consumer one
    /// by one: one already marked is found without building its key (the
    /// search is bounded, past it the set's own lookup takes over).
    pub(super) fn mark_dirty(&mut self, account: &str, stream: &str, name: &str) {
        const SCANNED_MAX: usize = 8;
        if self.dirty.len() <= SCANNED_MAX && self.dirty.iter().any(|(a, s, n)| a == account && s == stream && n == name) {
            return;
        }
        self.fresh |= self.dirty.insert((account.to_owned(), stream.to_owned(), name.to_owned()));
    }
}

fn prefix(account: &str, stream: &str, consumer: &str) -> String {
    format!("{}.{}.obs.{}.", escape_name(account), escape_name(stream), escape_name(consumer))
}

impl JetStream {
    /// True when consumers wait to be saved.
    pub(crate) fn consumers_dirty(&self) -> bool {
        !self.consumer_files.dirty.is_empty()
    }

    /// True when a consumer changed since the last save looked at the
    /// changed ones (those it held back have a timer or a sync to wait for).
    pub(crate) fn consumers_fresh(&self) -> bool {
        self.consumer_files.fresh
    }

    /// When a save held back by [`CONSUMER_SAVE_INTERVAL`] is due.
    pub(crate) fn consumers_save_due(&self) -> Option<UnixNanos> {
        self.consumer_files.due
    }

    /// The clock: held-back saves due by `wall` are for the next flush.
    pub(crate) fn consumer_saves_timeout(&mut self, wall: UnixNanos) {
        if self.consumer_files.due.is_some_and(|at| at <= wall) {
            self.consumer_files.due = None;
            self.consumer_files.fresh = true;
        }
    }

    /// Marks a consumer for saving at the next flush.
    pub(crate) fn save_consumer(&mut self, account: &str, stream: &str, name: &str) {
        self.consumer_files.mark_dirty(account, stream, name);
    }

    /// Writes every changed consumer of a file stream and asks for each
    /// file's sync.
    ///
    /// When no reply waiting for this flush's sync confirms consumer state
    /// (a PubAck does not), a consumer is held back
    /// while its previous save is still being synced (it is saved once
    /// that sync completes, [`JetStream::consumers_synced`]) and until
    /// [`CONSUMER_SAVE_INTERVAL`] passed since that save (a timer,
    /// [`JetStream::poll_timeout`]), with every change made meanwhile: a
    /// consumer acked message by message is written about ten times a
    /// second, not once per batch of acks. Nothing is confirmed on the
    /// strength of a held-back save (a double ack or an API answer in the
    /// batch makes every save go at once), and what a crash may undo
    /// meanwhile is at most a redelivery.
    pub(crate) fn save_consumers(&mut self) {
        self.consumer_files.fresh = false;
        self.consumer_files.due = None;
        let Some(storage) = self.storage.clone() else { return };
        let defer = !std::mem::take(&mut self.confirms_consumers);
        let now = self.last_wall;
        let interval = i64::try_from(CONSUMER_SAVE_INTERVAL.as_nanos()).unwrap_or(i64::MAX);
        let mut due: Option<UnixNanos> = None;
        for (account, stream, name) in std::mem::take(&mut self.consumer_files.dirty) {
            let p = prefix(&account, &stream, &name);
            if defer {
                let file = self.consumer_files.files.get(&p);
                let in_flight = file.is_some_and(|f| f.in_flight.is_some());
                let next = file.and_then(|f| f.saved_at).map(|at| UnixNanos(at.0.saturating_add(interval))).filter(|&next| next > now);
                if let Some(next) = next.filter(|_| !in_flight) {
                    // (One in flight goes when its sync completes.)
                    due = Some(due.map_or(next, |d| d.min(next)));
                }
                if in_flight || next.is_some() {
                    self.consumer_files.dirty.insert((account, stream, name));
                    continue;
                }
            }
            let Some(acc) = self.accounts.get(&account) else { continue };
            let Some(s) = acc.streams.get(&stream) else { continue };
            let Some(c) = acc.consumers.get(&stream).and_then(|m| m.get(&name)) else { continue };
            if s.config().storage != StorageType::File || c.config().memory_storage {
                continue;
            }
            let saved = Saved { created_ns: c.created().0, config: c.config().clone(), state: c.state().clone() };
            let body = serde_json::to_vec(&saved).expect("a consumer serialises");
            let generation = self.consumer_files.files.get(&p).map_or(1, |f| f.generation + 1);
            let file = format!("{p}{generation}");
            let mut st = storage.lock();
            let written = st.write_synced(&file, &state::encode(&body));
            drop(st);
            match written {
                Ok(token) => {
                    let saves = self.consumer_files.files.entry(p.clone()).or_default();
                    let old = std::mem::replace(&mut saves.generation, generation);
                    saves.in_flight = Some(token);
                    saves.saved_at = Some(now);
                    if old > 0 {
                        self.consumer_files.superseded.push((token, format!("{p}{old}")));
                    }
                }
                Err(e) => self.log(Level::Error, format!("Saving consumer '{account} > {stream} > {name}' failed: {e}")),
            }
        }
        self.consumer_files.due = due;
    }

    /// Sync completions: superseded generations can go.
    pub(crate) fn consumers_synced(&mut self, tokens: &[SyncToken]) {
        let Some(storage) = self.storage.clone() else { return };
        let (done, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.consumer_files.superseded).into_iter().partition(|(t, _)| tokens.contains(t));
        self.consumer_files.superseded = keep;
        let mut st = storage.lock();
        for (_, file) in done {
            let _ = st.remove(&file);
        }
        drop(st);
        for file in self.consumer_files.files.values_mut() {
            file.in_flight = file.in_flight.filter(|t| !tokens.contains(t));
        }
        // Saves deferred behind this sync go now, or once their interval
        // passed (unless a confirmation waits: the flush coming for it
        // saves every changed consumer).
        if self.consumers_dirty() && !self.confirms_consumers {
            self.save_consumers();
        }
    }

    /// Removes a deleted consumer's files.
    pub(crate) fn forget_consumer_files(&mut self, account: &str, stream: &str, name: &str) {
        let p = prefix(account, stream, name);
        self.consumer_files.dirty.remove(&(account.to_owned(), stream.to_owned(), name.to_owned()));
        self.consumer_files.files.remove(&p);
        let Some(storage) = self.storage.clone() else { return };
        let mut st = storage.lock();
        let files: Vec<String> = match st.list() {
            Ok(names) => names.into_iter().filter(|f| f.starts_with(&p)).collect(),
            Err(e) => {
                drop(st);
                let line = format!("Removing the files of consumer '{account} > {stream} > {name}' failed: {e}");
                return self.log(Level::Error, line);
            }
        };
        for f in &files {
            let _ = st.remove(f);
        }
        if !files.is_empty() {
            let _ = st.sync_dir();
        }
    }

    /// Restores the saved consumers of the recovered streams.
    pub(crate) fn recover_consumers(&mut self) {
        let Some(storage) = self.storage.clone() else { return };
        let max_payload = self.limits.max_payload;
        // JetStream::recover found the names readable (or dropped the storage).
        let names = storage.lock().list().unwrap_or_default();
        let mut newest: BTreeMap<(String, String, String), Vec<u64>> = BTreeMap::new();
        for file in &names {
            let parts: Vec<&str> = file.split('.').collect();
            let [a, s, "obs", c, g] = parts[..] else { continue };
            let (Some(a), Some(s), Some(c), Ok(g)) = (unescape_name(a), unescape_name(s), unescape_name(c), g.parse::<u64>()) else { continue };
            newest.entry((a, s, c)).or_default().push(g);
        }
        for ((account, stream, name), mut gens) in newest {
            gens.sort_unstable();
            let p = prefix(&account, &stream, &name);
            let mut restored = None;
            for &g in gens.iter().rev() {
                let file = format!("{p}{g}");
                let bytes = storage.lock().read_all(&file).ok();
                let saved = bytes.as_deref().and_then(state::decode).and_then(|b| serde_json::from_slice::<Saved>(b).ok());
                if let Some(saved) = saved {
                    restored = Some((g, saved));
                    break;
                }
            }
            let Some((generation, saved)) = restored else {
                self.log(Level::Warn, format!("Could not restore consumer '{account} > {stream} > {name}'"));
                continue;
            };
            // The other generations go: older ones are superseded by the
            // one restored, newer ones are saves a crash cut short. Numbering
            // goes on above all of them, so that no save lands on a file a
            // crash left behind (its record would not read back).
            let top = gens.last().copied().unwrap_or(generation).max(generation);
            self.consumer_files.files.insert(p.clone(), SavedFile { generation: top, ..SavedFile::default() });
            let stale: Vec<String> = gens.iter().filter(|&&g| g != generation).map(|g| format!("{p}{g}")).collect();
            if !stale.is_empty() {
                let mut st = storage.lock();
                for file in &stale {
                    let _ = st.remove(file);
                }
                let _ = st.sync_dir();
            }
            let Some(acc) = self.accounts.get_mut(&account) else { continue };
            let Some(last_seq) = acc.streams.get(&stream).map(|s| s.store().state().last_seq) else { continue };
            let mut c = Consumer::restore(&stream, &name, saved.config, UnixNanos(saved.created_ns), saved.state);
            if let Some(s) = acc.streams.get(&stream) {
                c.set_rate_burst(super::api::rate_burst(s.config().max_msg_size, max_payload));
            }
            let delivered = c.state().delivered.stream_seq;
            let reconciled = c.reconcile_with_stream(last_seq);
            acc.consumers.entry(stream.clone()).or_default().insert(name.clone(), c);
            self.log(Level::Info, format!("  Restored consumer '{account} > {stream} > {name}'"));
            if reconciled {
                // The stream lost messages in a crash: the consumer forgets
                // what it delivered beyond the stream's end, and saves that.
                self.log(
                    Level::Warn,
                    format!("JetStream consumer '{account} > {stream} > {name}' delivered sequence {delivered} past last stream sequence of {last_seq}"),
                );
                self.save_consumer(&account, &stream, &name);
            }
        }
        // Saved now, before new messages can take the forgotten sequences.
        if self.consumers_dirty() {
            self.save_consumers();
        }
    }
}
