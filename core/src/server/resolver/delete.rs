//! Claim deletes (`$SYS.REQ.CLAIMS.DELETE`) and the users they close.

use serde_json::json;

use crate::auth::jwt::{self, Claims};
use crate::auth::nkey::{self, KeyRole};
use crate::config::ResolverDelete;
use crate::log::Level;
use crate::storage::SyncToken;
use crate::time::Instant;
use crate::server::{CloseReason, Control, Slot};

use super::{jwt_error_text, Durable, HeldUpdate, ReplyTo};

impl Control {
    pub(super) fn claims_delete(&mut self, now: Instant, payload: &[u8], reply: Option<ReplyTo>) {
        let keys = match self.check_delete(payload) {
            Ok(keys) => keys,
            Err((by, why)) => {
                let message = format!("delete accounts request by {by} failed");
                self.log(Level::Error, format!("{message} - {why}"));
                let body = json!({"code": 500, "description": format!("{message} - {why}")});
                return self.respond_outcome(now, reply, Err(body));
            }
        };
        let arrival = self.jwt_dir.as_mut().map_or(0, |dir| dir.next_arrival());
        self.delete_when_durable(now, arrival, keys, reply, Vec::new());
    }

    /// Deletes `keys` now, or once the work on them that arrived earlier is
    /// durable (checked again then: an update's later steps may have come).
    /// Updates of `keys` arriving meanwhile are `held` until it is done, so
    /// the delete removes only what was asked before it.
    pub(super) fn delete_when_durable(
        &mut self,
        now: Instant,
        arrival: u64,
        keys: Vec<String>,
        reply: Option<ReplyTo>,
        held: Vec<HeldUpdate>,
    ) {
        if let Some(token) = self.pending_for(&keys, arrival) {
            if let Some(dir) = self.jwt_dir.as_mut() {
                let work = Durable::DeleteAfterUpdates {
                    arrival,
                    keys,
                    reply,
                    held,
                };
                return dir.wait_for(token, work);
            }
        }
        self.delete_now(now, arrival, keys, reply, held);
    }

    /// When work on one of `keys` that must come before a delete that
    /// arrived as `arrival` (`u64::MAX`: any work) is still waiting for its
    /// sync, the token after which all waiting work is durable. Removing a file while a
    /// write of it is in flight can be undone by that write's sync, and an
    /// update's later steps remove and rewrite files a delete must see gone.
    pub(super) fn pending_for(&self, keys: &[String], arrival: u64) -> Option<SyncToken> {
        let dir = self.jwt_dir.as_ref()?;
        let pending = dir
            .waiting()
            .any(|work| keys.iter().any(|k| work.blocks(k, arrival)));
        pending.then(|| dir.last_token()).flatten()
    }

    /// Deletes `keys` from the directory, answering once that is durable.
    pub(super) fn delete_now(
        &mut self,
        now: Instant,
        arrival: u64,
        keys: Vec<String>,
        reply: Option<ReplyTo>,
        held: Vec<HeldUpdate>,
    ) {
        let rename = matches!(self.nats_resolver(), Some((_, ResolverDelete::Rename, _)));
        let Some(dir) = self.jwt_dir.as_mut() else {
            return self.finish_delete(now, &keys, &[], reply, held);
        };
        let (mut deleted, mut failures, mut last) = (Vec::new(), Vec::new(), None);
        for key in keys {
            let aside = self.trust.as_ref().and_then(|t| t.account_jwt(&key));
            match dir.delete(&key, aside.filter(|_| rename)) {
                Ok(token) => {
                    last = token.or(last);
                    deleted.push(key);
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        match last {
            Some(token) => dir.wait_for(
                token,
                Durable::Deleted {
                    arrival,
                    keys: deleted,
                    failures,
                    reply,
                    held,
                },
            ),
            None => self.finish_delete(now, &deleted, &failures, reply, held),
        }
    }

    /// What nats-server requires of a delete request: a JWT the operator
    /// (or one of its signing keys) signed for itself, listing account keys
    /// other than the system account under `nats.accounts`. The error names
    /// the request's subject, empty when it does not decode.
    pub(super) fn check_delete(&self, payload: &[u8]) -> Result<Vec<String>, (String, String)> {
        let text = String::from_utf8_lossy(payload);
        let request: Claims<serde_json::Value> =
            jwt::decode(&text).map_err(|e| (String::new(), jwt_error_text(&e)))?;
        let fail = |why: &str| Err((request.sub.clone(), why.to_owned()));
        let delete = self.nats_resolver().map(|(_, d, _)| d);
        if delete.is_none_or(|d| d == ResolverDelete::Refuse) {
            return fail("delete must be enabled in server config");
        }
        if request.sub != request.iss {
            return fail("not self signed");
        }
        if !self
            .trust
            .as_ref()
            .is_some_and(|t| t.is_operator_key(&request.iss))
        {
            return fail("not trusted");
        }
        let Some(list) = request.nats.get("accounts").and_then(|a| a.as_array()) else {
            return fail("malformed request");
        };
        let system = self
            .opts
            .system_account
            .clone()
            .or_else(|| self.trust.as_ref()?.system_account().map(str::to_owned));
        let mut keys = Vec::with_capacity(list.len());
        for entry in list {
            let key = entry.as_str().unwrap_or_default();
            if nkey::decode_public(key, KeyRole::Account).is_err() {
                return fail("malformed request");
            }
            if Some(key) == system.as_deref() {
                return fail("not allowed to delete system account");
            }
            keys.push(key.to_owned());
        }
        Ok(keys)
    }

    /// A delete is durable (or there is no directory): it takes effect and
    /// is answered, then the updates that arrived after it are stored.
    pub(super) fn finish_delete(
        &mut self,
        now: Instant,
        keys: &[String],
        failures: &[String],
        reply: Option<ReplyTo>,
        held: Vec<HeldUpdate>,
    ) {
        self.answer_delete(now, keys, failures, reply);
        for update in held {
            self.store_update(now, update);
        }
    }

    /// Deleted accounts are forgotten, and their users closed as nats-server
    /// closes them, with `-ERR 'Account Authentication Expired'`.
    pub(super) fn answer_delete(
        &mut self,
        now: Instant,
        keys: &[String],
        failures: &[String],
        reply: Option<ReplyTo>,
    ) {
        for key in keys {
            let known = self.trust.as_mut().is_some_and(|t| t.remove_account(key));
            if known {
                self.close_account_users(now, key);
                self.account_claims_changed(now, key);
            }
        }
        let passed = keys.len();
        if failures.is_empty() {
            let message = format!("deleted {passed} accounts");
            self.log(Level::Debug, message.clone());
            let body = json!({"code": 200, "message": message});
            return self.respond_outcome(now, reply, Ok(body));
        }
        let message = format!("deleted {passed} accounts, failed for {}", failures.len());
        let why = failures.join("\n");
        self.log(Level::Error, format!("{message} - {why}"));
        let body = json!({"code": 500, "description": format!("{message} - {why}")});
        self.respond_outcome(now, reply, Err(body));
    }

    pub(super) fn close_account_users(&mut self, now: Instant, key: &str) {
        let Some(index) = self.accounts.iter().position(|a| a.name == key) else {
            return;
        };
        let doomed: Vec<Slot> = self
            .clients_by_cid()
            .filter(|c| c.account == index && c.jwt_user.is_some())
            .filter_map(|c| self.by_cid.get(&c.cid).copied())
            .collect();
        for slot in doomed {
            self.close(
                now,
                slot,
                CloseReason::AuthenticationExpired,
                Some("Account Authentication Expired"),
            );
        }
    }

    /// Closes the clients of account `key` that its new JWT revokes, with
    /// nats-server's `-ERR 'User Authentication Revoked'`.
    pub(super) fn close_revoked(&mut self, now: Instant, key: &str) {
        let Some(index) = self.accounts.iter().position(|a| a.name == key) else {
            return;
        };
        let unix_secs = self.wall_at(now).0.div_euclid(1_000_000_000);
        let Some(is_revoked) = self
            .trust
            .as_ref()
            .and_then(|t| t.revocations(key, unix_secs))
        else {
            return;
        };
        let revoked: Vec<(Slot, String)> = self
            .clients_by_cid()
            .filter(|c| c.account == index)
            .filter_map(|c| c.jwt_user.as_ref().map(|(user, iat)| (c.cid, user, *iat)))
            .filter(|(_, user, iat)| is_revoked(user, *iat))
            .filter_map(|(cid, user, _)| Some((*self.by_cid.get(&cid)?, user.clone())))
            .collect();
        for (slot, user) in revoked {
            self.log(
                Level::Info,
                format!("User {user} revoked in account {key}, closing its connection"),
            );
            self.close(
                now,
                slot,
                CloseReason::AuthenticationRevoked,
                Some("User Authentication Revoked"),
            );
        }
    }
}
