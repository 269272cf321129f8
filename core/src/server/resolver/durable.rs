//! Durability of the resolver directory: what waits for a sync, and what
//! happens when it completes.

use crate::log::Level;
use crate::server::Control;
use crate::storage::SyncToken;
use crate::time::Instant;

use super::dir::JwtDir;
use super::ReplyTo;

/// Work finished when the sync that makes it durable completes. An
/// update goes through `Updated` (or `Preloaded`) and `Rewritten`; see
/// [`super::dir`] for why each step waits for a sync.
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
    /// `<key>.jwt` holds the JWT of a write-ahead file, renamed to it.
    Rewritten(Rewrite),
    /// Leftover write-ahead files of `key` are durably gone.
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
    pub(super) key: String,
    pub(super) jwt: String,
    /// The write-ahead file holding `jwt`, to be renamed to `<key>.jwt`;
    /// `None` once the rename failed and the file stays for the next start.
    pub(super) generation: Option<u64>,
    /// Who asked, for a claim update.
    pub(super) reply: Option<ReplyTo>,
    /// True for a claim update, which takes effect now; a preload or a JWT
    /// found at start is in effect already.
    pub(super) apply: bool,
}

/// A claim update that arrived after a delete of its account was asked
/// for: it is stored once the delete is done, so that requests take effect
/// in the order they arrived.
#[derive(Debug)]
pub(crate) struct HeldUpdate {
    pub(super) key: String,
    pub(super) jwt: String,
    pub(super) reply: Option<ReplyTo>,
}

impl Durable {
    /// The account and JWT this work is storing.
    pub(super) fn storing(&self) -> Option<(&str, &str)> {
        match self {
            Durable::Updated { key, jwt, .. } | Durable::Preloaded { key, jwt, .. } => {
                Some((key, jwt))
            }
            Durable::Rewritten(r) if r.apply => Some((&r.key, &r.jwt)),
            _ => None,
        }
    }

    /// The accounts this work will store a JWT for.
    pub(super) fn keys_to_store(&self) -> Vec<&str> {
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
    pub(super) fn blocks(&self, key: &str, arrival: u64) -> bool {
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
    pub(super) fn held_behind(&mut self, key: &str) -> Option<&mut Vec<HeldUpdate>> {
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

impl Control {
    /// Syncs the server asked of its [`crate::storage::Storage`] have
    /// completed (each reported once, in any order across files): the
    /// claim updates and deletes whose syncs, and every earlier one, are
    /// done take effect and are acknowledged.
    pub fn handle_synced(&mut self, now: Instant, tokens: &[SyncToken]) {
        if let Some(dir) = self.jwt_dir.as_mut() {
            dir.completed(tokens);
        }
        // One at a time: finishing one may queue work that must come after
        // the others already completed.
        while let Some(work) = self.jwt_dir.as_mut().and_then(JwtDir::next_completed) {
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
        self.finish_work(now);
        self.wake();
    }

    /// A write-ahead file is durable: it is renamed to `<key>.jwt`,
    /// nats-server's layout. Should that fail, the write-ahead file
    /// stays (the next start finishes the move) and the work is returned
    /// when nothing before it waits, to be finished now; otherwise it is
    /// finished in turn, so answers keep request order.
    pub(super) fn settle(&mut self, mut rewrite: Rewrite) -> Option<Rewrite> {
        let dir = self.jwt_dir.as_mut()?;
        let generation = rewrite.generation?;
        let failed = match dir.settle(&rewrite.key, generation) {
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

    /// `<key>.jwt` durably holds the JWT (or the rename failed and the
    /// write-ahead file keeps it): a claim update takes effect and is
    /// answered.
    pub(super) fn rewritten(&mut self, now: Instant, rewrite: Rewrite) {
        let Rewrite { key, jwt, reply, apply, .. } = rewrite;
        if apply {
            self.finish_update(now, &key, &jwt, reply);
        }
    }
}
