//! The one place the core names a synchronisation primitive.
//!
//! The core spawns no thread and never waits on anything but the short
//! critical sections below; the runtime decides which thread runs which
//! piece. In the simulator one thread runs every piece, so these locks are
//! never contended and change nothing about determinism; in production the
//! connection tasks run on every worker and meet only here:
//!
//! - [`Lock`] guards one connection's `Outbox`:
//!   whoever delivers to that connection takes it for one message.
//! - [`Shared`] guards an account's subscription index: read by
//!   publishers whose cached match went stale, written by SUB and UNSUB.
//!
//! Lock order, never taken the other way: the server's control state (held
//! by the runtime), then an index, then an outbox. No code holds two
//! outboxes at once. Under `--cfg loom` the primitives are loom's, so the
//! outbox protocol can be model-checked (see `runtime-tokio/tests/loom_outbox.rs`).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[cfg(loom)]
use loom::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
#[cfg(not(loom))]
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Access to a [`Lock`]'s value, for as long as it lives.
pub(crate) type LockGuard<'a, T> = MutexGuard<'a, T>;

/// A value one thread at a time may change.
///
/// A panic while it is held leaves the value as the panicking code left
/// it; the runtime stops the process on a panic in the core, so the guard
/// is taken regardless rather than poisoning every later caller.
#[derive(Debug, Default)]
pub struct Lock<T>(Mutex<T>);

impl<T> Lock<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Lock(Mutex::new(value))
    }

    /// Waits for the value, for one short critical section.
    pub fn lock(&self) -> LockGuard<'_, T> {
        match self.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// A value many threads read and few change.
#[derive(Debug, Default)]
pub struct Shared<T>(RwLock<T>);

impl<T> Shared<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Shared(RwLock::new(value))
    }

    /// Reads the value.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        match self.0.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Changes the value.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        match self.0.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}
