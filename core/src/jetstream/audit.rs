//! API audit advisories: every answered `$JS.API` request is reported on
//! `$JS.EVENT.ADVISORY.API` (`io.nats.jetstream.advisory.v1.api_audit`)
//! with who asked, what and what they were told, right after the answer,
//! as nats-server does, and only while someone in the account listens
//! there (the control plane says so with [`JetStream::set_api_caller`]).

use bytes::Bytes;
use serde::Serialize;

use super::{JetStream, Reply};
use crate::time::UnixNanos;

/// The subject audit advisories go to.
pub const AUDIT_SUBJECT: &str = "$JS.EVENT.ADVISORY.API";
const AUDIT_TYPE: &str = "io.nats.jetstream.advisory.v1.api_audit";

/// The client behind an API request, as an audit advisory names it
/// (nats-server's `ClientInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ApiCaller {
    /// When its connection was accepted.
    #[serde(with = "super::api::json::go_time")]
    pub start: UnixNanos,
    /// Its address.
    pub host: String,
    /// Its connection id.
    pub id: u64,
    /// Its account.
    #[serde(rename = "acc")]
    pub account: String,
    /// Its user, when it authenticated as one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// The name it gave in CONNECT.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Its client library's language.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lang: String,
    /// Its client library's version.
    #[serde(rename = "ver", skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Its round-trip time in nanoseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub rtt: i64,
    /// The server it is connected to.
    pub server: String,
    /// `Client` (nats-server's connection kinds).
    pub kind: &'static str,
    /// `nats`, `websocket`, `mqtt`…
    pub client_type: &'static str,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

#[derive(Serialize)]
struct Audit<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    #[serde(with = "super::api::json::go_time")]
    timestamp: UnixNanos,
    server: &'a str,
    client: &'a ApiCaller,
    subject: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    request: &'a str,
    response: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    domain: &'a str,
}

impl JetStream {
    /// Names the client whose API request comes next, when someone in its
    /// account listens for audit advisories; `None` after it (or when no
    /// one listens: nothing is built then).
    pub fn set_api_caller(&mut self, caller: Option<ApiCaller>) {
        self.api_caller = caller;
    }

    /// The audit advisory of a request on `subject` answered with
    /// `response`, when a caller was named for it.
    pub(super) fn audit(&mut self, account: &str, subject: &[u8], request: &[u8], response: &[u8], wall: UnixNanos) -> Option<Reply> {
        let caller = self.api_caller.take()?;
        let body = Audit {
            kind: AUDIT_TYPE,
            id: self.next_id(),
            timestamp: wall,
            server: &self.server_name,
            client: &caller,
            subject: &String::from_utf8_lossy(subject),
            request: &String::from_utf8_lossy(request),
            response: &String::from_utf8_lossy(response),
            domain: self.limits.domain.as_deref().unwrap_or_default(),
        };
        let payload = serde_json::to_vec(&body).expect("an advisory serialises");
        Some(Reply { account: account.to_owned(), subject: Bytes::from_static(AUDIT_SUBJECT.as_bytes()), headers: None, payload: payload.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jetstream::api::AccountLimits;
    use crate::jetstream::config::CheckLimits;

    fn request(js: &mut JetStream, caller: Option<ApiCaller>, subject: &str) -> Vec<Reply> {
        js.set_api_caller(caller);
        let reply = Bytes::from_static(b"_INBOX.r");
        js.handle_api("A", subject.as_bytes(), Some(&reply), &Bytes::new(), UnixNanos(0));
        js.set_api_caller(None);
        js.flush();
        std::iter::from_fn(|| js.poll_reply()).collect()
    }

    #[test]
    fn an_audit_follows_the_answer_only_when_someone_listens() {
        let mut js = JetStream::new(CheckLimits::default(), None);
        js.enable("A", AccountLimits::default());
        js.set_server_name("SRV");
        assert_eq!(request(&mut js, None, "$JS.API.STREAM.INFO.NOPE").len(), 1);
        let caller = ApiCaller { host: "127.0.0.1".into(), id: 7, account: "A".into(), server: "SRV".into(), kind: "Client", client_type: "nats", ..Default::default() };
        let got = request(&mut js, Some(caller), "$JS.API.STREAM.INFO.NOPE");
        assert_eq!(got.len(), 2);
        assert_eq!(&got[0].subject[..], b"_INBOX.r");
        assert_eq!(&got[1].subject[..], AUDIT_SUBJECT.as_bytes());
        let audit: serde_json::Value = serde_json::from_slice(&got[1].payload).unwrap();
        assert_eq!(audit["type"], AUDIT_TYPE);
        assert_eq!(audit["server"], "SRV");
        assert_eq!(audit["client"]["id"], 7);
        assert_eq!(audit["client"]["acc"], "A");
        assert_eq!(audit["subject"], "$JS.API.STREAM.INFO.NOPE");
        assert!(audit.get("request").is_none(), "an empty request is left out");
        assert_eq!(audit["response"].as_str().unwrap().as_bytes(), &got[0].payload[..]);
    }
}
