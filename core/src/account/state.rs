//! Accounts: isolated subject spaces. Every client belongs to one; messages
//! never cross accounts except through exports and imports, which are
//! resolved at start-up into routes kept on the account a message is
//! published in (so delivery looks only at the publisher's account).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::ResponseType;
use crate::subject::sublist::Sublist;
use crate::subject::SubjectMap;
use crate::sync::{AtomicBool, AtomicU64, Ordering, Shared};
use crate::time::Instant;


/// Outstanding service responses an exporting account keeps for one
/// requesting account. nats-server keeps them unbounded until each lapses
/// (`response_threshold`); natrix also bounds them, per requester, so a
/// flood of requests from one account cannot take the answers another
/// account is owed: the request beyond the bound is refused, no live
/// mapping is ever forgotten early.
pub(crate) const RESPONSE_MAPPINGS_PER_REQUESTER_MAX: usize = 65_536;

/// One account, its subscription index and its cross-account routes.
pub(crate) struct Account<T> {
    pub name: String,
    /// What the account's publishers share: its index and traffic counters.
    pub shared: Arc<AccountShared<T>>,
    /// Stream imports fed by this account's messages.
    pub stream_routes: Vec<StreamRoute>,
    /// Service imports of this account: requests published here go to the exporter.
    pub service_routes: Vec<ServiceRoute>,
    /// Reply subjects handed to this account's responders, keyed by that subject.
    pub responses: ResponseTable,
    /// `_R_.xxxxxx.`: the prefix of the reply subjects made for this account.
    pub reply_prefix: Bytes,
    /// The server answers `$SYS.REQ.…` requests published here (the system
    /// account under the NATS resolver).
    pub system_services: bool,
    /// Traffic counters for `/accstatz` and `/accountz`.
    pub stats: AccountCounters,
}

/// The part of an account that its connections' sessions use on every
/// publish, from any thread: the subscription index and the counters they
/// add to. The rest of the account (routes, response mappings, limits)
/// belongs to the control plane.
#[derive(Debug)]
pub(crate) struct AccountShared<T> {
    /// The account's subscriptions. Written by SUB, UNSUB and closes, read
    /// by publishers whose cached matches went stale.
    pub index: Shared<Sublist<T>>,
    /// Moves on every change to the index: a session's cached match made
    /// before the change is not used after it.
    pub genid: AtomicU64,
    /// Messages published here may cross to another account (stream or
    /// service imports, response mappings): they take the control path.
    pub routes: AtomicBool,
    /// The server answers `$SYS.REQ.…` requests published here.
    pub system_services: AtomicBool,
    /// JetStream is on in the server: the account's API requests (and its
    /// streams' subjects, if it has streams) take the control path.
    pub jetstream: AtomicBool,
    /// The account has streams: `stream_subjects` is not empty.
    pub has_streams: AtomicBool,
    /// The subjects of the account's streams (read only while `has_streams` is set).
    pub stream_subjects: Shared<Vec<Bytes>>,
    /// Delivered to the account's clients.
    pub sent: AtomicMsgBytes,
    /// Published by the account's clients.
    pub received: AtomicMsgBytes,
    /// The account has subject mappings: `mappings` is worth reading.
    pub has_mappings: AtomicBool,
    /// The account's subject mappings, applied to every publish first.
    pub mappings: Shared<Arc<super::mapping::Mappings>>,
}

impl<T: Clone + Ord> AccountShared<T> {
    /// Adds a subscription to the index.
    pub fn insert(&self, subject: &[u8], queue: Option<&[u8]>, sub: T) {
        let mut index = self.index.write();
        // Valid subjects and a fresh subscription cannot be refused by the index.
        let inserted = index.insert(subject, queue, sub);
        debug_assert!(inserted.is_ok(), "sublist refused a validated subscription");
        self.genid.fetch_add(1, Ordering::Release);
    }

    /// Takes a subscription out of the index.
    pub fn remove(&self, subject: &[u8], queue: Option<&[u8]>, sub: &T) {
        let mut index = self.index.write();
        let removed = index.remove(subject, queue, sub);
        debug_assert!(removed, "a subscription missing from its account's index");
        self.genid.fetch_add(1, Ordering::Release);
    }

    /// True when a message published here on `subject` may cross to another
    /// account, or is a request the server answers itself. Checked on every
    /// publish: most accounts have no routes, and most subjects are not `$SYS`.
    pub fn has_routes(&self, subject: &[u8]) -> bool {
        self.routes.load(Ordering::Acquire)
            || (self.system_services.load(Ordering::Acquire) && is_server_request(subject))
            || (self.jetstream.load(Ordering::Acquire) && self.is_jetstream_subject(subject))
    }

    /// True for `$JS.API.…` and for the subjects the account's streams capture.
    fn is_jetstream_subject(&self, subject: &[u8]) -> bool {
        subject.starts_with(b"$JS.")
            || (self.has_streams.load(Ordering::Acquire)
                && self.stream_subjects.read().iter().any(|s| crate::subject::subject_matches(s, subject)))
    }

    /// Replaces the account's subject mappings.
    pub fn share_mappings(&self, mappings: super::mapping::Mappings) {
        let any = !mappings.is_empty();
        *self.mappings.write() = Arc::new(mappings);
        self.has_mappings.store(any, Ordering::Release);
    }

    /// The account's mappings, when it has any.
    pub fn mappings(&self) -> Option<Arc<super::mapping::Mappings>> {
        self.has_mappings.load(Ordering::Acquire).then(|| Arc::clone(&self.mappings.read()))
    }

    /// Shares which subjects the account's streams capture.
    pub fn share_stream_subjects(&self, subjects: Vec<Bytes>) {
        let any = !subjects.is_empty();
        *self.stream_subjects.write() = subjects;
        self.has_streams.store(any, Ordering::Release);
        self.jetstream.store(true, Ordering::Release);
    }
}

/// A [`MsgBytes`] that many threads add to. On cache lines of its own, so
/// that adding to it does not evict what every publish reads beside it
/// (the index's generation, the route flags).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct AtomicMsgBytes {
    msgs: AtomicU64,
    bytes: AtomicU64,
}

impl AtomicMsgBytes {
    /// Adds a batch's worth.
    pub fn add(&self, m: MsgBytes) {
        if m.msgs > 0 {
            self.msgs.fetch_add(m.msgs, Ordering::Relaxed);
            self.bytes.fetch_add(m.bytes, Ordering::Relaxed);
        }
    }

    /// The figures so far.
    pub fn get(&self) -> MsgBytes {
        MsgBytes { msgs: self.msgs.load(Ordering::Relaxed), bytes: self.bytes.load(Ordering::Relaxed) }
    }
}

/// What an account counts as traffic passes, besides its messages.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AccountCounters {
    /// Connections ever bound to the account (by a CONNECT, or a later
    /// CONNECT that moved them here).
    pub conns_ever: u64,
    /// The account's clients closed as slow consumers.
    pub slow_consumers: u64,
}

/// A message count and their payload bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MsgBytes {
    /// Messages.
    pub msgs: u64,
    /// Payload (and header) bytes.
    pub bytes: u64,
}

impl MsgBytes {
    /// Counts one message of `size` bytes.
    pub fn add(&mut self, size: usize) {
        self.msgs += 1;
        self.bytes += size as u64;
    }

    /// Adds another count.
    pub fn merge(&mut self, other: MsgBytes) {
        self.msgs += other.msgs;
        self.bytes += other.bytes;
    }
}

/// Traffic one way, split as nats-server splits it (natrix has no routes,
/// gateways or leaf nodes yet, so those stay zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TrafficStats {
    /// Messages.
    pub msgs: u64,
    /// Bytes.
    pub bytes: u64,
    /// Over gateways.
    pub gateways: MsgBytes,
    /// Over routes.
    pub routes: MsgBytes,
    /// Over leaf nodes.
    pub leafs: MsgBytes,
}

impl From<MsgBytes> for TrafficStats {
    fn from(m: MsgBytes) -> Self {
        TrafficStats {
            msgs: m.msgs,
            bytes: m.bytes,
            ..TrafficStats::default()
        }
    }
}

/// One account's statistics, shaped as an entry of nats-server's
/// `/accstatz` `account_statz` list.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AccountStats {
    /// The account's key (its name for config accounts).
    pub acc: String,
    /// The account's name.
    pub name: String,
    /// Clients connected now.
    pub conns: u64,
    /// Leaf node connections (none yet).
    pub leafnodes: u64,
    /// Connections now, clients and leaf nodes together (nats-server's
    /// `total_conns`: current, not cumulative).
    pub total_conns: u64,
    /// Subscriptions in the account.
    pub num_subscriptions: u64,
    /// Delivered to the account's clients.
    pub sent: TrafficStats,
    /// Published by the account's clients.
    pub received: TrafficStats,
    /// The account's clients closed as slow consumers.
    pub slow_consumers: u64,
}


impl<T: Clone + Ord> Account<T> {
    /// `seed` keys the index's hashing, so clients cannot aim subjects at one bucket.
    pub fn new(name: &str, cache: bool, seed: u64) -> Self {
        let shared = AccountShared {
            index: Shared::new(Sublist::with_seed(cache, seed)),
            genid: AtomicU64::new(0),
            routes: AtomicBool::new(false),
            system_services: AtomicBool::new(false),
            jetstream: AtomicBool::new(false),
            has_streams: AtomicBool::new(false),
            stream_subjects: Shared::new(Vec::new()),
            sent: AtomicMsgBytes::default(),
            received: AtomicMsgBytes::default(),
            has_mappings: AtomicBool::new(false),
            mappings: Shared::new(Arc::default()),
        };
        Account {
            name: name.to_owned(),
            shared: Arc::new(shared),
            stream_routes: Vec::new(),
            service_routes: Vec::new(),
            responses: ResponseTable::default(),
            reply_prefix: Bytes::new(),
            system_services: false,
            stats: AccountCounters::default(),
        }
    }

    /// True when a message published here on `subject` may cross to another
    /// account, or is a request the server answers itself.
    pub fn has_routes(&self, subject: &[u8]) -> bool {
        self.shared.has_routes(subject)
    }

    /// Tells the account's sessions whether its publishes may cross to
    /// another account: call after every change to the routes, the
    /// response mappings or `system_services`. A flag left on after a
    /// mapping lapsed only sends publishes the long way.
    pub fn share_routes(&self) {
        let routes = !self.stream_routes.is_empty() || !self.service_routes.is_empty() || !self.responses.is_empty();
        self.shared.routes.store(routes, Ordering::Release);
        self.shared.system_services.store(self.system_services, Ordering::Release);
    }
}

/// The made-up reply subjects of requests that crossed into an account,
/// each mapped back to its requester, until answered or lapsed.
#[derive(Debug, Default)]
pub(crate) struct ResponseTable {
    routes: BTreeMap<Bytes, ResponseRoute>,
    /// When each route lapses, soonest first.
    expiry: BTreeSet<(Instant, Bytes)>,
    /// Live routes per requesting account (each has its own bound).
    per_requester: BTreeMap<usize, usize>,
}

impl ResponseTable {
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Every live route, by reply subject.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &ResponseRoute)> + '_ {
        self.routes.iter()
    }

    pub fn get(&self, reply: &[u8]) -> Option<&ResponseRoute> {
        self.routes.get(reply)
    }

    /// Remembers where responses on `reply` go. False (and nothing
    /// remembered) when the requester already has its bound of live routes.
    pub fn insert(&mut self, now: Instant, reply: Bytes, route: ResponseRoute) -> bool {
        self.prune(now);
        self.remove(&reply);
        let live = self.per_requester.entry(route.requester).or_default();
        if *live >= RESPONSE_MAPPINGS_PER_REQUESTER_MAX {
            return false;
        }
        *live += 1;
        self.expiry.insert((route.expires_at, reply.clone()));
        self.routes.insert(reply, route);
        true
    }

    /// Forgets the route of `reply`.
    pub fn remove(&mut self, reply: &[u8]) -> Option<ResponseRoute> {
        let route = self.routes.remove(reply)?;
        self.expiry.remove(&(route.expires_at, Bytes::copy_from_slice(reply)));
        match self.per_requester.get_mut(&route.requester) {
            Some(1) => {
                self.per_requester.remove(&route.requester);
            }
            Some(live) => *live -= 1,
            None => debug_assert!(false, "a response route its requester does not count"),
        }
        Some(route)
    }

    /// Forgets the routes that lapsed by `now`.
    fn prune(&mut self, now: Instant) {
        while let Some((at, reply)) = self.expiry.first().cloned() {
            if at > now {
                break;
            }
            let removed = self.remove(&reply);
            debug_assert!(removed.is_some(), "an expiry for a route that is gone");
            if removed.is_none() {
                self.expiry.pop_first();
            }
        }
    }
}

/// True for the subjects of requests the server may answer itself: the
/// `$SYS.REQ.…` ones, and the older claim update subject
/// `$SYS.ACCOUNT.<key>.CLAIMS.UPDATE` that nats-server still takes.
pub(crate) fn is_server_request(subject: &[u8]) -> bool {
    subject.starts_with(b"$SYS.REQ.") || subject.starts_with(b"$SYS.ACCOUNT.")
}

/// Messages published in the exporter on `subject` also go to `importer`,
/// with their subject mapped.
#[derive(Clone, Debug)]
pub(crate) struct StreamRoute {
    pub importer: usize,
    pub map: SubjectMap,
}

/// Requests published in the importer on `map.from` go to `exporter`.
#[derive(Clone, Debug)]
pub(crate) struct ServiceRoute {
    pub exporter: usize,
    /// Which of the exporter's exports admits the import: a request crosses
    /// each export at most once on its way through chained imports.
    pub export: usize,
    pub map: SubjectMap,
    pub response_type: ResponseType,
    pub response_threshold: Duration,
}

/// Where a response published on a made-up reply subject goes back to.
#[derive(Clone, Debug)]
pub(crate) struct ResponseRoute {
    pub requester: usize,
    pub reply: Bytes,
    pub response_type: ResponseType,
    pub expires_at: Instant,
}
