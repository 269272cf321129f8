//! Accounts built from the config, and messages crossing accounts through
//! stream and service imports, with responses routed back to requesters.

use bytes::{Bytes, BytesMut};
use rand_core::RngCore;

use crate::config::{find_export, AccountConfig, ImportKind, ResponseType, ServerOptions};
use crate::protocol::Publish;
use crate::subject::subject_matches;
use crate::time::Instant;

use super::account::{Account, ResponseRoute, ServiceRoute, StreamRoute, SubjectMap};
use super::{Server, Slot};

/// The global account every client without one belongs to.
pub(crate) const GLOBAL_ACCOUNT: &str = "$G";
/// The system account's name when `system_account` names none.
pub(crate) const SYSTEM_ACCOUNT: &str = "$SYS";

/// `$G` first (index 0 is the default account), then the configured
/// accounts, then `$SYS` unless `system_account` names a configured one.
pub(crate) fn build_accounts(opts: &ServerOptions, rng: &mut impl RngCore) -> Vec<Account> {
    let cache = !opts.disable_sublist_cache;
    let mut names: Vec<&str> = vec![GLOBAL_ACCOUNT];
    names.extend(
        opts.accounts
            .iter()
            .map(|a| a.name.as_str())
            .filter(|n| *n != GLOBAL_ACCOUNT),
    );
    let system = opts.system_account.as_deref().unwrap_or(SYSTEM_ACCOUNT);
    if !opts.no_system_account && !names.contains(&system) {
        names.push(system);
    }
    let mut accounts: Vec<Account> = names
        .iter()
        .map(|n| Account::new(n, cache, rng.next_u64()))
        .collect();
    for account in &mut accounts {
        account.reply_prefix = reply_prefix(rng);
    }
    add_routes(&opts.accounts, &mut accounts);
    accounts
}

/// Resolves every authorized import into a route on the account whose
/// publishes it carries. Unauthorized ones were config errors already.
pub(crate) fn add_routes(configs: &[AccountConfig], accounts: &mut [Account]) {
    let index = |accounts: &[Account], name: &str| accounts.iter().position(|a| a.name == name);
    for importer_cfg in configs {
        let Some(importer) = index(accounts, &importer_cfg.name) else {
            continue;
        };
        for i in &importer_cfg.imports {
            let Some(exporter_cfg) = configs.iter().find(|a| a.name == i.account) else {
                continue;
            };
            let (Some(export), Some(exporter)) = (
                find_export(exporter_cfg, i, &importer_cfg.name),
                index(accounts, &i.account),
            ) else {
                continue;
            };
            let subject = Bytes::copy_from_slice(i.subject.as_bytes());
            match i.kind {
                ImportKind::Stream => {
                    let to = match (&i.prefix, &i.to) {
                        (Some(prefix), _) => Bytes::from(format!("{prefix}.{}", i.subject)),
                        (None, Some(to)) => Bytes::copy_from_slice(to.as_bytes()),
                        (None, None) => subject.clone(),
                    };
                    let route = StreamRoute {
                        importer,
                        map: SubjectMap { from: subject, to },
                    };
                    accounts[exporter].stream_routes.push(route);
                }
                ImportKind::Service => {
                    let local = i.to.as_deref().map_or_else(
                        || subject.clone(),
                        |to| Bytes::copy_from_slice(to.as_bytes()),
                    );
                    accounts[importer].service_routes.push(ServiceRoute {
                        exporter,
                        map: SubjectMap {
                            from: local,
                            to: subject,
                        },
                        response_type: export.response_type,
                        response_threshold: export.response_threshold,
                    });
                }
            }
        }
    }
}

/// `_R_.` and six random characters, like nats-server's reply prefixes.
pub(crate) fn reply_prefix(rng: &mut impl RngCore) -> Bytes {
    let mut out = BytesMut::with_capacity(11);
    out.extend_from_slice(b"_R_.");
    push_random_token(rng, &mut out);
    out.extend_from_slice(b".");
    out.freeze()
}

fn push_random_token(rng: &mut impl RngCore, out: &mut BytesMut) {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for _ in 0..6 {
        out.extend_from_slice(&[ALPHABET[(rng.next_u32() % 62) as usize]]);
    }
}

impl Server {
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
        if self.accounts[account].system_services && p.subject.starts_with(b"$SYS.REQ.") {
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
        for i in 0..self.accounts[account].service_routes.len() {
            let route = self.accounts[account].service_routes[i].clone();
            if subject_matches(&route.map.from, &p.subject) {
                delivered += self.deliver_request(now, from, account, &route, p);
            }
        }
        delivered
    }

    /// A request crossing a service import: the exporter's responders see a
    /// reply subject of its own, mapped back to the requester's reply.
    fn deliver_request(
        &mut self,
        now: Instant,
        from: Slot,
        account: usize,
        route: &ServiceRoute,
        p: &Publish,
    ) -> usize {
        let subject = self.mapped(&route.map, &p.subject);
        let reply = p.reply.as_ref().map(|reply| {
            let mut made = BytesMut::from(&self.accounts[route.exporter].reply_prefix[..]);
            push_random_token(&mut self.rng, &mut made);
            let made = made.freeze();
            let back = ResponseRoute {
                requester: account,
                reply: reply.clone(),
                response_type: route.response_type,
                expires_at: now + route.response_threshold,
            };
            self.accounts[route.exporter].add_response(now, made.clone(), back);
            made
        });
        let request = Publish {
            subject,
            reply,
            headers: p.headers.clone(),
            payload: p.payload.clone(),
        };
        self.deliver_in(now, from, route.exporter, &request)
    }

    /// A response on a made-up reply subject goes back to the requester.
    fn deliver_response(&mut self, now: Instant, from: Slot, account: usize, p: &Publish) -> usize {
        let responses = &mut self.accounts[account].responses;
        if responses.is_empty() || !p.subject.starts_with(b"_R_.") {
            return 0;
        }
        let Some(route) = responses.get(&p.subject[..]).cloned() else {
            return 0;
        };
        if route.expires_at <= now || route.response_type == ResponseType::Singleton {
            responses.remove(&p.subject[..]);
        }
        if route.expires_at <= now {
            return 0;
        }
        let response = Publish {
            subject: route.reply,
            reply: None,
            headers: p.headers.clone(),
            payload: p.payload.clone(),
        };
        self.deliver_in(now, from, route.requester, &response)
    }

    fn mapped(&mut self, map: &SubjectMap, subject: &[u8]) -> Bytes {
        self.scratch.clear();
        map.apply(subject, &mut self.scratch);
        self.scratch.split().freeze()
    }
}
