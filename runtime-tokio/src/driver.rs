//! The driver: the core's control plane behind one lock, and every
//! connection's session run by that connection's own task.
//!
//! A connection task feeds its [`Session`] what it reads; the session
//! delivers publishes itself, into the receivers' outboxes, and takes the
//! control lock only for what changes shared state (CONNECT, SUB, UNSUB,
//! PING…, publishes that cross accounts). A receiver's writer task sleeps
//! on its [`Signal`] until an outbox wakes it, then takes the bytes and
//! writes them. The timer task and the monitoring server take the control
//! lock; neither stops publishes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use natrix_core::server::{CloseReason, Control, Session, Transport, Wake, WithControl};
use natrix_core::{ConnId, Instant, Output};
use tokio::sync::Notify;

use crate::clock;
use crate::logger::Logger;

/// What a connection's writer task waits on.
#[derive(Debug, Default)]
pub struct Signal {
    /// The outbox has bytes, or was closed.
    pub ready: Notify,
    /// Cut the connection without flushing (a slow consumer's socket may never drain).
    pub kill: Notify,
}

/// An outbox's wake: its writer task's signal.
struct Waker(Arc<Signal>);

impl Wake for Waker {
    fn wake(&self, _conn: ConnId) {
        WAKES.with(|w| w.set(w.get().wrapping_add(1)));
        self.0.ready.notify_one();
    }
}

thread_local! {
    /// Writers woken from this thread so far: a reader compares it before
    /// and after handing a read to the core (which wakes synchronously)
    /// to learn whether the read queued bytes for anyone.
    static WAKES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Writers woken from this thread so far (see `WAKES`).
pub(crate) fn wakes() -> u64 {
    WAKES.with(std::cell::Cell::get)
}

/// The control plane plus the runtime's per-connection signals.
pub struct Core {
    /// The node's control plane.
    pub control: Control,
    signals: HashMap<ConnId, Arc<Signal>>,
    timer_deadline: Option<Instant>,
    /// Syncs the server's storage completed, to report back to it.
    synced: Option<crate::storage::Completions>,
    /// Syncs of JetStream's storage completed.
    js_synced: Option<crate::storage::Completions>,
}

/// State shared by every task of the runtime.
pub struct Shared {
    core: Mutex<Core>,
    /// Wakes the timer task when the core's next deadline moved earlier.
    pub timer_changed: Notify,
    /// The log printer.
    pub logger: Arc<Logger>,
    /// How long a write may make no progress before the core hears of it,
    /// in nanoseconds (a config reload changes it).
    write_deadline_ns: std::sync::atomic::AtomicU64,
}

/// A session's way to the control plane: the lock.
pub struct Locked<'a>(pub &'a Shared);

impl WithControl for Locked<'_> {
    fn with_control<R>(&mut self, f: impl FnOnce(&mut Control) -> R) -> R {
        self.0.with_control(f)
    }
}

impl Shared {
    /// Wraps a freshly built control plane; `synced` is the completion
    /// queue of the storage it was given, if any.
    pub fn new(
        control: Control,
        logger: Arc<Logger>,
        synced: Option<crate::storage::Completions>,
        js_synced: Option<crate::storage::Completions>,
    ) -> Arc<Self> {
        let write_deadline = control.options().write_deadline;
        Arc::new(Shared {
            write_deadline_ns: std::sync::atomic::AtomicU64::new(duration_ns(write_deadline)),
            core: Mutex::new(Core { control, signals: HashMap::new(), timer_deadline: None, synced, js_synced }),
            timer_changed: Notify::new(),
            logger,
        })
    }

    /// How long a write may make no progress before the core hears of it.
    pub fn write_deadline(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.write_deadline_ns.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Sets the write deadline (after a config reload).
    pub fn set_write_deadline(&self, deadline: std::time::Duration) {
        self.write_deadline_ns.store(duration_ns(deadline), std::sync::atomic::Ordering::Relaxed);
    }

    /// Locks the control plane. A panic while it was held leaves the core
    /// in an unknown state; the only safe answer is to stop the process.
    fn lock(&self) -> MutexGuard<'_, Core> {
        match self.core.lock() {
            Ok(guard) => guard,
            Err(_) => {
                self.logger.at(natrix_core::log::Level::Fatal, "core state poisoned by a panic");
                std::process::exit(1);
            }
        }
    }

    /// Runs `f` on the control plane, then carries out every output it produced.
    pub fn with_control<R>(&self, f: impl FnOnce(&mut Control) -> R) -> R {
        let mut core = self.lock();
        let result = f(&mut core.control);
        self.drain(&mut core);
        result
    }

    /// Accepts a new connection: the core greets it and hands back its
    /// session; the signal is what its writer task waits on.
    pub fn connect(&self, peer: SocketAddr) -> (Session, Arc<Signal>) {
        self.connect_via(peer, Transport::Tcp)
    }

    /// [`Shared::connect`] for a client that came over `transport`.
    pub fn connect_via(&self, peer: SocketAddr, transport: Transport) -> (Session, Arc<Signal>) {
        let signal = Arc::new(Signal::default());
        let mut core = self.lock();
        let waker = Box::new(Waker(Arc::clone(&signal)));
        let session = core.control.handle_connected_via(clock::now(), clock::wall(), peer, waker, transport);
        core.signals.insert(session.cid(), Arc::clone(&signal));
        self.drain(&mut core);
        (session, signal)
    }

    fn drain(&self, core: &mut Core) {
        loop {
            self.carry_out(core);
            // Completed syncs release acknowledgements, which are more outputs.
            if let Some(tokens) = core.js_synced.as_ref().and_then(take_all) {
                core.control.handle_jetstream_synced(clock::now(), &tokens);
                continue;
            }
            let Some(tokens) = core.synced.as_ref().and_then(take_all) else { break };
            core.control.handle_synced(clock::now(), &tokens);
        }
        self.follow_timer(core);
    }

    fn carry_out(&self, core: &mut Core) {
        while let Some(output) = core.control.poll_output() {
            match output {
                // Bytes reach a writer through its outbox, never as an output.
                Output::Transmit { .. } => debug_assert!(false, "the control plane transmitted"),
                Output::Close { conn, reason } => {
                    // The outbox is closed and its writer woken: it writes
                    // what is left and closes, unless told to cut.
                    if let Some(signal) = core.signals.remove(&conn) {
                        if matches!(
                            reason,
                            CloseReason::SlowConsumerPendingBytes | CloseReason::SlowConsumerWriteDeadline
                        ) {
                            signal.kill.notify_one();
                        }
                    }
                }
                Output::Log(event) => self.logger.log(&event),
            }
        }
    }

    fn follow_timer(&self, core: &mut Core) {
        let next = core.control.poll_timeout();
        if next != core.timer_deadline {
            let earlier = match (next, core.timer_deadline) {
                (Some(n), Some(old)) => n < old,
                (Some(_), None) => true,
                _ => false,
            };
            core.timer_deadline = next;
            if earlier {
                self.timer_changed.notify_one();
            }
        }
    }

    /// The connection's socket is gone (peer hang-up, I/O error). Safe to call
    /// for a connection the core already closed.
    pub fn closed(&self, conn: ConnId, reason: CloseReason) {
        let mut core = self.lock();
        if core.signals.remove(&conn).is_some() {
            core.control.handle_closed(clock::now(), conn, reason);
            self.drain(&mut core);
        }
    }

    /// The core's next deadline, as last seen.
    pub fn timer_deadline(&self) -> Option<Instant> {
        self.lock().timer_deadline
    }
}

/// Every completed sync token, emptying the queue (`None` when it is empty).
fn take_all(queue: &crate::storage::Completions) -> Option<Vec<natrix_core::storage::SyncToken>> {
    let mut queue = match queue.lock() {
        Ok(q) => q,
        Err(poisoned) => poisoned.into_inner(),
    };
    (!queue.is_empty()).then(|| std::mem::take(&mut *queue))
}

/// Hands completed syncs (JetStream's, the resolver's) to the core as soon
/// as a syncer thread reports them (the acknowledgements they release go
/// out at once).
pub async fn run_syncs(shared: Arc<Shared>, woken: Arc<Notify>) {
    loop {
        woken.notified().await;
        shared.with_control(|_| ());
    }
}

/// Runs the core's timers for as long as the process lives.
pub async fn run_timers(shared: Arc<Shared>) {
    loop {
        let deadline = shared.timer_deadline();
        let changed = shared.timer_changed.notified();
        match deadline {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(clock::to_tokio(at)) => {
                        shared.with_control(|c| c.handle_timeout(clock::now()));
                    }
                    () = changed => {}
                }
            }
            None => changed.await,
        }
    }
}

fn duration_ns(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
