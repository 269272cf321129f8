//! What is owed to one connection: the bytes encoded for it and not yet
//! taken by the runtime, its subscriptions as deliveries see them, and the
//! figures that deliveries update. It is the only per-connection state that
//! other connections touch: a publisher on any thread locks the receiver's
//! outbox for the length of one message, so messages from different
//! publishers interleave whole, and each publisher's stay in order.
//!
//! The runtime drains an outbox when its [`Wake`] is called: [`Outbox::take`]
//! (or [`Outbox::take_chunks`]) hands over the bytes, [`Outbox::written`]
//! reports how many reached the socket, and [`Outbox::recycle`] gives back
//! the written chunks for reuse.
//!
//! The bytes are kept in chunks of about [`CHUNK_BYTES`], not in one buffer
//! that grows: a receiver that falls behind a fast producer would otherwise
//! hold megabytes in one allocation, copied each time it doubles, and freed
//! after each write so that the next one faults fresh pages in. Written
//! chunks come back and are filled again (nats-server keeps its outbound
//! buffers in pools of fixed-size frames for the same reason).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::auth::ClientPermissions;
use crate::protocol::ParserLimits;
use crate::sync::{AtomicBool, Lock, LockGuard, Ordering};
use crate::time::{Instant, UnixNanos};

use super::AccountShared;
use super::client::Counters;
use super::subs::Subscriptions;
use super::{CloseReason, ConnId};

/// How large a chunk of queued bytes grows before the next message starts
/// another one (give or take its last doubling; a message larger than this
/// gets a chunk of its own size).
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Written chunks an outbox keeps for reuse: with the one being filled and
/// the one being written, a busy connection cycles through a few chunks
/// and allocates nothing.
const SPARE_CHUNKS_MAX: usize = 2;
/// The smallest written chunk kept for reuse: smaller ones are a quiet
/// connection's, not worth holding on to.
const SPARE_CHUNK_BYTES_MIN: usize = 4 * 1024;

/// Tells the runtime that an outbox has bytes to take (or was closed).
/// Called outside every lock of the core, once per batch of deliveries.
pub trait Wake: Send + Sync {
    /// The outbox of `conn` wants draining.
    fn wake(&self, conn: ConnId);
}

/// One connection's outbox. Aligned to its own cache lines: publishers on
/// other threads lock their receivers' outboxes all the time, and an
/// outbox sharing a line with another connection's would make that
/// connection's thread wait on traffic that is not its own.
#[repr(align(128))]
pub struct Outbox {
    cid: ConnId,
    state: Lock<OutboxState>,
    /// `state.closed.is_some()`, readable without the lock: the session
    /// checks it before each publish it delivers.
    closed: AtomicBool,
    waker: Box<dyn Wake>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("cid", &self.cid).finish_non_exhaustive()
    }
}

/// What [`Outbox::take`] hands the runtime.
#[derive(Debug, Default)]
pub struct Taken {
    /// Bytes to write, after everything taken before.
    pub bytes: Option<Bytes>,
    /// The core let the connection go: write `bytes`, then close (or cut
    /// it at once when [`CloseReason::is_slow_consumer`]).
    pub closed: Option<CloseReason>,
}

/// How a connection's publishes are handled, as its last CONNECT (and the
/// claims of its user and account) set them. The control plane replaces it
/// whole; the connection's session picks the new one up before its next op.
#[derive(Debug)]
pub(crate) struct Profile {
    /// CONNECT accepted (or none needed yet): PUB may take the fast path.
    pub connected: bool,
    pub account: Arc<AccountShared>,
    pub verbose: bool,
    pub pedantic: bool,
    pub echo: bool,
    pub headers: bool,
    pub no_responders: bool,
    /// The user has permissions: publishes are checked under the outbox lock.
    pub guarded: bool,
    pub parser_limits: ParserLimits,
    /// `-V`: every op is traced, which the control plane does.
    pub trace: bool,
    /// The configured users, when checking a CONNECT's credentials needs
    /// nothing else (outside operator mode); replaced on a config reload.
    pub plain_auth: Option<Arc<super::PlainAuth>>,
}

/// The outbox's contents, under its lock.
#[derive(Debug)]
pub(crate) struct OutboxState {
    /// Encoded and not yet taken by the runtime.
    pub queued: Chunks,
    /// Taken by the runtime and not yet reported written.
    pub pending_bytes: u64,
    /// When the runtime last made write progress while bytes were pending.
    pub write_progress_at: Option<Instant>,
    /// Set once the core let the connection go: nothing more is queued.
    pub closed: Option<CloseReason>,
    /// A wake is owed for bytes queued since the runtime last took.
    pub dirty: bool,
    pub subs: Subscriptions,
    /// The user's permissions (`None` allows everything): receive checks
    /// and response grants happen at delivery, publish checks at the publisher.
    pub perms: Option<Box<ClientPermissions>>,
    pub counters: Counters,
    /// When the last bytes from the client arrived (monotonic and wall).
    pub last_in_at: Instant,
    pub last_activity: UnixNanos,
    pub profile: Arc<Profile>,
}

impl OutboxState {
    /// Bytes the client has not read yet: taken and unwritten, plus queued.
    pub fn unread_bytes(&self) -> u64 {
        self.pending_bytes + self.queued.len() as u64
    }


    /// The client read something lately: nothing was pending in the
    /// runtime, or a write made progress within [`DRAIN_GRACE`](super::DRAIN_GRACE).
    pub fn draining(&self, now: Instant) -> bool {
        self.write_progress_at.is_none_or(|at| now.saturating_duration_since(at) < super::DRAIN_GRACE)
    }

    /// The client is a slow consumer: past `max_pending` and not draining,
    /// or past twice `max_pending` whatever it does.
    pub fn over_limit(&self, now: Instant, max_pending: u64) -> bool {
        let unread = self.unread_bytes();
        unread > max_pending && (unread > 2 * max_pending || !self.draining(now))
    }

    /// `n` bytes were taken by the runtime.
    fn taken(&mut self, now: Instant, n: usize) {
        if self.pending_bytes == 0 {
            self.write_progress_at = Some(now);
        }
        self.pending_bytes += n as u64;
    }

    /// Notes that bytes were queued; true if the caller now owes a wake.
    #[must_use]
    pub fn mark_dirty(&mut self) -> bool {
        !std::mem::replace(&mut self.dirty, true)
    }
}

impl Outbox {
    /// `seed` keys the hashing of the connection's sids.
    pub(crate) fn new(
        cid: ConnId,
        waker: Box<dyn Wake>,
        profile: Arc<Profile>,
        seed: u64,
        now: Instant,
        wall: UnixNanos,
    ) -> Self {
        let state = OutboxState {
            queued: Chunks::default(),
            pending_bytes: 0,
            write_progress_at: None,
            closed: None,
            dirty: false,
            subs: Subscriptions::new(seed),
            perms: None,
            counters: Counters::default(),
            last_in_at: now,
            last_activity: wall,
            profile,
        };
        Outbox { cid, state: Lock::new(state), closed: AtomicBool::new(false), waker }
    }

    /// The connection this outbox belongs to.
    pub fn cid(&self) -> ConnId {
        self.cid
    }

    pub(crate) fn lock(&self) -> LockGuard<'_, OutboxState> {
        self.state.lock()
    }

    /// Closes the outbox (`state` is its locked contents): nothing more is
    /// queued. The first reason stays.
    pub(crate) fn close(&self, state: &mut OutboxState, reason: CloseReason) {
        state.closed.get_or_insert(reason);
        self.closed.store(true, Ordering::Release);
    }

    /// True once the core let the connection go.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn wake(&self) {
        self.waker.wake(self.cid);
    }

    /// Hands the runtime what is queued, in one piece. Call it when woken;
    /// calling it more often is harmless. [`Outbox::take_chunks`] does the
    /// same without joining the chunks.
    pub fn take(&self, now: Instant) -> Taken {
        let mut s = self.lock();
        s.dirty = false;
        let bytes = if s.queued.sealed.is_empty() {
            (!s.queued.bytes.is_empty()).then(|| s.queued.bytes.split().freeze())
        } else {
            let mut chunks = Vec::with_capacity(s.queued.sealed.len() + 1);
            let n = s.queued.take_chunks(&mut chunks);
            let mut joined = BytesMut::with_capacity(n);
            chunks.iter().for_each(|c| joined.extend_from_slice(c));
            // Copied out: the chunks are free to be filled again.
            chunks.into_iter().for_each(|c| s.queued.recycle(c));
            Some(joined.freeze())
        };
        if let Some(b) = &bytes {
            s.taken(now, b.len());
        }
        Taken { bytes, closed: s.closed }
    }

    /// Appends what is queued to `chunks`, in order, and returns the close
    /// reason once the core let the connection go (write the chunks first).
    /// Call it when woken; calling it more often is harmless.
    pub fn take_chunks(&self, now: Instant, chunks: &mut Vec<Bytes>) -> Option<CloseReason> {
        let mut s = self.lock();
        s.dirty = false;
        let n = s.queued.take_chunks(chunks);
        if n > 0 {
            s.taken(now, n);
        }
        s.closed
    }

    /// Gives back chunks from [`Outbox::take_chunks`] that were written
    /// whole and are no longer referenced elsewhere, for the outbox to fill
    /// again; `chunks` is left empty. Small chunks, oversized ones (a large
    /// message's), and those beyond the few an outbox keeps are freed.
    pub fn recycle(&self, chunks: &mut Vec<Bytes>) {
        if chunks.is_empty() {
            return;
        }
        let mut s = self.lock();
        if s.closed.is_some() {
            chunks.clear();
            return;
        }
        chunks.drain(..).for_each(|c| s.queued.recycle(c));
    }

    /// `n` more of the taken bytes reached the socket.
    pub fn written(&self, now: Instant, n: usize) {
        let mut s = self.lock();
        // The runtime reports only bytes it took: more is a runtime bug.
        debug_assert!(n as u64 <= s.pending_bytes, "{}: {n} bytes written of {} pending", self.cid, s.pending_bytes);
        s.pending_bytes = s.pending_bytes.saturating_sub(n as u64);
        s.write_progress_at = (s.pending_bytes > 0).then_some(now);
    }
}

/// Bytes queued for a connection: the chunk being filled, after the full
/// ones, and the written chunks kept for reuse.
#[derive(Debug, Default)]
pub(crate) struct Chunks {
    /// The chunk being filled.
    bytes: BytesMut,
    /// Full chunks, oldest first.
    sealed: Vec<Bytes>,
    /// Their total length.
    sealed_bytes: usize,
    /// Written chunks handed back by the runtime, emptied.
    spare: Vec<BytesMut>,
}

impl Chunks {
    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.sealed_bytes + self.bytes.len()
    }

    /// The buffer to append about `need` more bytes to (the encoders
    /// reserve what they need themselves). The chunk being filled is sealed
    /// and another one started when it would have to grow past
    /// [`CHUNK_BYTES`].
    pub fn buf(&mut self, need: usize) -> &mut BytesMut {
        let len = self.bytes.len();
        if len > 0 && len + need > self.bytes.capacity() && len + need > CHUNK_BYTES {
            let next = self.spare_chunk(need).unwrap_or_else(|| BytesMut::with_capacity(need.max(CHUNK_BYTES)));
            let full = std::mem::replace(&mut self.bytes, next).freeze();
            self.sealed_bytes += full.len();
            self.sealed.push(full);
        } else if self.bytes.capacity() == 0 {
            if let Some(chunk) = self.spare_chunk(need) {
                self.bytes = chunk;
            }
        }
        &mut self.bytes
    }

    /// A spare chunk with room for `need` bytes, if one is kept.
    fn spare_chunk(&mut self, need: usize) -> Option<BytesMut> {
        self.spare.pop().filter(|c| c.capacity() >= need)
    }

    /// Moves everything queued into `into`, in order; returns its length.
    fn take_chunks(&mut self, into: &mut Vec<Bytes>) -> usize {
        let n = self.len();
        into.append(&mut self.sealed);
        self.sealed_bytes = 0;
        if !self.bytes.is_empty() {
            // The whole chunk, not a split of it: once written, nothing
            // else shares its allocation and it can come back as a spare.
            let next = self.spare.pop().unwrap_or_default();
            into.push(std::mem::replace(&mut self.bytes, next).freeze());
        }
        n
    }

    /// Keeps a written chunk for reuse, if it is no longer shared, of a
    /// size worth keeping, and fewer than [`SPARE_CHUNKS_MAX`] are kept.
    fn recycle(&mut self, chunk: Bytes) {
        if self.spare.len() >= SPARE_CHUNKS_MAX {
            return;
        }
        let Ok(mut chunk) = chunk.try_into_mut() else { return };
        chunk.clear();
        // Back to the start of its allocation if it was split off.
        let _whole = chunk.try_reclaim(chunk.capacity() + 1);
        if (SPARE_CHUNK_BYTES_MIN..=2 * CHUNK_BYTES).contains(&chunk.capacity()) {
            self.spare.push(chunk);
        }
    }
}

/// Outboxes that owe a wake, each once, woken together at the end of a
/// batch so that the runtime writes each connection's bytes in one go.
#[derive(Debug, Default)]
pub(crate) struct Touched(Vec<Arc<Outbox>>);

impl Touched {
    pub fn push(&mut self, outbox: &Arc<Outbox>) {
        self.0.push(Arc::clone(outbox));
    }

    /// Wakes every outbox touched since the last call.
    pub fn wake_all(&mut self) {
        for outbox in self.0.drain(..) {
            outbox.wake();
        }
    }

    /// Takes over another list's outboxes.
    pub fn append(&mut self, other: &mut Touched) {
        self.0.append(&mut other.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::encode;

    /// Queues `count` MSGs of `size` payload bytes as deliveries do;
    /// returns the bytes a client should read.
    fn queue_msgs(c: &mut Chunks, count: usize, size: usize) -> Vec<u8> {
        let mut expected = BytesMut::new();
        for i in 0..count {
            let payload = vec![b'a' + (i % 26) as u8; size];
            encode::write_msg(&mut expected, b"fan.out", b"1", None, &payload);
            encode::write_msg(c.buf(size + 64), b"fan.out", b"1", None, &payload);
        }
        expected.to_vec()
    }

    fn joined(chunks: &[Bytes]) -> Vec<u8> {
        chunks.iter().flat_map(|c| c.iter().copied()).collect()
    }

    #[test]
    fn chunks_hold_the_bytes_in_order_and_stop_growing_at_the_chunk_size() {
        let mut c = Chunks::default();
        let expected = queue_msgs(&mut c, 300, 1024);
        assert_eq!(c.len(), expected.len());
        let mut taken = Vec::new();
        assert_eq!(c.take_chunks(&mut taken), expected.len());
        assert!(taken.len() > 4, "{} chunks for {} bytes", taken.len(), expected.len());
        // A chunk grows by doubling until a message would take it past
        // CHUNK_BYTES, so it may end a little over.
        assert!(taken.iter().all(|t| t.len() <= 2 * CHUNK_BYTES), "a chunk grew past twice {CHUNK_BYTES}");
        assert_eq!(joined(&taken), expected);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn a_message_larger_than_a_chunk_gets_one_of_its_own_size() {
        let mut c = Chunks::default();
        let mut expected = queue_msgs(&mut c, 3, 1000);
        expected.extend(queue_msgs(&mut c, 1, 3 * CHUNK_BYTES));
        expected.extend(queue_msgs(&mut c, 2, 10));
        let mut taken = Vec::new();
        c.take_chunks(&mut taken);
        assert_eq!(joined(&taken), expected);
        assert!(taken.iter().any(|t| t.len() > 3 * CHUNK_BYTES));
    }

    #[test]
    fn written_chunks_are_filled_again_without_allocating() {
        let mut c = Chunks::default();
        queue_msgs(&mut c, 200, 1024);
        let mut taken = Vec::new();
        c.take_chunks(&mut taken);
        let addresses: Vec<*const u8> = taken.iter().map(|t| t.as_ptr()).collect();
        taken.drain(..).for_each(|t| c.recycle(t));
        assert_eq!(c.spare.len(), SPARE_CHUNKS_MAX, "the spares are bounded");
        let expected = queue_msgs(&mut c, 60, 1024);
        c.take_chunks(&mut taken);
        assert_eq!(joined(&taken), expected);
        assert!(addresses.contains(&taken[0].as_ptr()), "the next chunk reuses a written one");
    }

    #[test]
    fn shared_or_small_chunks_are_not_kept() {
        let mut c = Chunks::default();
        let expected = queue_msgs(&mut c, 100, 1024);
        let mut taken = Vec::new();
        c.take_chunks(&mut taken);
        // Still referenced (a writer's slice of it): reusing it would
        // overwrite bytes not yet written.
        let held = taken[0].slice(10..20);
        c.recycle(taken.remove(0));
        assert!(c.spare.is_empty());
        queue_msgs(&mut c, 100, 1024);
        assert_eq!(&held[..], &expected[10..20]);
        // A quiet connection's few bytes.
        let mut small = Chunks::default();
        queue_msgs(&mut small, 1, 100);
        small.take_chunks(&mut taken);
        small.recycle(taken.pop().expect("taken"));
        assert!(small.spare.is_empty());
    }
}
