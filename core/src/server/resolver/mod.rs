//! The requests the server itself answers in the system account under the
//! NATS resolver, with nats-server's replies: account claim updates
//! (`$SYS.REQ.CLAIMS.UPDATE`, `$SYS.REQ.ACCOUNT.<key>.CLAIMS.UPDATE` and
//! the older `$SYS.ACCOUNT.<key>.CLAIMS.UPDATE`), lookups
//! (`$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP`), the list of stored accounts
//! (`$SYS.REQ.CLAIMS.LIST`) and deletes (`$SYS.REQ.CLAIMS.DELETE`).
//!
//! With a resolver directory attached ([`Control::with_storage`]) an update
//! or delete is answered only once the sync that makes it durable has
//! completed ([`Control::handle_synced`]): the reply is an acknowledgement
//! and must survive a crash. The change takes effect at the same moment,
//! so nothing observable runs ahead of the disk.
//!
//! The pieces: [`dir`] keeps the JWTs on storage, [`durable`] what waits
//! for its syncs, [`update`] and [`delete`] the two changes a request can
//! make, and [`claims`] the account claims in force and their expiry.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::auth::jwt::JwtError;
use crate::auth::nkey;
use crate::auth::Trust;
use crate::config::{Resolver, ResolverDelete};
use crate::log::Level;
use crate::protocol::Publish;
use crate::time::Instant;

use super::{Control, Slot};

pub(crate) mod claims;
mod delete;
pub(crate) mod dir;
mod durable;
mod update;

pub(crate) use durable::Durable;
use durable::{HeldUpdate, Rewrite};

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


impl Control {
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
        // A copy: an update's reply waits for a sync, past the read buffer.
        let reply = p.reply.as_deref().map(|r| ReplyTo { account, subject: Bytes::copy_from_slice(r) });
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
        if let Some(e) = &loaded.unlisted {
            problems.push(format!("DirResolver - the directory cannot be read, no account JWT loaded: {e}"));
        }
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
