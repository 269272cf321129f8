//! Claim updates (`$SYS.REQ.CLAIMS.UPDATE` and its older forms) and the
//! list of stored accounts.

use std::collections::BTreeSet;

use bytes::Bytes;
use serde_json::json;

use crate::auth::Trust;
use crate::log::Level;
use crate::time::Instant;
use crate::server::Control;

use super::{is_public_key, jwt_error_text, Durable, HeldUpdate, ReplyTo};

/// The wording of one resolver kind's claim update replies.
pub(super) struct UpdateWords {
    error: &'static str,
    invalid: &'static str,
    done: &'static str,
}

pub(super) const FULL_WORDS: UpdateWords = UpdateWords {
    error: "jwt update resulted in error",
    invalid: "jwt validation failed",
    done: "jwt updated",
};

pub(super) const CACHE_WORDS: UpdateWords = UpdateWords {
    error: "jwt update cache resulted in error",
    invalid: "jwt update cache validation failed",
    done: "jwt updated cache",
};

/// A claim update that decodes: the account key, the JWT, and what
/// validation found wrong with it (a cache reports that later).
pub(super) type CheckedUpdate = (String, String, Option<String>);

/// A claim update refused: the account named in the reply, the reply's
/// wording, and why.
pub(super) type RefusedUpdate = (String, &'static str, String);

impl Control {
    pub(super) fn claims_update(
        &mut self,
        now: Instant,
        key: Option<&str>,
        payload: &[u8],
        reply: Option<ReplyTo>,
    ) {
        let cache = self.nats_resolver().is_some_and(|(cache, _, _)| cache);
        let words = if cache { &CACHE_WORDS } else { &FULL_WORDS };
        let (sub, text, invalid) = match self.check_update(key, payload, words, cache) {
            Ok(checked) => checked,
            Err((account, wording, why)) => {
                return self.update_refused(now, reply, wording, &account, &why);
            }
        };
        if cache && !self.account_in_use(&sub) {
            // A cache keeps only the accounts in use; nats-server says so and moves on.
            self.log(Level::Debug, format!("jwt update cache skipped - {sub}"));
            let body = json!({"account": sub, "code": 200, "message": "jwt update cache skipped"});
            return self.respond_outcome(now, reply, Ok(body));
        }
        if let Some(why) = invalid {
            return self.update_refused(now, reply, words.invalid, &sub, &why);
        }
        if !is_public_key(&sub) {
            // The key names the stored file: nothing else may.
            return self.update_refused(now, reply, words.error, &sub, "invalid public key");
        }
        if !cache && self.store_is_full(&sub) {
            return self.update_refused(now, reply, words.error, &sub, "jwt store is full");
        }
        self.hold_or_store(
            now,
            HeldUpdate {
                key: sub,
                jwt: text,
                reply,
            },
        );
    }

    /// A checked claim update waits behind a pending delete of its account
    /// (the last one: it arrived after them all), or is stored now.
    pub(super) fn hold_or_store(&mut self, now: Instant, update: HeldUpdate) {
        if let Some(dir) = self.jwt_dir.as_mut() {
            let delete = dir
                .waiting_mut()
                .rev()
                .find_map(|w| w.held_behind(&update.key));
            if let Some(held) = delete {
                return held.push(update);
            }
        }
        self.store_update(now, update);
    }

    /// Stores a claim update: answered without effect when it is not newer
    /// than the JWT it would replace (nats-server keeps the newer one), else
    /// written and answered once durable. A held update comes here when its
    /// delete is done, ahead of any later delete.
    pub(super) fn store_update(&mut self, now: Instant, update: HeldUpdate) {
        if !self.is_newer(&update.key, &update.jwt) {
            return self.unchanged(now, update.key, update.reply);
        }
        let HeldUpdate { key, jwt, reply } = update;
        let Some(dir) = self.jwt_dir.as_mut() else {
            return self.finish_update(now, &key, &jwt, reply);
        };
        match dir.write(&key, &jwt) {
            Ok((generation, token)) => {
                let work = Durable::Updated {
                    key,
                    jwt,
                    generation,
                    reply,
                };
                dir.wait_for(token, work);
            }
            Err(e) => {
                let cache = self.nats_resolver().is_some_and(|(cache, _, _)| cache);
                let words = if cache { &CACHE_WORDS } else { &FULL_WORDS };
                self.update_refused(now, reply, words.error, &key, &e.to_string());
            }
        }
    }

    /// nats-server's rule for replacing a stored JWT: not when it is the
    /// same JWT (`jti`) or the stored one was issued later. The JWT to
    /// replace is the newest one still being stored, else the one in use.
    pub(super) fn is_newer(&self, key: &str, jwt: &str) -> bool {
        let pending = self.jwt_dir.iter().flat_map(|dir| dir.waiting().rev());
        let pending = pending
            .filter_map(Durable::storing)
            .find(|(k, _)| *k == key);
        let current = pending
            .map(|(_, jwt)| jwt)
            .or_else(|| self.trust.as_ref()?.account_jwt(key));
        let existing = current.and_then(|text| Trust::decode_account(text).ok());
        match (existing, Trust::decode_account(jwt)) {
            (Some(old), Ok(new)) => old.jti != new.jti && old.iat <= new.iat,
            _ => true,
        }
    }

    /// An update without effect is answered as stored once the work before
    /// it on the same account is durable, so replies keep request order.
    pub(super) fn unchanged(&mut self, now: Instant, key: String, reply: Option<ReplyTo>) {
        if let Some(token) = self.pending_for(std::slice::from_ref(&key), u64::MAX) {
            if let Some(dir) = self.jwt_dir.as_mut() {
                return dir.wait_for(token, Durable::Unchanged { key, reply });
            }
        }
        self.reply_updated(now, &key, reply);
    }

    /// What nats-server checks before storing a claim update: an account
    /// JWT with a valid signature, for the account the subject names. Its
    /// issuer is checked when the account is used (see [`Trust::account`]).
    pub(super) fn check_update(
        &self,
        key: Option<&str>,
        payload: &[u8],
        words: &UpdateWords,
        cache: bool,
    ) -> Result<CheckedUpdate, RefusedUpdate> {
        let text = String::from_utf8_lossy(payload).trim().to_owned();
        // The cache names the account of the subject even when the JWT is unreadable.
        let unreadable = if cache { key.unwrap_or("n/a") } else { "n/a" };
        if self.trust.is_none() {
            return Err((unreadable.to_owned(), words.error, "no resolver".to_owned()));
        }
        let claims = Trust::decode_account(&text)
            .map_err(|e| (unreadable.to_owned(), words.error, jwt_error_text(&e)))?;
        let invalid = claims.nats.validate().err().map(|e| e.to_string());
        // A full resolver validates before comparing the subject; a cache after.
        if let Some(why) = invalid.clone().filter(|_| !cache) {
            return Err((claims.sub, words.invalid, why));
        }
        match key {
            Some(k) if k != claims.sub => Err((
                k.to_owned(),
                words.error,
                "subject does not match jwt content".to_owned(),
            )),
            _ => Ok((claims.sub, text, invalid)),
        }
    }

    /// What a cache resolver keeps up to date: the accounts nats-server has
    /// registered, i.e. the system account and those a client connected to.
    /// (natrix builds every known account at start, so "built" is not it.)
    pub(super) fn account_in_use(&self, key: &str) -> bool {
        self.system_account_name() == Some(key)
            || self
                .accounts
                .iter()
                .any(|a| a.name == key && a.stats.conns_ever > 0)
    }

    /// A full resolver refuses a new account beyond `limit`. Updates
    /// waiting for their sync hold their place already: without that, a
    /// burst of new accounts would all pass before the first is stored.
    pub(super) fn store_is_full(&self, key: &str) -> bool {
        let Some((_, _, Some(limit))) = self.nats_resolver() else {
            return false;
        };
        let Some(trust) = &self.trust else {
            return false;
        };
        let mut stored: BTreeSet<&str> = trust.account_keys().collect();
        let waiting = self.jwt_dir.iter().flat_map(|dir| dir.waiting());
        stored.extend(waiting.flat_map(Durable::keys_to_store));
        !stored.contains(key) && stored.len() as u64 >= limit
    }

    pub(super) fn update_refused(
        &mut self,
        now: Instant,
        reply: Option<ReplyTo>,
        wording: &str,
        account: &str,
        why: &str,
    ) {
        self.log(Level::Error, format!("{wording} - {account} - {why}"));
        let body =
            json!({"account": account, "code": 500, "description": format!("{wording} - {why}")});
        self.respond_outcome(now, reply, Err(body));
    }

    /// A claim update is durable (or there is no directory): it takes
    /// effect, and the requester hears so.
    pub(super) fn finish_update(&mut self, now: Instant, key: &str, jwt: &str, reply: Option<ReplyTo>) {
        if let Some(trust) = self.trust.as_mut() {
            trust.store_account(key, jwt);
        }
        self.log(Level::Info, format!("Updated account claims: {key}"));
        self.close_revoked(now, key);
        self.account_claims_changed(now, key);
        self.reply_updated(now, key, reply);
    }

    /// nats-server's answer to a stored claim update.
    pub(super) fn reply_updated(&mut self, now: Instant, key: &str, reply: Option<ReplyTo>) {
        let cache = self.nats_resolver().is_some_and(|(cache, _, _)| cache);
        let done = if cache {
            CACHE_WORDS.done
        } else {
            FULL_WORDS.done
        };
        let body = json!({"account": key, "code": 200, "message": done});
        self.respond_outcome(now, reply, Ok(body));
    }

    /// `$SYS.REQ.CLAIMS.LIST`: the stored accounts whose JWT has not expired,
    /// sorted, as nats-server walks its directory.
    pub(super) fn claims_list(&mut self, now: Instant) -> Bytes {
        let unix_secs = self.wall_at(now).0.div_euclid(1_000_000_000);
        let keys: Vec<&str> = self.trust.as_ref().map_or_else(Vec::new, |t| {
            t.account_keys()
                .filter(|k| {
                    let exp = t
                        .account_jwt(k)
                        .and_then(|text| Trust::decode_account(text).ok())
                        .map_or(0, |c| c.exp);
                    exp <= 0 || exp >= unix_secs
                })
                .collect()
        });
        let keys: Vec<String> = keys.into_iter().map(str::to_owned).collect();
        self.log(
            Level::Debug,
            format!("list request responded with {} account ids", keys.len()),
        );
        self.reply_data(now, keys)
    }
}
