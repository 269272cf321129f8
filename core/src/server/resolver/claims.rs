//! Account claims that change while the server runs, and the limits of
//! JWT users. A new account JWT re-wires every account's imports and
//! exports (an exporter's change reaches its importers) and applies the
//! account's new limits to its connected clients, as nats-server does on a
//! claim update. The limits (`conn`, `subs`, `payload` of the account JWT;
//! `subs`, `payload` of the user JWT) are checked when a user connects and
//! again whenever its account's claims change.

use std::collections::BTreeSet;

use crate::auth::jwt::{bound, tighter, AccountLimitClaims};
use crate::log::Level;
use crate::time::Instant;

use crate::server::{CloseReason, Control, Slot};

/// nats-server's `-ERR` for the clients of an account whose JWT expired.
const ACCOUNT_EXPIRED: &str = "Account Authentication Expired";

/// When the claims in force next change by themselves: the earliest `exp`
/// of a loaded account JWT or of an activation token in use. nats-server
/// arms a timer per account and per token; one deadline for the whole
/// server does the same work and costs nothing per message.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ClaimsClock {
    /// The instant of the next expiry, if anything in force expires.
    pub(crate) deadline: Option<Instant>,
    /// Unix seconds up to which account expiries were acted upon: an
    /// account whose `exp` is later loses its clients when it passes.
    checked_unix: i64,
}

/// nats-server's `-ERR` for a client over its account's `limits.conn`.
const ACCOUNT_CONNS_EXCEEDED: &str = "maximum account active connections exceeded";
/// nats-server's `-ERR` for a subscription over the limit.
pub(crate) const SUBS_EXCEEDED: &str = "maximum subscriptions exceeded";

impl Control {
    /// Account `key`'s JWT changed (stored, replaced or removed): rebuilds
    /// the stream and service routes of every account from the config
    /// file's accounts and the JWTs that verify now, and applies the
    /// account's limits to its connected clients. Responses in flight keep
    /// their routes: account indexes never change.
    pub(crate) fn account_claims_changed(&mut self, now: Instant, key: &str) {
        self.rebuild_routes(now);
        self.apply_account_limits(now, key);
        // The account updated is left alone: like nats-server, a JWT that
        // arrives already expired refuses new clients but drops none.
        self.expire_accounts(now, Some(key));
    }

    /// Starts watching the expiry of the claims loaded at start-up.
    pub(crate) fn start_claims_clock(&mut self, now: Instant) {
        self.claims_clock.checked_unix = self.unix_secs(now);
        self.rearm_claims_clock(now);
    }

    /// The claims deadline passed: imports whose activation token expired
    /// are dropped, and so are the accounts whose JWT expired, with their
    /// clients, as nats-server's expiry timers do.
    pub(crate) fn claims_deadline_passed(&mut self, now: Instant) {
        self.rebuild_routes(now);
        self.expire_accounts(now, None);
    }

    /// Closes the clients of every account (but `spared`) whose JWT
    /// expired since the last check, then arms the next deadline.
    fn expire_accounts(&mut self, now: Instant, spared: Option<&str>) {
        let unix_secs = self.unix_secs(now);
        let expired = self.trust.as_ref().map_or_else(Vec::new, |t| {
            t.expired_between(self.claims_clock.checked_unix, unix_secs)
        });
        self.claims_clock.checked_unix = self.claims_clock.checked_unix.max(unix_secs);
        for key in expired.iter().filter(|k| Some(k.as_str()) != spared) {
            self.close_expired_account(now, key);
        }
        self.rearm_claims_clock(now);
    }

    /// Closes every client of account `key`, with nats-server's `-ERR`.
    fn close_expired_account(&mut self, now: Instant, key: &str) {
        let Some(index) = self.accounts.iter().position(|a| a.name == key) else {
            return;
        };
        let doomed: Vec<Slot> = self
            .clients_by_cid()
            .filter(|c| c.account == index)
            .filter_map(|c| self.by_cid.get(&c.cid).copied())
            .collect();
        for slot in doomed {
            if let Some(c) = self.client(slot) {
                let line = format!("{} - {} - {ACCOUNT_EXPIRED}", c.peer, c.cid);
                self.log(Level::Debug, line);
            }
            let reason = CloseReason::AuthenticationExpired;
            self.close(now, slot, reason, Some(ACCOUNT_EXPIRED));
        }
    }

    /// Sets the claims deadline to the next expiry after `now`.
    fn rearm_claims_clock(&mut self, now: Instant) {
        let unix_secs = self.unix_secs(now);
        let next = self.trust.as_ref().and_then(|t| t.next_expiry(unix_secs));
        self.claims_clock.deadline = next.map(|exp| self.instant_at_unix(exp));
    }

    /// The monotonic instant at which the wall clock reads `unix_secs`,
    /// from the clocks at start (the inverse of [`Control::wall_at`]).
    fn instant_at_unix(&self, unix_secs: i64) -> Instant {
        let (started_at, started_wall) = self.started();
        let since = i128::from(unix_secs) * 1_000_000_000 - i128::from(started_wall.0);
        let nanos = u64::try_from(since.max(0)).unwrap_or(u64::MAX);
        started_at + std::time::Duration::from_nanos(nanos)
    }

    fn unix_secs(&self, now: Instant) -> i64 {
        self.wall_at(now).0.div_euclid(1_000_000_000)
    }

    /// Recomputes every route, as at start-up: the config file's accounts
    /// among themselves, then the JWT accounts among themselves.
    fn rebuild_routes(&mut self, now: Instant) {
        let unix_secs = self.wall_at(now).0.div_euclid(1_000_000_000);
        let Some(trust) = &self.trust else { return };
        let (configs, problems) = trust.account_configs(unix_secs);
        for problem in problems {
            self.log(Level::Debug, problem);
        }
        self.apply_jetstream_claims(&configs);
        for account in &mut self.accounts {
            account.stream_routes.clear();
            account.service_routes.clear();
        }
        // Only accounts new to the server are looked up one by one: that
        // lookup is linear, and every known account passes here.
        let known: BTreeSet<&str> = self.accounts.iter().map(|a| a.name.as_str()).collect();
        let new: Vec<String> = configs
            .iter()
            .filter(|c| !known.contains(c.name.as_str()))
            .map(|c| c.name.clone())
            .collect();
        for name in new {
            self.account_index(Some(&name));
        }
        crate::account::routes::add_routes(&self.opts.accounts, &mut self.accounts);
        // Imports refused now (e.g. an export taken back) are left out until
        // a later update allows them again, as nats-server does.
        for refused in crate::account::routes::add_routes(&configs, &mut self.accounts) {
            self.log(Level::Debug, format!("import left out: {refused}"));
        }
        crate::account::routes::share_mappings(&configs, &self.accounts);
        self.share_routes();
        self.share_stream_subjects();
    }

    /// Applies account `key`'s current limits to its connected JWT users,
    /// oldest first: those past `limits.conn` are closed (the newest go, as
    /// in nats-server), the others get the new `subs` and `payload`.
    fn apply_account_limits(&mut self, now: Instant, key: &str) {
        let Some(index) = self.accounts.iter().position(|a| a.name == key) else {
            return;
        };
        let unix_secs = self.wall_at(now).0.div_euclid(1_000_000_000);
        // A JWT that does not verify changes nothing; users are checked again when they connect.
        let Some(claims) = self
            .trust
            .as_ref()
            .and_then(|t| t.account(key, unix_secs).ok())
        else {
            return;
        };
        let limits = claims.nats.limits;
        let slots: Vec<Slot> = self
            .clients_by_cid()
            .filter(|c| c.connected && c.account == index && c.jwt_limits.is_some())
            .filter_map(|c| self.by_cid.get(&c.cid).copied())
            .collect();
        let conns_max = bound(limits.conn);
        for (n, slot) in slots.into_iter().enumerate() {
            if conns_max.is_some_and(|max| n as u64 >= max) {
                self.account_conns_exceeded(now, slot);
                continue;
            }
            if limits.disallow_bearer && self.is_bearer(slot) {
                self.bearer_refused(now, slot);
                continue;
            }
            self.set_account_limits(slot, &limits);
            self.apply_limits(now, slot);
        }
    }

    fn is_bearer(&self, slot: Slot) -> bool {
        self.client(slot)
            .and_then(|c| c.jwt_limits.as_deref())
            .is_some_and(|jwt| jwt.bearer)
    }

    /// An account that stops allowing bearer tokens drops their users, with
    /// nats-server's `-ERR 'Authorization Violation'`.
    fn bearer_refused(&mut self, now: Instant, slot: Slot) {
        if let Some(c) = self.client(slot) {
            let line = format!("{} - {} - Bearer User JWT not allowed", c.peer, c.cid);
            self.log(Level::Debug, line);
        }
        self.close(
            now,
            slot,
            CloseReason::AuthenticationViolation,
            Some("Authorization Violation"),
        );
    }

    fn set_account_limits(&mut self, slot: Slot, limits: &AccountLimitClaims) {
        if let Some(jwt) = self
            .client_mut(slot)
            .and_then(|c| c.jwt_limits.as_deref_mut())
        {
            jwt.account.clone_from(limits);
        }
    }

    /// Admits a JWT user connecting to `account` under its limits: false
    /// (and the client closed) when the account already has its
    /// `limits.conn` connections, or when the user may hold no
    /// subscription at all. Clients without a JWT pass untouched.
    pub(crate) fn admit_jwt_user(&mut self, now: Instant, slot: Slot, account: usize) -> bool {
        let Some(c) = self.client(slot) else {
            return false;
        };
        let Some(jwt) = c.jwt_limits.as_deref() else {
            return true;
        };
        if let Some(max) = bound(jwt.account.conn) {
            // Counted only for accounts that set a limit, so others pay nothing.
            let cid = c.cid;
            let conns = self
                .clients_by_cid()
                .filter(|o| o.connected && o.account == account && o.cid != cid)
                .count();
            if conns as u64 >= max {
                self.account_conns_exceeded(now, slot);
                return false;
            }
        }
        self.apply_limits(now, slot)
    }

    fn account_conns_exceeded(&mut self, now: Instant, slot: Slot) {
        if let Some(c) = self.client(slot) {
            let line = format!("{} - {} - {ACCOUNT_CONNS_EXCEEDED}", c.peer, c.cid);
            self.log(Level::Error, line);
        }
        self.close(
            now,
            slot,
            CloseReason::MaxAccountConnectionsExceeded,
            Some(ACCOUNT_CONNS_EXCEEDED),
        );
    }

    /// Sets a JWT user's subscription and payload limits from its own and
    /// its account's, bounded by the server's. Like nats-server, a client
    /// already holding as many subscriptions as it may is closed (so is one
    /// allowed none). Returns false when the client was closed.
    pub(crate) fn apply_limits(&mut self, now: Instant, slot: Slot) -> bool {
        let server_subs =
            (self.opts.max_subscriptions > 0).then_some(u64::from(self.opts.max_subscriptions));
        let server_payload = Some(u64::from(self.opts.max_payload_bytes));
        let Some(c) = self.client_mut(slot) else {
            return false;
        };
        let Some(jwt) = c.jwt_limits.as_deref() else {
            return true;
        };
        let limits = jwt.user.within(&jwt.account);
        c.subs_max = limits.subs;
        let payload = tighter(server_payload, limits.payload).unwrap_or(u64::MAX);
        c.parser_limits.max_payload_bytes = u32::try_from(payload).unwrap_or(u32::MAX);
        let subs_max = tighter(server_subs, limits.subs);
        if subs_max.is_some_and(|max| c.sub_count() as u64 >= max) {
            let line = format!("{} - {} - {SUBS_EXCEEDED}", c.peer, c.cid);
            self.log(Level::Error, line);
            self.close(
                now,
                slot,
                CloseReason::MaxSubscriptionsExceeded,
                Some(SUBS_EXCEEDED),
            );
            return false;
        }
        self.share_profile(slot);
        true
    }
}
