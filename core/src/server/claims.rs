//! Account claims that change while the server runs, and the limits of
//! JWT users. A new account JWT re-wires every account's imports and
//! exports (an exporter's change reaches its importers) and applies the
//! account's new limits to its connected clients, as nats-server does on a
//! claim update. The limits (`conn`, `subs`, `payload` of the account JWT;
//! `subs`, `payload` of the user JWT) are checked when a user connects and
//! again whenever its account's claims change.

use crate::auth::jwt::{bound, tighter, AccountLimitClaims};
use crate::log::Level;
use crate::time::Instant;

use super::{CloseReason, Server, Slot};

/// nats-server's `-ERR` for a client over its account's `limits.conn`.
const ACCOUNT_CONNS_EXCEEDED: &str = "maximum account active connections exceeded";
/// nats-server's `-ERR` for a subscription over the limit.
pub(crate) const SUBS_EXCEEDED: &str = "maximum subscriptions exceeded";

impl Server {
    /// Account `key`'s JWT changed (stored, replaced or removed): rebuilds
    /// the stream and service routes of every account from the config
    /// file's accounts and the JWTs that verify now, and applies the
    /// account's limits to its connected clients. Responses in flight keep
    /// their routes: account indexes never change.
    pub(crate) fn account_claims_changed(&mut self, now: Instant, key: &str) {
        self.rebuild_routes(now);
        self.apply_account_limits(now, key);
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
        for account in &mut self.accounts {
            account.stream_routes.clear();
            account.service_routes.clear();
        }
        for config in &configs {
            self.account_index(Some(&config.name));
        }
        super::imports::add_routes(&self.opts.accounts, &mut self.accounts);
        // Imports refused now (e.g. an export taken back) are left out until
        // a later update allows them again, as nats-server does.
        for refused in super::imports::add_routes(&configs, &mut self.accounts) {
            self.log(Level::Debug, format!("import left out: {refused}"));
        }
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
    fn apply_limits(&mut self, now: Instant, slot: Slot) -> bool {
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
        let mut parser = c.parser.limits();
        let payload = tighter(server_payload, limits.payload).unwrap_or(u64::MAX);
        parser.max_payload_bytes = u32::try_from(payload).unwrap_or(u32::MAX);
        c.parser.set_limits(parser);
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
        true
    }
}
