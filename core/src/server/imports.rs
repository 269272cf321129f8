//! Messages crossing accounts through stream and service imports, with
//! responses routed back to requesters (the routes themselves are built in
//! [`crate::account::routes`]).

use bytes::{Bytes, BytesMut};

use crate::account::routes::push_random_token;
use crate::account::state::{is_server_request, ResponseRoute, ServiceRoute};
use crate::account::ResponseType;
use crate::protocol::Publish;
use crate::subject::{subject_matches, SubjectMap};
use crate::time::Instant;

use super::{Control, Slot};

/// How many service imports one request may cross in a row (A imports from
/// B, which imports from C…). nats-server bounds a chain only by never
/// crossing the same export twice; natrix keeps that rule and adds this cap,
/// so no set of routes (a claim update can change them at any time) makes
/// delivery unbounded.
pub(crate) const SERVICE_IMPORT_HOPS_MAX: usize = 32;

/// How many service import crossings one publish may cause in all. Chains
/// that fork (an account importing the same subject from several accounts,
/// each of which does the same) would otherwise multiply deliveries with
/// every hop; nats-server has no such bound.
pub(crate) const SERVICE_IMPORT_CROSSINGS_MAX: usize = 1024;

/// The service exports a request has crossed on its way, outermost first.
/// A request never crosses the same export twice in one chain (what stops a
/// self-import and any loop), as nats-server's chain check does.
struct ImportChain {
    exports: [(usize, usize); SERVICE_IMPORT_HOPS_MAX],
    len: usize,
    /// Crossings so far, every branch counted.
    crossings: usize,
    /// Who published the request, for its `Nats-Request-Info` header: the
    /// account's index and the client's round-trip time in nanoseconds.
    origin: Option<(usize, u64)>,
}

impl Default for ImportChain {
    fn default() -> Self {
        ImportChain {
            exports: [(0, 0); SERVICE_IMPORT_HOPS_MAX],
            len: 0,
            crossings: 0,
            origin: None,
        }
    }
}

impl ImportChain {
    /// Takes the hop through `route` unless its export was crossed already
    /// or a cap is reached.
    fn enter(&mut self, route: &ServiceRoute) -> bool {
        let export = (route.exporter, route.export);
        let capped =
            self.len == SERVICE_IMPORT_HOPS_MAX || self.crossings == SERVICE_IMPORT_CROSSINGS_MAX;
        if capped || self.exports[..self.len].contains(&export) {
            return false;
        }
        self.exports[self.len] = export;
        self.len += 1;
        self.crossings += 1;
        true
    }

    fn leave(&mut self) {
        debug_assert!(self.len > 0, "leaving an import chain that was not entered");
        self.len -= 1;
    }
}

/// The header nats-server puts on requests crossing a service import.
const REQUEST_INFO_HEADER: &[u8] = b"Nats-Request-Info";

/// `value` as a JSON string the way Go's encoder writes it (`<`, `>` and `&`
/// escaped too).
fn push_go_json_string(out: &mut String, value: &str) {
    let quoted = serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_owned());
    for c in quoted.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
}

/// A header block with `key: value` set: any earlier `key` lines removed and
/// the new one last, the status line kept, as nats-server's `setHeader` does.
fn set_header(headers: Option<&Bytes>, key: &[u8], value: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    // The block without its closing empty line.
    match headers.and_then(|h| h.strip_suffix(b"\r\n")) {
        Some(block) if !block.is_empty() => {
            for (i, line) in block.split_inclusive(|&b| b == b'\n').enumerate() {
                let named = line
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.starts_with(b":"));
                if i == 0 || !named {
                    out.extend_from_slice(line);
                }
            }
        }
        _ => out.extend_from_slice(b"NATS/1.0\r\n"),
    }
    out.extend_from_slice(key);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n\r\n");
    out.freeze()
}

impl Control {
    /// Delivers `p`, published in `account`, to the other accounts its
    /// routes reach. Returns how many subscriptions got it.
    pub(crate) fn deliver_across(
        &mut self,
        now: Instant,
        from: Slot,
        account: usize,
        p: &Publish,
    ) -> usize {
        let mut delivered = self.deliver_response(now, from, account, p);
        if self.accounts[account].system_services && is_server_request(&p.subject) {
            delivered += self.system_request(now, from, account, p);
        }
        for i in 0..self.accounts[account].stream_routes.len() {
            let route = self.accounts[account].stream_routes[i].clone();
            if subject_matches(&route.map.from, &p.subject) {
                let mapped = Publish {
                    subject: self.mapped(&route.map, &p.subject),
                    ..p.clone()
                };
                delivered += self.deliver_in(now, from, route.importer, &mapped);
            }
        }
        if !self.accounts[account].service_routes.is_empty() {
            let rtt = self.client(from).map(|c| c.rtt.map_or(0, |d| d.as_nanos()));
            let mut chain = ImportChain {
                origin: rtt.map(|rtt| (account, u64::try_from(rtt).unwrap_or(u64::MAX))),
                ..ImportChain::default()
            };
            delivered += self.deliver_service_imports(now, from, account, p, &mut chain);
        }
        delivered
    }

    /// Sends `p`, published in (or arrived at) `account`, through the
    /// account's service imports that match it.
    fn deliver_service_imports(
        &mut self,
        now: Instant,
        from: Slot,
        account: usize,
        p: &Publish,
        chain: &mut ImportChain,
    ) -> usize {
        let mut delivered = 0;
        for i in 0..self.accounts[account].service_routes.len() {
            let route = self.accounts[account].service_routes[i].clone();
            if !subject_matches(&route.map.from, &p.subject) || !chain.enter(&route) {
                continue;
            }
            delivered += self.deliver_request(now, from, account, &route, p, chain);
            chain.leave();
        }
        delivered
    }

    /// A request crossing a service import: the exporter's responders see a
    /// reply subject of its own, mapped back to the requester's reply. When
    /// the exporter imports the service in turn, the request goes on (a
    /// multi-hop import, each hop mapping the reply), as in nats-server;
    /// it never goes on to the exporter's stream exports.
    fn deliver_request(
        &mut self,
        now: Instant,
        from: Slot,
        account: usize,
        route: &ServiceRoute,
        p: &Publish,
        chain: &mut ImportChain,
    ) -> usize {
        let subject = self.mapped(&route.map, &p.subject);
        let reply = match &p.reply {
            None => None,
            Some(reply) => {
                let mut made = BytesMut::from(&self.accounts[route.exporter].reply_prefix[..]);
                push_random_token(&mut self.rng, &mut made);
                let made = made.freeze();
                let back = ResponseRoute {
                    requester: account,
                    // A copy: the route outlives the publisher's read buffer.
                    reply: Bytes::copy_from_slice(reply),
                    response_type: route.response_type,
                    expires_at: now + route.response_threshold,
                };
                if !self.accounts[route.exporter].responses.insert(now, made.clone(), back) {
                    // The requester has as many requests awaiting answers
                    // here as it may: this one cannot be answered, so it
                    // does not cross (a requester asking for it gets 503).
                    return 0;
                }
                Some(made)
            }
        };
        let headers = match chain.origin {
            Some(origin) => Some(self.request_info(origin, account, chain.len, p.headers.as_ref())),
            None => p.headers.clone(),
        };
        let request = Publish {
            subject,
            reply,
            headers,
            payload: p.payload.clone(),
        };
        if request.reply.is_some() {
            // Before the request is delivered: a response may follow at once.
            self.accounts[route.exporter].share_routes();
        }
        let mut delivered = self.deliver_in(now, from, route.exporter, &request);
        delivered += self.deliver_service_imports(now, from, route.exporter, &request, chain);
        // Nobody took the request, so no response can come: forget the
        // reply mapping now rather than at its threshold, as nats-server does.
        if let (0, Some(made)) = (delivered, &request.reply) {
            self.accounts[route.exporter].responses.remove(made);
            self.accounts[route.exporter].share_routes();
        }
        delivered
    }

    /// A response on a made-up reply subject goes back to the requester, and
    /// on back through every hop of a multi-hop import.
    fn deliver_response(&mut self, now: Instant, from: Slot, account: usize, p: &Publish) -> usize {
        let mut delivered = 0;
        let (mut account, mut subject) = (account, p.subject.clone());
        for _ in 0..SERVICE_IMPORT_HOPS_MAX {
            let Some(route) = self.take_response_route(now, account, &subject) else {
                break;
            };
            let response = Publish {
                subject: route.reply,
                reply: None,
                headers: p.headers.clone(),
                payload: p.payload.clone(),
            };
            delivered += self.deliver_in(now, from, route.requester, &response);
            (account, subject) = (route.requester, response.subject);
        }
        delivered
    }

    /// Where a response on `subject` in `account` goes, if it still may;
    /// forgets the route once it has served its last response.
    fn take_response_route(
        &mut self,
        now: Instant,
        account: usize,
        subject: &[u8],
    ) -> Option<ResponseRoute> {
        let responses = &mut self.accounts[account].responses;
        if responses.is_empty() || !subject.starts_with(b"_R_.") {
            return None;
        }
        let route = responses.get(subject).cloned()?;
        if route.expires_at <= now || route.response_type == ResponseType::Singleton {
            responses.remove(subject);
            self.accounts[account].share_routes();
        }
        (route.expires_at > now).then_some(route)
    }

    /// The request's headers with nats-server's `Nats-Request-Info` set
    /// (replacing any the publisher sent): the requesting account and its
    /// round-trip time, and from the second hop on the account whose import
    /// the request is crossing now (`svc`).
    fn request_info(
        &self,
        (requester, rtt_ns): (usize, u64),
        importer: usize,
        hop: usize,
        headers: Option<&Bytes>,
    ) -> Bytes {
        let mut info = String::from("{\"acc\":");
        push_go_json_string(&mut info, &self.accounts[requester].name);
        if hop > 1 {
            info.push_str(",\"svc\":");
            push_go_json_string(&mut info, &self.accounts[importer].name);
        }
        if rtt_ns > 0 {
            info.push_str(&format!(",\"rtt\":{rtt_ns}"));
        }
        info.push('}');
        set_header(headers, REQUEST_INFO_HEADER, info.as_bytes())
    }

    fn mapped(&mut self, map: &SubjectMap, subject: &[u8]) -> Bytes {
        self.scratch.clear();
        map.apply(subject, &mut self.scratch);
        self.scratch.split().freeze()
    }
}
