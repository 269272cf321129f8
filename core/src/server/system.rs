//! The requests the server itself answers in the system account under the
//! NATS resolver: account claim updates (`$SYS.REQ.CLAIMS.UPDATE`,
//! `$SYS.REQ.ACCOUNT.<key>.CLAIMS.UPDATE`) and lookups
//! (`$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP`), with nats-server's replies.

use bytes::Bytes;
use serde_json::json;

use crate::auth::jwt::JwtError;
use crate::log::Level;
use crate::protocol::Publish;
use crate::time::Instant;

use super::{CloseReason, Server, Slot, VERSION};

/// What a `$SYS.REQ.…` subject asks for.
enum SystemRequest<'a> {
    /// Store this account JWT; the subject may name the account.
    ClaimsUpdate(Option<&'a str>),
    /// Send back the JWT of this account.
    ClaimsLookup(&'a str),
}

fn parse(subject: &[u8]) -> Option<SystemRequest<'_>> {
    let subject = std::str::from_utf8(subject).ok()?;
    if subject == "$SYS.REQ.CLAIMS.UPDATE" {
        return Some(SystemRequest::ClaimsUpdate(None));
    }
    let rest = subject.strip_prefix("$SYS.REQ.ACCOUNT.")?;
    if let Some(key) = rest.strip_suffix(".CLAIMS.UPDATE") {
        return Some(SystemRequest::ClaimsUpdate(Some(key)));
    }
    rest.strip_suffix(".CLAIMS.LOOKUP")
        .map(SystemRequest::ClaimsLookup)
}

impl Server {
    /// Answers a `$SYS.REQ.…` request published in the system account.
    /// Returns 1 when the server responded (it counts as a responder).
    pub(crate) fn system_request(
        &mut self,
        now: Instant,
        from: Slot,
        account: usize,
        p: &Publish,
    ) -> usize {
        let Some(request) = parse(&p.subject) else {
            return 0;
        };
        let answer = match request {
            SystemRequest::ClaimsUpdate(key) => self.claims_update(now, key, &p.payload),
            SystemRequest::ClaimsLookup(key) => {
                match self.trust.as_ref().and_then(|t| t.account_jwt(key)) {
                    Some(jwt) => Bytes::copy_from_slice(jwt.as_bytes()),
                    None => return 0,
                }
            }
        };
        let Some(reply) = p.reply.clone() else {
            return 1;
        };
        let response = Publish {
            subject: reply,
            reply: None,
            headers: None,
            payload: answer,
        };
        self.deliver_in(now, from, account, &response);
        1
    }

    fn claims_update(&mut self, now: Instant, key: Option<&str>, payload: &[u8]) -> Bytes {
        let text = String::from_utf8_lossy(payload);
        let result = match self.trust.as_mut() {
            Some(trust) => trust
                .update_account(&text)
                .map_err(|e| resolver_error_text(&e)),
            None => Err("no resolver".to_owned()),
        };
        let result = result.and_then(|sub| match key {
            Some(k) if k != sub => Err("subject does not match jwt content".to_owned()),
            _ => Ok(sub),
        });
        let body = match &result {
            Ok(sub) => {
                self.log(Level::Info, format!("Updated account claims: {sub}"));
                self.close_revoked(now, sub);
                json!({"account": sub, "code": 200, "message": "jwt updated"})
            }
            Err(why) => {
                self.log(
                    Level::Error,
                    format!("jwt update resulted in error - {why}"),
                );
                json!({"account": key.unwrap_or("n/a"), "code": 500, "description": format!("jwt update resulted in error - {why}")})
            }
        };
        let field = if result.is_ok() { "data" } else { "error" };
        let mut reply = json!({"server": self.server_stamp(now)});
        reply[field] = body;
        Bytes::from(reply.to_string())
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

    /// The `server` object nats-server puts in its system replies.
    fn server_stamp(&mut self, now: Instant) -> serde_json::Value {
        self.system_seq += 1;
        json!({
            "name": self.server_name,
            "host": self.opts.host,
            "id": self.server_id,
            "ver": VERSION,
            "jetstream": false,
            "flags": 0,
            "seq": self.system_seq,
            "time": self.wall_at(now).to_rfc3339(),
        })
    }
}

/// nats-server's wording for the JWT problems a client can cause.
fn resolver_error_text(e: &JwtError) -> String {
    match e {
        JwtError::Malformed("expected three parts") => "expected 3 chunks".to_owned(),
        other => other.to_string(),
    }
}
