//! The requests the server itself answers in the system account under the
//! NATS resolver, with nats-server's replies: account claim updates
//! (`$SYS.REQ.CLAIMS.UPDATE`, `$SYS.REQ.ACCOUNT.<key>.CLAIMS.UPDATE` and
//! the older `$SYS.ACCOUNT.<key>.CLAIMS.UPDATE`), lookups
//! (`$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP`), the list of stored accounts
//! (`$SYS.REQ.CLAIMS.LIST`) and deletes (`$SYS.REQ.CLAIMS.DELETE`).
//!
//! With a resolver directory attached ([`Server::with_storage`]) an update
//! or delete is answered only once the sync that makes it durable has
//! completed ([`Server::handle_synced`]): the reply is an acknowledgement
//! and must survive a crash. The change takes effect at the same moment,
//! so nothing observable runs ahead of the disk.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde_json::json;

use crate::auth::jwt::{self, Claims, JwtError};
use crate::auth::nkey::{self, KeyRole};
use crate::auth::Trust;
use crate::config::{Resolver, ResolverDelete};
use crate::log::Level;
use crate::protocol::Publish;
use crate::storage::SyncToken;
use crate::time::Instant;

use super::{CloseReason, Server, Slot};

/// What a `$SYS…` subject asks for.
enum SystemRequest<'a> {
    /// Store this account JWT; the subject may name the account.
    Update(Option<&'a str>),
    /// Send back the JWT of this account.
    Lookup(&'a str),
    /// Send back the keys of every stored account.
    List,
    /// Delete the accounts an operator-signed request lists.
    Delete,
}

fn parse(subject: &[u8]) -> Option<SystemRequest<'_>> {
    let subject = std::str::from_utf8(subject).ok()?;
    match subject {
        "$SYS.REQ.CLAIMS.UPDATE" => return Some(SystemRequest::Update(None)),
        "$SYS.REQ.CLAIMS.LIST" => return Some(SystemRequest::List),
        "$SYS.REQ.CLAIMS.DELETE" => return Some(SystemRequest::Delete),
        _ => {}
    }
    if let Some(rest) = subject.strip_prefix("$SYS.ACCOUNT.") {
        let key = rest.strip_suffix(".CLAIMS.UPDATE")?;
        return (!key.contains('.')).then_some(SystemRequest::Update(Some(key)));
    }
    let rest = subject.strip_prefix("$SYS.REQ.ACCOUNT.")?;
    if let Some(key) = rest.strip_suffix(".CLAIMS.UPDATE") {
        return (!key.contains('.')).then_some(SystemRequest::Update(Some(key)));
    }
    rest.strip_suffix(".CLAIMS.LOOKUP")
        .filter(|key| !key.contains('.'))
        .map(SystemRequest::Lookup)
}

/// Where a reply goes: the requester's reply subject in the system account.
/// The reply may leave after the requester is gone; it reaches whoever
/// subscribes to the subject then.
#[derive(Debug)]
pub(crate) struct ReplyTo {
    account: usize,
    subject: Bytes,
}

/// Work finished when the sync that makes it durable completes. An
/// update goes through `Updated` (or `Preloaded`), `Rewritten` and
/// `Settled`; see [`super::jwt_dir`] for why each step waits for a sync.
/// A claim update is answered and takes effect at `Rewritten`, once
/// `<key>.jwt` holds it: then nats-server, which reads only that file,
/// finds every acknowledged JWT should it take the directory over.
#[derive(Debug)]
pub(crate) enum Durable {
    /// A claim update: write-ahead file `generation` of `key` holds `jwt`.
    Updated {
        key: String,
        jwt: String,
        generation: u64,
        reply: Option<ReplyTo>,
    },
    /// A preloaded JWT newer than the stored one was written at start-up;
    /// it is already in effect.
    Preloaded {
        key: String,
        jwt: String,
        generation: u64,
    },
    /// `<key>.jwt` holds the JWT of a write-ahead file.
    Rewritten(Rewrite),
    /// A write-ahead file of `key` is durably gone.
    Settled { key: String },
    /// A claim update no newer than the one before it, answered (without
    /// effect, as nats-server does) once that one is durable.
    Unchanged { key: String, reply: Option<ReplyTo> },
    /// A delete request waiting for earlier work on its accounts to become
    /// durable before it removes their files.
    DeleteAfterUpdates {
        arrival: u64,
        keys: Vec<String>,
        reply: Option<ReplyTo>,
        held: Vec<HeldUpdate>,
    },
    /// A delete request: `keys` are gone from the directory.
    Deleted {
        arrival: u64,
        keys: Vec<String>,
        failures: Vec<String>,
        reply: Option<ReplyTo>,
        held: Vec<HeldUpdate>,
    },
}

/// A JWT durable in its write-ahead file, being moved into `<key>.jwt`.
#[derive(Debug)]
pub(crate) struct Rewrite {
    key: String,
    jwt: String,
    /// The write-ahead file to remove once `<key>.jwt` holds `jwt`; `None`
    /// when the rewrite failed and the write-ahead file stays for the next start.
    generation: Option<u64>,
    /// Who asked, for a claim update.
    reply: Option<ReplyTo>,
    /// True for a claim update, which takes effect now; a preload or a JWT
    /// found at start is in effect already.
    apply: bool,
}

/// A claim update that arrived after a delete of its account was asked
/// for: it is stored once the delete is done, so that requests take effect
/// in the order they arrived.
#[derive(Debug)]
pub(crate) struct HeldUpdate {
    key: String,
    jwt: String,
    reply: Option<ReplyTo>,
}

impl Durable {
    /// The account and JWT this work is storing.
    fn storing(&self) -> Option<(&str, &str)> {
        match self {
            Durable::Updated { key, jwt, .. } | Durable::Preloaded { key, jwt, .. } => {
                Some((key, jwt))
            }
            Durable::Rewritten(r) if r.apply => Some((&r.key, &r.jwt)),
            _ => None,
        }
    }

    /// The accounts this work will store a JWT for.
    fn keys_to_store(&self) -> Vec<&str> {
        match self {
            Durable::DeleteAfterUpdates { held, .. } | Durable::Deleted { held, .. } => {
                held.iter().map(|h| h.key.as_str()).collect()
            }
            other => other.storing().map(|(key, _)| key).into_iter().collect(),
        }
    }

    /// True when this work changes (or will change) account `key`'s files
    /// and must be done before a delete that arrived as `arrival` (deletes
    /// that arrived later wait for that one, not the other way round).
    fn blocks(&self, key: &str, arrival: u64) -> bool {
        match self {
            Durable::Updated { key: k, .. }
            | Durable::Preloaded { key: k, .. }
            | Durable::Rewritten(Rewrite { key: k, .. })
            | Durable::Settled { key: k }
            | Durable::Unchanged { key: k, .. } => k == key,
            Durable::DeleteAfterUpdates {
                arrival: a,
                keys,
                held,
                ..
            }
            | Durable::Deleted {
                arrival: a,
                keys,
                held,
                ..
            } => {
                *a < arrival && (keys.iter().any(|k| k == key) || held.iter().any(|h| h.key == key))
            }
        }
    }

    /// The updates held behind this work, when it is a delete of `key`.
    fn held_behind(&mut self, key: &str) -> Option<&mut Vec<HeldUpdate>> {
        match self {
            Durable::DeleteAfterUpdates { keys, held, .. }
            | Durable::Deleted { keys, held, .. }
                if keys.iter().any(|k| k == key) =>
            {
                Some(held)
            }
            _ => None,
        }
    }
}

/// The wording of one resolver kind's claim update replies.
struct UpdateWords {
    error: &'static str,
    invalid: &'static str,
    done: &'static str,
}

const FULL_WORDS: UpdateWords = UpdateWords {
    error: "jwt update resulted in error",
    invalid: "jwt validation failed",
    done: "jwt updated",
};

const CACHE_WORDS: UpdateWords = UpdateWords {
    error: "jwt update cache resulted in error",
    invalid: "jwt update cache validation failed",
    done: "jwt updated cache",
};

/// A claim update that decodes: the account key, the JWT, and what
/// validation found wrong with it (a cache reports that later).
type CheckedUpdate = (String, String, Option<String>);

/// A claim update refused: the account named in the reply, the reply's
/// wording, and why.
type RefusedUpdate = (String, &'static str, String);

impl Server {
    /// Answers a `$SYS…` request published in the system account.
    /// Returns 1 when the server is a responder.
    pub(crate) fn system_request(
        &mut self,
        now: Instant,
        from: Slot,
        account: usize,
        p: &Publish,
    ) -> usize {
        let claims = parse(&p.subject).filter(|_| self.answers_claims(account));
        let Some(request) = claims else {
            return self.monitor_request(now, from, account, p);
        };
        let reply = p.reply.clone().map(|subject| ReplyTo { account, subject });
        match request {
            SystemRequest::Update(key) => self.claims_update(now, key, &p.payload, reply),
            SystemRequest::Lookup(key) => {
                // Only a full resolver answers lookups; an empty reply says "not here".
                if self.nats_resolver().is_some_and(|(cache, _, _)| cache) {
                    return 0;
                }
                // nats-server stays silent on a key no account could have.
                if !is_public_key(key) {
                    return 1;
                }
                let jwt = self.trust.as_ref().and_then(|t| t.account_jwt(key));
                let body = Bytes::copy_from_slice(jwt.unwrap_or_default().as_bytes());
                self.respond(now, reply, body);
            }
            SystemRequest::List => {
                let body = self.claims_list(now);
                self.respond(now, reply, body);
            }
            SystemRequest::Delete => self.claims_delete(now, &p.payload, reply),
        }
        1
    }

    /// A sync the server asked of its [`crate::storage::Storage`] has
    /// completed, and with it every earlier one: the claim updates and
    /// deletes it covers take effect and are acknowledged.
    pub fn handle_synced(&mut self, now: Instant, token: SyncToken) {
        // One at a time: finishing one may queue work that must come after
        // the others already completed.
        while let Some(work) = self.jwt_dir.as_mut().and_then(|d| d.next_completed(token)) {
            match work {
                Durable::Updated {
                    key,
                    jwt,
                    generation,
                    reply,
                } => {
                    let rewrite = Rewrite {
                        key,
                        jwt,
                        generation: Some(generation),
                        reply,
                        apply: true,
                    };
                    if let Some(done) = self.settle(rewrite) {
                        self.rewritten(now, done);
                    }
                }
                Durable::Preloaded {
                    key,
                    jwt,
                    generation,
                } => {
                    let rewrite = Rewrite {
                        key,
                        jwt,
                        generation: Some(generation),
                        reply: None,
                        apply: false,
                    };
                    if let Some(done) = self.settle(rewrite) {
                        self.rewritten(now, done);
                    }
                }
                Durable::Rewritten(rewrite) => self.rewritten(now, rewrite),
                Durable::Settled { .. } => {}
                Durable::Unchanged { key, reply } => self.reply_updated(now, &key, reply),
                Durable::DeleteAfterUpdates {
                    arrival,
                    keys,
                    reply,
                    held,
                } => self.delete_when_durable(now, arrival, keys, reply, held),
                Durable::Deleted {
                    arrival: _,
                    keys,
                    failures,
                    reply,
                    held,
                } => self.finish_delete(now, &keys, &failures, reply, held),
            }
        }
        self.flush(now);
    }

    /// A write-ahead file is durable: `<key>.jwt` is rewritten to hold its
    /// JWT, nats-server's layout. Should that fail, the write-ahead file
    /// stays (the next start finishes the move) and the work is returned
    /// when nothing before it waits, to be finished now; otherwise it is
    /// finished in turn, so answers keep request order.
    fn settle(&mut self, mut rewrite: Rewrite) -> Option<Rewrite> {
        let dir = self.jwt_dir.as_mut()?;
        let generation = rewrite.generation?;
        let failed = match dir.settle(&rewrite.key, generation, &rewrite.jwt) {
            Ok(token) => {
                dir.wait_for(token, Durable::Rewritten(rewrite));
                return None;
            }
            Err(e) => e,
        };
        rewrite.generation = None;
        let key = &rewrite.key;
        let why =
            format!("DirResolver - rewriting {key}.jwt: {failed}; kept in {key}.jwt.{generation}");
        let waiting = dir.last_token();
        self.log(Level::Warn, why);
        match (waiting, self.jwt_dir.as_mut()) {
            (Some(token), Some(dir)) => {
                dir.wait_for(token, Durable::Rewritten(rewrite));
                None
            }
            _ => Some(rewrite),
        }
    }

    /// `<key>.jwt` holds the JWT (or the rewrite failed and the write-ahead
    /// file keeps it): the write-ahead file goes, and a claim update takes
    /// effect and is answered.
    fn rewritten(&mut self, now: Instant, rewrite: Rewrite) {
        let Rewrite {
            key,
            jwt,
            generation,
            reply,
            apply,
        } = rewrite;
        if let Some(generation) = generation {
            self.discard(&key, generation);
        }
        if apply {
            self.finish_update(now, &key, &jwt, reply);
        }
    }

    /// `<key>.jwt` durably holds write-ahead file `generation`'s JWT: the
    /// write-ahead file goes.
    fn discard(&mut self, key: &str, generation: u64) {
        let Some(dir) = self.jwt_dir.as_mut() else {
            return;
        };
        match dir.discard(key, generation) {
            Ok(Some(token)) => {
                let key = key.to_owned();
                dir.wait_for(token, Durable::Settled { key });
            }
            Ok(None) => {}
            Err(e) => self.log(
                Level::Warn,
                format!("DirResolver - removing {key}.jwt.{generation}: {e}"),
            ),
        }
    }

    /// The account JWTs operator mode starts with: `resolver_preload` and,
    /// under the NATS resolver with a directory attached, the stored ones.
    /// As with nats-server's preload, a preloaded JWT replaces the stored one
    /// unless that is the same JWT (`jti`) or was issued later, and is then
    /// stored itself.
    pub(crate) fn resolver_accounts(&mut self) -> BTreeMap<String, String> {
        let preload = self.opts.resolver_preload.clone();
        let Some((cache, _, _)) = self.nats_resolver() else {
            return preload;
        };
        let Some(dir) = self.jwt_dir.as_mut() else {
            return preload;
        };
        let loaded = dir.load(|key, text| {
            let claims = Trust::decode_account(text).ok()?;
            (claims.sub == key).then_some(claims.iat)
        });
        for (key, token) in loaded.cleaned {
            dir.wait_for(token, Durable::Settled { key });
        }
        let mut problems: Vec<String> = loaded
            .skipped
            .iter()
            .map(|name| format!("DirResolver - {name} does not hold a valid account JWT, skipped"))
            .collect();
        let mut accounts = BTreeMap::new();
        for (key, stored) in loaded.accounts {
            if let Some(generation) = stored.wal {
                // An update interrupted after its write-ahead file was durable;
                // a failure leaves nothing to do now, the next start tries again.
                let _ = self.settle(Rewrite {
                    key: key.clone(),
                    jwt: stored.jwt.clone(),
                    generation: Some(generation),
                    reply: None,
                    apply: false,
                });
            }
            accounts.insert(key, stored.jwt);
        }
        let Some(dir) = self.jwt_dir.as_mut() else {
            return preload;
        };
        for (key, jwt) in preload {
            let stored = accounts
                .get(&key)
                .and_then(|s| Trust::decode_account(s).ok());
            match (Trust::decode_account(&jwt).ok(), stored) {
                (Some(p), Some(s)) if s.jti == p.jti || s.iat > p.iat => continue,
                (None, Some(_)) => continue,
                // Not an account JWT: kept in memory for the trust check to refuse, not stored.
                (None, None) => {}
                (Some(_), _) => match dir.write(&key, &jwt) {
                    Ok((generation, token)) => {
                        let work = Durable::Preloaded {
                            key: key.clone(),
                            jwt: jwt.clone(),
                            generation,
                        };
                        dir.wait_for(token, work);
                    }
                    Err(e) => problems.push(format!(
                        "DirResolver - storing the preloaded JWT of {key}: {e}"
                    )),
                },
            }
            accounts.insert(key, jwt);
        }
        for problem in problems {
            self.log(Level::Warn, problem);
        }
        let dir_name = match &self.opts.resolver {
            Some(Resolver::Nats { dir, .. }) => dir.clone().unwrap_or_default(),
            _ => String::new(),
        };
        let which = if cache { "some" } else { "all" };
        self.log(
            Level::Info,
            format!("Managing {which} jwt in exclusive directory {dir_name}"),
        );
        accounts
    }

    /// The NATS resolver's settings, when it is the resolver.
    fn nats_resolver(&self) -> Option<(bool, ResolverDelete, Option<u64>)> {
        match &self.opts.resolver {
            Some(Resolver::Nats {
                cache,
                delete,
                limit,
                ..
            }) => Some((*cache, *delete, *limit)),
            _ => None,
        }
    }

    fn claims_update(
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
    fn hold_or_store(&mut self, now: Instant, update: HeldUpdate) {
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
    fn store_update(&mut self, now: Instant, update: HeldUpdate) {
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
    fn is_newer(&self, key: &str, jwt: &str) -> bool {
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
    fn unchanged(&mut self, now: Instant, key: String, reply: Option<ReplyTo>) {
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
    fn check_update(
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
    fn account_in_use(&self, key: &str) -> bool {
        self.system_account_name() == Some(key)
            || self
                .accounts
                .iter()
                .any(|a| a.name == key && a.stats.conns_ever > 0)
    }

    /// A full resolver refuses a new account beyond `limit`. Updates
    /// waiting for their sync hold their place already: without that, a
    /// burst of new accounts would all pass before the first is stored.
    fn store_is_full(&self, key: &str) -> bool {
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

    fn update_refused(
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
    fn finish_update(&mut self, now: Instant, key: &str, jwt: &str, reply: Option<ReplyTo>) {
        if let Some(trust) = self.trust.as_mut() {
            trust.store_account(key, jwt);
        }
        self.log(Level::Info, format!("Updated account claims: {key}"));
        self.close_revoked(now, key);
        self.account_claims_changed(now, key);
        self.reply_updated(now, key, reply);
    }

    /// nats-server's answer to a stored claim update.
    fn reply_updated(&mut self, now: Instant, key: &str, reply: Option<ReplyTo>) {
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
    fn claims_list(&mut self, now: Instant) -> Bytes {
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

    fn claims_delete(&mut self, now: Instant, payload: &[u8], reply: Option<ReplyTo>) {
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
    fn delete_when_durable(
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
    fn pending_for(&self, keys: &[String], arrival: u64) -> Option<SyncToken> {
        let dir = self.jwt_dir.as_ref()?;
        let pending = dir
            .waiting()
            .any(|work| keys.iter().any(|k| work.blocks(k, arrival)));
        pending.then(|| dir.last_token()).flatten()
    }

    /// Deletes `keys` from the directory, answering once that is durable.
    fn delete_now(
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
    fn check_delete(&self, payload: &[u8]) -> Result<Vec<String>, (String, String)> {
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
    fn finish_delete(
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
    fn answer_delete(
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

    fn close_account_users(&mut self, now: Instant, key: &str) {
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
    fn close_revoked(&mut self, now: Instant, key: &str) {
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

    /// Sends `{"server": …, "data": …}` or `{"server": …, "error": …}`,
    /// nats-server's reply shapes.
    fn respond_outcome(
        &mut self,
        now: Instant,
        reply: Option<ReplyTo>,
        outcome: Result<serde_json::Value, serde_json::Value>,
    ) {
        if reply.is_none() {
            return;
        }
        let answer = match outcome {
            Ok(data) => self.reply_data(now, data),
            Err(error) => self.reply_error(now, error),
        };
        self.respond(now, reply, answer);
    }

    fn respond(&mut self, now: Instant, reply: Option<ReplyTo>, payload: Bytes) {
        let Some(to) = reply else {
            return;
        };
        let response = Publish {
            subject: to.subject,
            reply: None,
            headers: None,
            payload,
        };
        // The server publishes it, so a requester with `echo: false` hears it too.
        self.deliver_in(now, super::sys_monitor::SERVER_SLOT, to.account, &response);
    }
}

/// What nats-server's resolver requires of the key it stores a JWT under:
/// a public nkey, of any role.
fn is_public_key(key: &str) -> bool {
    nkey::role_of(key).is_some_and(|role| nkey::decode_public(key, role).is_ok())
}

/// The claim types nats-server's JWT library reads as what they are; it
/// reads any other as a version 1 generic claim, which then fails the
/// version 1 signature check.
const KNOWN_CLAIM_TYPES: &[&str] = &[
    "operator",
    "account",
    "user",
    "activation",
    "authorization_request",
    "authorization_response",
];

/// nats-server's wording (its JWT library's) for the JWT problems a client
/// can cause.
fn jwt_error_text(e: &JwtError) -> String {
    match e {
        JwtError::Malformed("expected three parts") => "expected 3 chunks".to_owned(),
        JwtError::Signature(_) => "claim failed V2 signature verification".to_owned(),
        JwtError::WrongType { got, .. } => match got.as_str() {
            "cluster" => "ClusterClaims are not supported".to_owned(),
            "server" => "ServerClaims are not supported".to_owned(),
            known if KNOWN_CLAIM_TYPES.contains(&known) => "not account claim".to_owned(),
            _ => "claim failed V1 signature verification".to_owned(),
        },
        other => other.to_string(),
    }
}
