//! Resource limits: the server's memory and storage budget, and each
//! account's JetStream limits (streams, consumers, bytes), applied as
//! nats-server applies them on one node.
//!
//! Two kinds of figure are checked. A stream's `max_bytes` *reserves* room
//! when the stream is made or grows (the sum of reservations may not pass
//! the account's or the server's budget); the bytes streams actually *use*
//! are checked on each publish. A stream without `max_bytes` reserves
//! nothing (one byte, for the check at creation).

use super::api::{AccountLimits, ApiError};
use super::config::{StorageType, StreamConfig};

/// What a stream takes from its account and its server: its
/// configuration, as far as the limits care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint<'a> {
    /// The stream's name.
    pub name: &'a str,
    /// Memory or file.
    pub storage: StorageType,
    /// Its `max_bytes` (0 or less: none).
    pub max_bytes: i64,
}

impl<'a> Footprint<'a> {
    /// A stream configuration's footprint.
    pub fn of(cfg: &'a StreamConfig) -> Self {
        Footprint { name: &cfg.name, storage: cfg.storage, max_bytes: cfg.max_bytes }
    }
}

/// The server's JetStream budget (`max_memory_store`, `max_file_store`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerBudget {
    /// Memory bytes; negative for no limit.
    pub max_memory: i64,
    /// Storage bytes; negative for no limit.
    pub max_store: i64,
}

impl ServerBudget {
    fn max(&self, storage: StorageType) -> i64 {
        match storage {
            StorageType::Memory => self.max_memory,
            StorageType::File => self.max_store,
        }
    }
}

/// The account limit that applies to `storage`.
fn account_max(limits: &AccountLimits, storage: StorageType) -> i64 {
    match storage {
        StorageType::Memory => limits.max_memory,
        StorageType::File => limits.max_storage,
    }
}

fn resources_exceeded(storage: StorageType) -> ApiError {
    match storage {
        StorageType::Memory => ApiError::memory_resources_exceeded(),
        StorageType::File => ApiError::storage_resources_exceeded(),
    }
}

/// The bytes that `streams` other than `name` reserve in `storage`.
pub fn reserved<'a>(streams: impl IntoIterator<Item = Footprint<'a>>, storage: StorageType, except: Option<&str>) -> i64 {
    streams
        .into_iter()
        .filter(|s| s.storage == storage && s.max_bytes > 0 && Some(s.name) != except)
        .fold(0i64, |sum, s| sum.saturating_add(s.max_bytes))
}

/// Checks that `add` more reserved bytes in `storage` fit beside what is
/// reserved already, in the account and then on the server.
fn check_bytes(
    limits: &AccountLimits,
    budget: &ServerBudget,
    storage: StorageType,
    add: i64,
    account_reserved: i64,
    server_reserved: i64,
) -> Result<(), ApiError> {
    let fits = |max: i64, reserved: i64| max < 0 || (reserved <= max && add <= max - reserved);
    if !fits(account_max(limits, storage), account_reserved) || !fits(budget.max(storage), server_reserved) {
        return Err(resources_exceeded(storage));
    }
    Ok(())
}

/// May `cfg` be created in an account with `limits` holding `own` streams,
/// on a server with `budget` holding `all` streams (every account's)?
/// The same name among them is the stream itself, asked for again: it is
/// not counted.
pub fn check_create<'a>(
    cfg: &StreamConfig,
    limits: &AccountLimits,
    own: impl IntoIterator<Item = Footprint<'a>> + Clone,
    budget: &ServerBudget,
    all: impl IntoIterator<Item = Footprint<'a>>,
) -> Result<(), ApiError> {
    let others = own.clone().into_iter().filter(|s| s.name != cfg.name).count();
    if limits.max_streams > 0 && others as i64 >= limits.max_streams {
        return Err(ApiError::maximum_streams_limit());
    }
    check_consumers(cfg, limits)?;
    let add = if cfg.max_bytes < 0 { 1 } else { cfg.max_bytes };
    let account_reserved = reserved(own, cfg.storage, Some(&cfg.name));
    let server_reserved = reserved(all, cfg.storage, None);
    check_bytes(limits, budget, cfg.storage, add, account_reserved, server_reserved)
}

/// May a stream whose configuration was `old` become `new`? Only growth of
/// `max_bytes` reserves more. `own` and `all` include the stream itself.
pub fn check_update<'a>(
    old: &StreamConfig,
    new: &StreamConfig,
    limits: &AccountLimits,
    own: impl IntoIterator<Item = Footprint<'a>>,
    budget: &ServerBudget,
    all: impl IntoIterator<Item = Footprint<'a>>,
) -> Result<(), ApiError> {
    check_consumers(new, limits)?;
    let grow = (new.max_bytes.max(0) - old.max_bytes.max(0)).max(0);
    let account_reserved = reserved(own, new.storage, Some(&new.name)).saturating_add(new.max_bytes.max(0) - grow);
    let server_reserved = reserved(all, new.storage, None);
    check_bytes(limits, budget, new.storage, grow, account_reserved, server_reserved)
}

fn check_consumers(cfg: &StreamConfig, limits: &AccountLimits) -> Result<(), ApiError> {
    if cfg.max_consumers > 0 && limits.max_consumers > 0 && cfg.max_consumers > limits.max_consumers {
        return Err(ApiError::maximum_consumers_limit());
    }
    Ok(())
}

/// Room for one more message, decided before a publish reaches its stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quota {
    /// The server already uses more than its budget for this storage.
    pub server_full: bool,
    /// Bytes the account may still use in this storage (`None`: no limit).
    pub account_room: Option<u64>,
}

impl Quota {
    /// The quota of an account using `account_used` bytes of `storage`,
    /// on a server using `server_used`.
    pub fn new(limits: &AccountLimits, budget: &ServerBudget, storage: StorageType, account_used: u64, server_used: u64) -> Self {
        let server_max = budget.max(storage);
        Quota {
            server_full: server_max >= 0 && server_used > server_max as u64,
            account_room: u64::try_from(account_max(limits, storage)).ok().map(|max| max.saturating_sub(account_used)),
        }
    }

    /// Refuses a message of `size` bytes (as the store counts them) that the
    /// account has no room for.
    pub fn admit(&self, size: u64) -> Result<(), ApiError> {
        match self.account_room {
            Some(room) if size > room => Err(ApiError::account_resources_exceeded()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: &str, storage: StorageType, max_bytes: i64) -> StreamConfig {
        StreamConfig { name: name.into(), storage, max_bytes, ..StreamConfig::default() }
    }

    const UNLIMITED: ServerBudget = ServerBudget { max_memory: -1, max_store: -1 };

    fn limits(f: impl FnOnce(&mut AccountLimits)) -> AccountLimits {
        let mut l = AccountLimits::default();
        f(&mut l);
        l
    }

    #[test]
    fn max_streams_counts_other_streams_only() {
        let l = limits(|l| l.max_streams = 2);
        let a = cfg("A", StorageType::File, -1);
        let b = cfg("B", StorageType::File, -1);
        let own = [Footprint::of(&a), Footprint::of(&b)];
        let c = cfg("C", StorageType::File, -1);
        assert_eq!(check_create(&c, &l, own, &UNLIMITED, own), Err(ApiError::maximum_streams_limit()));
        // Asking for an existing stream again is not a new stream.
        assert_eq!(check_create(&b, &l, own, &UNLIMITED, own), Ok(()));
    }

    #[test]
    fn reservations_add_up_per_storage() {
        let l = limits(|l| l.max_storage = 1000);
        let a = cfg("A", StorageType::File, 600);
        let m = cfg("M", StorageType::Memory, 900);
        let own = [Footprint::of(&a), Footprint::of(&m)];
        let fits = cfg("B", StorageType::File, 400);
        let over = cfg("B", StorageType::File, 401);
        assert_eq!(check_create(&fits, &l, own, &UNLIMITED, own), Ok(()));
        assert_eq!(check_create(&over, &l, own, &UNLIMITED, own), Err(ApiError::storage_resources_exceeded()));
        // Without max_bytes a stream still needs one byte of room.
        let full = limits(|l| l.max_memory = 900);
        let unbounded = cfg("N", StorageType::Memory, -1);
        assert_eq!(check_create(&unbounded, &full, own, &UNLIMITED, own), Err(ApiError::memory_resources_exceeded()));
    }

    #[test]
    fn the_server_budget_covers_every_account() {
        let theirs = cfg("T", StorageType::Memory, 700);
        let all = [Footprint::of(&theirs)];
        let budget = ServerBudget { max_memory: 1000, max_store: -1 };
        let mine = cfg("M", StorageType::Memory, 301);
        let l = AccountLimits::default();
        assert_eq!(check_create(&mine, &l, [], &budget, all), Err(ApiError::memory_resources_exceeded()));
        let mine = cfg("M", StorageType::Memory, 300);
        assert_eq!(check_create(&mine, &l, [], &budget, all), Ok(()));
    }

    #[test]
    fn updates_reserve_only_growth() {
        let l = limits(|l| l.max_storage = 1000);
        let old = cfg("A", StorageType::File, 800);
        let other = cfg("B", StorageType::File, 100);
        let own = [Footprint::of(&old), Footprint::of(&other)];
        assert_eq!(check_update(&old, &cfg("A", StorageType::File, 900), &l, own, &UNLIMITED, own), Ok(()));
        assert_eq!(
            check_update(&old, &cfg("A", StorageType::File, 901), &l, own, &UNLIMITED, own),
            Err(ApiError::storage_resources_exceeded())
        );
        assert_eq!(check_update(&old, &cfg("A", StorageType::File, 10), &l, own, &UNLIMITED, own), Ok(()));
    }

    #[test]
    fn max_consumers_may_not_pass_the_account_limit() {
        let l = limits(|l| l.max_consumers = 3);
        let mut c = cfg("A", StorageType::File, -1);
        c.max_consumers = 4;
        assert_eq!(check_create(&c, &l, [], &UNLIMITED, []), Err(ApiError::maximum_consumers_limit()));
        c.max_consumers = 3;
        assert_eq!(check_create(&c, &l, [], &UNLIMITED, []), Ok(()));
    }

    #[test]
    fn quota_admits_what_fits() {
        let l = limits(|l| l.max_memory = 100);
        let q = Quota::new(&l, &UNLIMITED, StorageType::Memory, 60, 60);
        assert_eq!(q.admit(40), Ok(()));
        assert_eq!(q.admit(41), Err(ApiError::account_resources_exceeded()));
        assert!(!q.server_full);
        let budget = ServerBudget { max_memory: 50, max_store: -1 };
        assert!(Quota::new(&AccountLimits::default(), &budget, StorageType::Memory, 0, 51).server_full);
        assert_eq!(Quota::new(&AccountLimits::default(), &budget, StorageType::File, 0, 51).account_room, None);
    }
}
