//! The driver: one core `Server` behind a mutex, fed by the connection tasks
//! and the timer task, with its outputs carried out while the lock is held so
//! that the bytes for one connection leave in the order the core produced them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use natrix_core::server::CloseReason;
use natrix_core::{ConnId, Instant, Output, Server};
use tokio::sync::{mpsc, Notify};

use crate::clock;
use crate::logger::Logger;

/// What a connection's writer task is told to do.
#[derive(Debug)]
pub enum WriterMsg {
    /// Write these bytes.
    Bytes(Bytes),
    /// Write everything before this, then close.
    Close(CloseReason),
}

/// The runtime's handle on one connection's writer task.
struct ConnHandle {
    tx: mpsc::UnboundedSender<WriterMsg>,
    /// Cuts the connection without flushing (a slow consumer's socket may never drain).
    kill: Arc<Notify>,
}

/// The core plus the runtime's per-connection handles.
pub struct Core {
    /// The node's state machine.
    pub server: Server,
    writers: HashMap<ConnId, ConnHandle>,
    timer_deadline: Option<Instant>,
    /// Syncs the server's storage completed, to report back to it.
    synced: Option<crate::storage::Completions>,
}

/// State shared by every task of the runtime.
pub struct Shared {
    core: Mutex<Core>,
    /// Wakes the timer task when the core's next deadline moved earlier.
    pub timer_changed: Notify,
    /// The log printer.
    pub logger: Arc<Logger>,
}

impl Shared {
    /// Wraps a freshly built server; `synced` is the completion queue of
    /// the storage it was given, if any.
    pub fn new(server: Server, logger: Arc<Logger>, synced: Option<crate::storage::Completions>) -> Arc<Self> {
        Arc::new(Shared {
            core: Mutex::new(Core { server, writers: HashMap::new(), timer_deadline: None, synced }),
            timer_changed: Notify::new(),
            logger,
        })
    }

    /// Locks the core. A panic while it was held leaves the core in an unknown
    /// state; the only safe answer is to stop the process.
    pub fn lock(&self) -> MutexGuard<'_, Core> {
        match self.core.lock() {
            Ok(guard) => guard,
            Err(_) => {
                self.logger.at(natrix_core::log::Level::Fatal, "core state poisoned by a panic");
                std::process::exit(1);
            }
        }
    }

    /// Runs `f` on the server, then carries out every output it produced.
    pub fn with_server<R>(&self, f: impl FnOnce(&mut Server) -> R) -> R {
        let mut core = self.lock();
        let result = f(&mut core.server);
        self.drain(&mut core);
        result
    }

    /// Accepts a new connection: registers its writer, then lets the core greet it.
    pub fn connect(&self, peer: SocketAddr) -> (ConnId, mpsc::UnboundedReceiver<WriterMsg>, Arc<Notify>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let kill = Arc::new(Notify::new());
        let mut core = self.lock();
        let conn = core.server.handle_connected(clock::now(), clock::wall(), peer);
        core.writers.insert(conn, ConnHandle { tx, kill: kill.clone() });
        self.drain(&mut core);
        (conn, rx, kill)
    }

    fn drain(&self, core: &mut Core) {
        loop {
            self.carry_out(core);
            // Completed syncs release acknowledgements, which are more outputs.
            let Some(token) = core.synced.as_ref().and_then(take_last) else { break };
            core.server.handle_synced(clock::now(), token);
        }
        self.follow_timer(core);
    }

    fn carry_out(&self, core: &mut Core) {
        while let Some(output) = core.server.poll_output() {
            match output {
                Output::Transmit { conn, bytes } => {
                    if let Some(handle) = core.writers.get(&conn) {
                        // A send fails only when the writer is gone, i.e. the
                        // socket is already closed: the bytes have nowhere to go.
                        let _ = handle.tx.send(WriterMsg::Bytes(bytes));
                    }
                }
                Output::Close { conn, reason } => {
                    if let Some(handle) = core.writers.remove(&conn) {
                        let _ = handle.tx.send(WriterMsg::Close(reason));
                        if matches!(
                            reason,
                            CloseReason::SlowConsumerPendingBytes | CloseReason::SlowConsumerWriteDeadline
                        ) {
                            handle.kill.notify_one();
                        }
                    }
                }
                Output::Log(event) => self.logger.log(&event),
            }
        }
    }

    fn follow_timer(&self, core: &mut Core) {
        let next = core.server.poll_timeout();
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
        if core.writers.remove(&conn).is_some() {
            core.server.handle_closed(clock::now(), conn, reason);
            self.drain(&mut core);
        }
    }

    /// The core's next deadline, as last seen.
    pub fn timer_deadline(&self) -> Option<Instant> {
        self.lock().timer_deadline
    }
}

/// The highest completed sync token, emptying the queue: completion of a
/// token implies every earlier one completed.
fn take_last(queue: &crate::storage::Completions) -> Option<natrix_core::storage::SyncToken> {
    let mut queue = match queue.lock() {
        Ok(q) => q,
        Err(poisoned) => poisoned.into_inner(),
    };
    queue.drain(..).max()
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
                        shared.with_server(|s| s.handle_timeout(clock::now()));
                    }
                    () = changed => {}
                }
            }
            None => changed.await,
        }
    }
}
