//! Config reload (SIGHUP, `--signal reload`), as nats-server does it.
//!
//! The runtime reads and parses the file again and hands the options to
//! [`Control::reload`]; the core compares them with those in force
//! ([`diff`]) and either refuses the whole reload (the old configuration
//! stays entirely in force) or applies it:
//!
//! - the accounts' imports, exports and mappings are rebuilt;
//! - every connected client's credentials are checked again against the
//!   new users, with the CONNECT it was accepted with. A client whose user
//!   is gone, or now belongs to another account, is closed (nats-server's
//!   `Client Closed`, no error); one whose credentials no longer pass gets
//!   `-ERR 'Authorization Violation'`; the others get their new
//!   permissions, and lose (with a `Permissions Violation` error each) the
//!   subscriptions those no longer allow;
//! - limits (`max_payload`, `max_control_line`, ping and write deadlines)
//!   apply to every connection, and clients beyond a lowered
//!   `max_connections` are closed, newest first;
//! - `/varz`'s `config_load_time` moves on.

mod diff;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::Bytes;
use rand_core::RngCore;

pub use diff::ReloadError;

use crate::account::mapping::Mappings;
use crate::auth::{self, ClientPermissions, Identity};
use crate::config::{Authorization, ServerOptions};
use crate::log::Level;
use crate::protocol::{ConnectInfo, ParserLimits};
use crate::time::{Instant, UnixNanos};

use super::{Account, CloseReason, Control, PlainAuth, Slot, SubId, Transport};

impl Control {
    /// Reloads the configuration: `new` are the options the runtime read
    /// from the config file again (with the command line's flags applied
    /// over them, and what the runtime resolved at start-up, such as a
    /// random port, carried over). On a refusal nothing changed.
    pub fn reload(&mut self, now: Instant, wall: UnixNanos, new: ServerOptions) -> Result<(), ReloadError> {
        let lines = diff::diff(&self.opts, &new)?;
        self.opts = new;
        for line in lines {
            self.log(Level::Info, line);
        }
        self.enforce_max_connections(now);
        if self.trust.is_none() {
            self.reload_accounts();
            self.plain_auth = Some(
                [Transport::Tcp, Transport::Websocket, Transport::Mqtt]
                    .map(|t| Arc::new(PlainAuth::for_transport(&self.opts, t))),
            );
        }
        let slots: Vec<Slot> = self.by_cid.values().copied().collect();
        for slot in slots {
            self.reload_client(now, slot);
        }
        self.config_loaded_wall = wall;
        self.log(Level::Info, "Reloaded server configuration".to_owned());
        self.finish_work(now);
        self.wake();
        Ok(())
    }

    /// When the configuration in force was loaded (`/varz`'s `config_load_time`).
    pub fn config_loaded_at(&self) -> UnixNanos {
        self.config_loaded_wall
    }

    /// Closes the newest clients beyond `max_connections` (nats-server
    /// picks them at random; natrix keeps the oldest, deterministically).
    fn enforce_max_connections(&mut self, now: Instant) {
        let max = self.opts.max_connections as usize;
        let excess = self.by_cid.len().saturating_sub(max);
        if excess == 0 {
            return;
        }
        let newest: Vec<Slot> = self.by_cid.values().rev().take(excess).copied().collect();
        for slot in newest {
            if let Some(c) = self.client(slot) {
                let line = format!("{} - {} - maximum connections exceeded", c.peer, c.cid);
                self.log(Level::Error, line);
            }
            self.close(now, slot, CloseReason::MaxConnectionsExceeded, Some("maximum connections exceeded"));
        }
        self.log(Level::Info, format!("Closed {excess} connections to fall within max_connections"));
    }

    /// Gives the configured accounts their new imports, exports and
    /// mappings; creates the new ones. An account no longer configured
    /// keeps its place (clients and streams refer to accounts by index)
    /// but loses its routes; its users are gone, so its clients are closed.
    fn reload_accounts(&mut self) {
        let cache = !self.opts.disable_sublist_cache;
        let names: Vec<String> = self.opts.accounts.iter().map(|a| a.name.clone()).collect();
        for name in names {
            if self.accounts.iter().any(|a| a.name == name) {
                continue;
            }
            let mut account = Account::new(&name, cache, self.rng.next_u64());
            account.reply_prefix = crate::account::routes::reply_prefix(&mut self.rng);
            if let Some(js) = &self.jetstream {
                account.shared.share_stream_subjects(js.subjects(&name));
            }
            self.accounts.push(account);
        }
        for account in &mut self.accounts {
            account.stream_routes.clear();
            account.service_routes.clear();
            account.shared.share_mappings(Mappings::default());
        }
        // Config loading refused imports that do not check out.
        let _refused = crate::account::routes::add_routes(&self.opts.accounts, &mut self.accounts);
        crate::account::routes::share_mappings(&self.opts.accounts, &self.accounts);
        if let (Some(global), Ok(m)) = (self.accounts.first(), Mappings::new(&self.opts.mappings)) {
            global.shared.share_mappings(m);
        }
        self.share_routes();
    }

    /// Applies the new configuration to one client.
    fn reload_client(&mut self, now: Instant, slot: Slot) {
        let Some(c) = self.client(slot) else { return };
        if c.connected {
            if self.trust.is_none() && !self.reauthorize(now, slot) {
                return;
            }
        } else if self.auth_required() && c.auth_deadline.is_none() {
            let deadline = now + self.opts.auth_timeout;
            if let Some(c) = self.client_mut(slot) {
                c.auth_deadline = Some(deadline);
            }
        }
        let limits = ParserLimits {
            max_control_line_bytes: self.opts.max_control_line_bytes,
            max_payload_bytes: self.opts.max_payload_bytes,
        };
        let Some(c) = self.client_mut(slot) else { return };
        c.parser_limits = limits;
        let jwt = c.jwt_limits.is_some();
        if jwt && !self.apply_limits(now, slot) {
            return;
        }
        self.share_profile(slot);
        self.arm(slot);
    }

    /// Checks a connected client's credentials against the new users.
    /// False when the client was closed.
    fn reauthorize(&mut self, now: Instant, slot: Slot) -> bool {
        let Some(c) = self.client(slot) else { return false };
        let Some(info) = c.connect.clone() else { return true };
        let account = self.accounts[c.account].name.as_str();
        if moved_account(&self.opts.authorization, &info, account) {
            self.close(now, slot, CloseReason::ClientClosed, None);
            return false;
        }
        let nonce = c.nonce.clone();
        // The users of the client's own listener (its block may override them).
        let users = PlainAuth::for_transport(&self.opts, c.transport);
        let checked = auth::authenticate_as(
            &users.authorization,
            users.no_auth_user.as_deref(),
            &info,
            nonce.as_deref(),
            users.connection_type,
        );
        match checked {
            Ok(identity) => {
                self.reload_permissions(now, slot, &info, identity);
                true
            }
            Err(e) => {
                self.auth_violation(now, slot, &e.to_string());
                false
            }
        }
    }

    /// Gives the client its user's new permissions, and removes the
    /// subscriptions they no longer allow, as nats-server does: each with
    /// an `-ERR` to the client and a line in the log.
    fn reload_permissions(&mut self, now: Instant, slot: Slot, info: &ConnectInfo, identity: Identity) {
        let Some(c) = self.client_mut(slot) else { return };
        let perms = identity.permissions.as_ref().map(|p| Box::new(ClientPermissions::new(p)));
        c.has_perms = perms.is_some();
        c.meta.user = identity.user;
        let removed: Vec<(SubId, Bytes, Option<Bytes>, Bytes)> = {
            let mut o = c.outbox.lock();
            o.perms = perms;
            let o = &*o;
            match o.perms.as_deref() {
                None => Vec::new(),
                Some(p) => o
                    .subs
                    .iter()
                    .filter(|(_, s)| !p.can_subscribe(s.subject(), s.queue()))
                    .map(|(id, s)| {
                        let copy = Bytes::copy_from_slice;
                        (id, copy(s.subject()), s.queue().map(copy), copy(s.sid()))
                    })
                    .collect(),
            }
        };
        let who = auth_user(info);
        for (id, subject, queue, sid) in removed {
            self.unsubscribe(now, slot, id);
            let (subject, sid) = (String::from_utf8_lossy(&subject), String::from_utf8_lossy(&sid));
            let (err, line) = match queue {
                Some(q) => {
                    let q = String::from_utf8_lossy(&q);
                    (
                        format!("Permissions Violation for Subscription to \"{subject}\" using queue \"{q}\" (sid \"{sid}\")"),
                        format!("Removed sub \"{subject}\" using queue \"{q}\" (sid \"{sid}\") for {who} - not authorized"),
                    )
                }
                None => (
                    format!("Permissions Violation for Subscription to \"{subject}\" (sid \"{sid}\")"),
                    format!("Removed sub \"{subject}\" (sid \"{sid}\") for {who} - not authorized"),
                ),
            };
            self.send_err(slot, &err);
            self.log(Level::Info, line);
        }
    }
}

/// nats-server's test of whether a client's user is gone or now in
/// another account (such a client is closed, to reconnect where it now
/// belongs). A client that named a user (or an nkey) is looked up among
/// the configured users list; one that named none has not moved.
fn moved_account(auth: &Authorization, info: &ConnectInfo, account: &str) -> bool {
    let user = if let Some(key) = info.nkey.as_deref().filter(|k| !k.is_empty()) {
        auth.users.iter().find(|u| u.nkey.as_deref() == Some(key))
    } else if let Some(name) = info.user.as_deref().filter(|n| !n.is_empty()) {
        auth.users.iter().find(|u| u.nkey.is_none() && u.user == name)
    } else {
        return false;
    };
    match user {
        Some(u) => u.account.as_deref().unwrap_or(crate::account::routes::GLOBAL_ACCOUNT) != account,
        None => true,
    }
}

/// How nats-server names a client's credentials in its log lines.
fn auth_user(info: &ConnectInfo) -> String {
    if let Some(key) = info.nkey.as_deref().filter(|k| !k.is_empty()) {
        format!("Nkey {key:?}")
    } else if let Some(user) = info.user.as_deref().filter(|u| !u.is_empty()) {
        format!("User {user:?}")
    } else if info.auth_token.as_deref().is_some_and(|t| !t.is_empty()) {
        "Token \"[REDACTED]\"".to_owned()
    } else {
        "User \"N/A\"".to_owned()
    }
}
