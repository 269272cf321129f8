//! Monitoring over NATS: the `$SYS.REQ.SERVER.…`, `$SYS.REQ.ACCOUNT.…` and
//! `$SYS.REQ.USER.INFO` requests that nats-server answers wherever a system
//! account exists (config accounts, with or without `system_account`, and
//! operator mode). Published in the system account they reach every
//! account; published in another account only that account's own `CONNZ`,
//! `STATZ` and user info answer, as nats-server's automatic imports from
//! the system account allow. Bodies come from the monitor module's
//! builders, wrapped as nats-server wraps them:
//! `{"server":{…},"data":{…}}`, or `{"server":{…},"error":{"code":…,"description":…}}`.

use bytes::Bytes;
use rand_core::RngCore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::auth::Trust;
use crate::config::Resolver;
use crate::server::monitor::{build, unclustered_doc, AccountDetail, AccountInfo, Accountz, Accstatz, Jsz, Subsz};
use crate::protocol::Publish;
use crate::subject::is_valid_literal_subject;
use crate::time::{Instant, UnixNanos};

use crate::account::routes::SYSTEM_ACCOUNT;
use super::{AccountStats, Control, Slot, VERSION};

/// Stands for the server as the publisher of its replies: no client holds
/// it, so a requester with `echo: false` still gets its answer.
pub(super) const SERVER_SLOT: Slot = Slot::NONE;

mod requests;

use requests::*;
pub(super) use requests::{to_bytes as to_json, ServerStamp};

impl Control {
    /// The system account's name: `system_account`, else the one the
    /// operator JWT names, else `$SYS`; none with `no_system_account`.
    pub(crate) fn system_account_name(&self) -> Option<&str> {
        if self.opts.no_system_account {
            return None;
        }
        let configured = self.opts.system_account.as_deref();
        Some(
            configured
                .or(self.trust.as_ref().and_then(Trust::system_account))
                .unwrap_or(SYSTEM_ACCOUNT),
        )
    }

    /// The trusted operators and account JWTs, in operator mode.
    pub(crate) fn trust(&self) -> Option<&Trust> {
        self.trust.as_ref()
    }

    /// True when the server answers `$SYS.REQ.…` in every account: whenever
    /// there is a system account, as in nats-server.
    pub(super) fn system_services_on(&self) -> bool {
        !self.opts.no_system_account
    }

    /// Turns on the monitoring requests in every account made at start-up.
    pub(super) fn enable_system_services(&mut self) {
        let on = self.system_services_on();
        for account in &mut self.accounts {
            account.system_services |= on;
            account.share_routes();
        }
    }

    /// Claim updates and lookups are taken only in the system account, and
    /// only under the NATS resolver.
    pub(super) fn answers_claims(&self, account: usize) -> bool {
        matches!(self.opts.resolver, Some(Resolver::Nats { .. }))
            && self.accounts.get(account).map(|a| a.name.as_str()) == self.system_account_name()
    }

    /// Answers a monitoring request published in `account` by the client in
    /// `from`. Returns 1 when the server listens on the subject (whether or
    /// not it replies), so the request does not get a no-responders status.
    pub(super) fn monitor_request(
        &mut self,
        now: Instant,
        from: Slot,
        account: usize,
        p: &Publish,
    ) -> usize {
        let Ok(subject) = std::str::from_utf8(&p.subject) else {
            return 0;
        };
        let Some(own) = self.accounts.get(account).map(|a| a.name.as_str()) else {
            return 0;
        };
        let in_system = self.system_account_name() == Some(own);
        let Some(request) = parse(subject, own, in_system, &self.server_id) else {
            return 0;
        };
        let Some(reply) = p.reply.clone() else {
            if request == Request::Server(ServerKind::Statsz) {
                // No reply subject: nats-server broadcasts on the STATSZ subject.
                self.statsz_now(now);
            }
            return 1;
        };
        if let Some(payload) = self.answer(now, from, request, &p.payload) {
            let response = Publish {
                subject: reply,
                reply: None,
                headers: None,
                payload,
            };
            self.deliver_in(now, SERVER_SLOT, account, &response);
        }
        1
    }

    fn answer(
        &mut self,
        now: Instant,
        from: Slot,
        request: Request,
        payload: &[u8],
    ) -> Option<Bytes> {
        let wall = self.wall_at(now);
        match request {
            Request::Server(ServerKind::Idz) => Some(to_bytes(&ServerId {
                name: &self.server_name,
                host: &self.opts.host,
                id: &self.server_id,
            })),
            Request::Server(ServerKind::Statsz) => {
                let options: PlainOptions = match decode(payload) {
                    Ok(o) => o,
                    Err(e) => return Some(self.bad_request(now, &e)),
                };
                if self.filtered_out(&options.filter) {
                    return None;
                }
                Some(self.statsz_msg(now))
            }
            Request::Server(ServerKind::Varz) => self.z_request(now, payload, |s, _: PlainOptions| {
                Answer::Data(build::varz(s, now, wall, &s.events.process))
            }),
            Request::Server(ServerKind::Jsz) => self.z_request(now, payload, |s, o| s.jsz(wall, o)),
            Request::Server(kind @ (ServerKind::Routez | ServerKind::Gatewayz | ServerKind::Leafz)) => {
                let path = match kind {
                    ServerKind::Routez => "/routez",
                    ServerKind::Gatewayz => "/gatewayz",
                    _ => "/leafz",
                };
                self.z_request(now, payload, |s, _: PlainOptions| {
                    Answer::Data(unclustered_doc(s, wall, path))
                })
            }
            Request::Server(ServerKind::Connz) => {
                self.z_request(now, payload, |s, o| s.connz(now, wall, o))
            }
            Request::Server(ServerKind::Subsz) => {
                self.z_request(now, payload, |s, o| s.subsz(wall, o))
            }
            Request::Server(ServerKind::Accountz) => {
                self.z_request(now, payload, |s, o| s.accountz(wall, o))
            }
            Request::Server(ServerKind::Healthz) => {
                self.z_request(now, payload, |_, _: PlainOptions| {
                    Answer::Data(Health {
                        status: "ok",
                        status_code: 200,
                    })
                })
            }
            Request::Account(acc, kind) => self.account_request(now, wall, &acc, kind, payload),
            Request::PingStatz => self.z_request(now, payload, |s, o: StatzOptions| {
                s.statz(wall, &o.accounts, o.include_unused)
            }),
            Request::UserInfo => {
                let info = self.user_info(now, from)?;
                Some(to_bytes(&self.envelope(now, Some(Some(info)), None)))
            }
        }
    }

    fn account_request(
        &mut self,
        now: Instant,
        wall: UnixNanos,
        acc: &str,
        kind: AccountKind,
        payload: &[u8],
    ) -> Option<Bytes> {
        match kind {
            AccountKind::Connz => self.z_request(now, payload, |s, o| {
                s.connz(
                    now,
                    wall,
                    ConnzOptions {
                        acc: acc.to_owned(),
                        ..o
                    },
                )
            }),
            AccountKind::Subsz => self.z_request(now, payload, |s, o| {
                s.subsz(
                    wall,
                    SubszOptions {
                        subscriptions: true,
                        account: acc.to_owned(),
                        ..o
                    },
                )
            }),
            AccountKind::Statz if acc == "PING" => None,
            AccountKind::Statz => self.z_request(now, payload, |s, o: StatzOptions| {
                s.statz(wall, &[acc.to_owned()], o.include_unused)
            }),
            AccountKind::Info => self.z_request(now, payload, |s, _: PlainOptions| {
                match build::account(s, wall, acc) {
                    Ok(info) => Answer::<AccountInfo>::Data(info),
                    Err(e) => Answer::Failed(e.to_string()),
                }
            }),
            AccountKind::Conns => self.conns(now, acc, payload),
            AccountKind::Jsz => self.z_request(now, payload, |s, o: JszOptions| s.account_jsz(wall, acc, o)),
            AccountKind::Leafz => self.z_request(now, payload, |s, _: PlainOptions| {
                Answer::Data(unclustered_doc(s, wall, "/leafz"))
            }),
        }
    }

    /// Decodes the options, applies the server filters, runs the builder
    /// and wraps its answer; `None` when no reply is due.
    fn z_request<O, T>(
        &mut self,
        now: Instant,
        payload: &[u8],
        build: impl FnOnce(&Self, O) -> Answer<T>,
    ) -> Option<Bytes>
    where
        O: DeserializeOwned + Default + Filtered,
        T: Serialize,
    {
        let options: O = match decode(payload) {
            Ok(o) => o,
            Err(e) => return Some(self.bad_request(now, &e)),
        };
        if self.filtered_out(options.filter()) {
            return None;
        }
        let response = match build(self, options) {
            Answer::Data(data) => self.envelope(now, Some(Some(data)), None),
            Answer::Failed(description) => self.envelope::<T>(
                now,
                Some(None),
                Some(ApiError {
                    code: 500,
                    description,
                }),
            ),
            Answer::Skip => return None,
        };
        Some(to_bytes(&response))
    }

    /// The 400 reply to a body that is not the options' JSON.
    fn bad_request(&mut self, now: Instant, e: &serde_json::Error) -> Bytes {
        let error = ApiError {
            code: 400,
            description: e.to_string(),
        };
        to_bytes(&self.envelope::<()>(now, None, Some(error)))
    }

    fn jsz(&self, wall: UnixNanos, o: JszOptions) -> Answer<Jsz> {
        let flag = |on: bool| if on { "1" } else { "" }.to_owned();
        let pairs = [
            ("acc", o.account),
            ("accounts", flag(o.accounts)),
            ("streams", flag(o.streams)),
            ("config", flag(o.config)),
            ("offset", positive(o.offset)),
            ("limit", positive(o.limit)),
        ];
        match query(&pairs).and_then(|q| build::jsz(self, wall, &q).map_err(|e| e.to_string())) {
            Ok(doc) => Answer::Data(doc),
            Err(e) => Answer::Failed(e),
        }
    }

    /// `$SYS.REQ.ACCOUNT.<acc>.JSZ`: the account's JetStream detail, with
    /// nats-server's errors when JetStream or the account is missing.
    fn account_jsz(&self, wall: UnixNanos, acc: &str, o: JszOptions) -> Answer<AccountDetail> {
        let Some(js) = self.jetstream() else {
            return Answer::Failed("jetstream not enabled".to_owned());
        };
        if !self.accounts.iter().any(|a| a.name == acc) {
            return Answer::Failed(format!("account \"{acc}\" not found"));
        }
        if !js.enabled_accounts().any(|a| a == acc) {
            return Answer::Failed(format!("account \"{acc}\" not jetstream enabled"));
        }
        let options = JszOptions { account: acc.to_owned(), accounts: true, ..o };
        match self.jsz(wall, options) {
            Answer::Data(doc) => match doc.account_details.into_iter().next() {
                Some(detail) => Answer::Data(detail),
                None => Answer::Failed(format!("account \"{acc}\" not jetstream enabled")),
            },
            Answer::Failed(e) => Answer::Failed(e),
            Answer::Skip => Answer::Skip,
        }
    }

    fn envelope<T>(
        &mut self,
        now: Instant,
        data: Option<Option<T>>,
        error: Option<ApiError>,
    ) -> ApiResponse<T> {
        ApiResponse {
            server: self.stamp(now),
            data,
            error,
        }
    }

    /// A system reply carrying `data`, stamped with the next sequence number.
    pub(crate) fn reply_data(&mut self, now: Instant, data: impl Serialize) -> Bytes {
        let response: ApiResponse<_> = self.envelope(now, Some(Some(data)), None);
        to_bytes(&response)
    }

    /// A system reply carrying `error`, stamped with the next sequence number.
    pub(crate) fn reply_error(&mut self, now: Instant, error: impl Serialize) -> Bytes {
        let response = ApiResponse::<(), _> {
            server: self.stamp(now),
            data: None,
            error: Some(error),
        };
        to_bytes(&response)
    }

    /// The `server` object; each reply takes the next sequence number.
    pub(super) fn stamp(&mut self, now: Instant) -> ServerStamp {
        self.system_seq += 1;
        ServerStamp {
            name: self.server_name.clone(),
            host: self.opts.host.clone(),
            id: self.server_id.clone(),
            ver: VERSION,
            jetstream: false,
            flags: 0,
            seq: self.system_seq,
            time: self.wall_at(now).to_rfc3339(),
        }
    }

    /// nats-server's filter: names and hosts match by substring unless
    /// `exact_match`. natrix has no cluster, tags or JetStream domain, so a
    /// request asking for any of them is not for this server.
    fn filtered_out(&self, f: &EventFilter) -> bool {
        let differs = |want: &str, have: &str| {
            !want.is_empty()
                && if f.exact_match {
                    want != have
                } else {
                    !have.contains(want)
                }
        };
        differs(&f.server_name, &self.server_name)
            || differs(&f.host, &self.opts.host)
            || differs(&f.cluster, "")
            || !f.tags.is_empty()
            || !f.domain.is_empty()
    }

    fn connz(&self, now: Instant, wall: UnixNanos, o: ConnzOptions) -> Answer<ConnzReply> {
        let closed = o.state == 1;
        if matches!(o.sort.as_str(), "stop" | "reason") && !closed {
            return Answer::Failed(format!(
                "sort by {} only valid on closed connections",
                o.sort
            ));
        }
        if !o.acc.is_empty() && !self.accounts.iter().any(|a| a.name == o.acc) {
            return Answer::Data(ConnzReply::Unknown(BlankConnz::new(wall, &o)));
        }
        let subs = match (o.subscriptions_detail, o.subscriptions) {
            (true, _) => "detail",
            (false, true) => "1",
            (false, false) => "",
        };
        let state = ["open", "closed", "any"]
            .get(usize::try_from(o.state).unwrap_or(0))
            .copied()
            .unwrap_or("open");
        let pairs = [
            ("sort", o.sort.clone()),
            ("subs", subs.to_owned()),
            ("offset", positive(o.offset)),
            ("limit", positive(o.limit)),
            ("state", state.to_owned()),
            ("acc", o.acc),
            ("auth", if o.auth { "1" } else { "" }.to_owned()),
        ];
        let result = query(&pairs)
            .and_then(|q| build::connz(self, now, wall, &q).map_err(|e| e.to_string()));
        match result {
            Ok(connz) => Answer::Data(ConnzReply::Known(connz)),
            Err(_) if !o.sort.is_empty() => {
                Answer::Failed(format!("invalid sorting option: {}", o.sort))
            }
            Err(e) => Answer::Failed(e),
        }
    }

    fn subsz(&self, wall: UnixNanos, o: SubszOptions) -> Answer<Subsz> {
        if !o.test.is_empty() && !is_valid_literal_subject(o.test.as_bytes()) {
            return Answer::Failed(format!(
                "invalid test subject, must be valid publish subject: {}",
                o.test
            ));
        }
        let pairs = [
            (
                "subs",
                if o.subscriptions {
                    "1".to_owned()
                } else {
                    String::new()
                },
            ),
            ("offset", positive(o.offset)),
            ("limit", positive(o.limit)),
            ("acc", o.account),
            ("test", o.test),
        ];
        match query(&pairs).and_then(|q| build::subsz(self, wall, &q).map_err(|e| e.to_string())) {
            Ok(subsz) => Answer::Data(subsz),
            Err(e) => Answer::Failed(e),
        }
    }

    fn accountz(&self, wall: UnixNanos, o: AccountzOptions) -> Answer<Accountz> {
        let acc = Some(o.account.as_str()).filter(|a| !a.is_empty());
        match build::accountz(self, wall, acc) {
            Ok(doc) => Answer::Data(doc),
            Err(e) => Answer::Failed(e.to_string()),
        }
    }

    /// Account statistics of `accounts` (every account when empty); only
    /// accounts with connections unless `unused`, and no reply when none is left.
    fn statz(&self, wall: UnixNanos, accounts: &[String], unused: bool) -> Answer<Accstatz> {
        let all = self.account_stats();
        let chosen: Vec<AccountStats> = if accounts.is_empty() {
            all.into_iter().filter(|s| unused || s.conns > 0).collect()
        } else {
            accounts
                .iter()
                .filter_map(|a| all.iter().find(|s| s.acc == *a))
                .filter(|s| unused || s.conns > 0)
                .cloned()
                .collect()
        };
        if chosen.is_empty() && !unused {
            return Answer::Skip;
        }
        Answer::Data(Accstatz {
            server_id: self.server_id.clone(),
            now: wall.to_rfc3339(),
            account_statz: chosen,
        })
    }

    /// `CONNS`: the account's connection counts as an event, only when it
    /// has clients here. A body naming another account is ignored.
    fn conns(&mut self, now: Instant, acc: &str, payload: &[u8]) -> Option<Bytes> {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct ConnsRequest {
            acc: Option<String>,
        }
        let request: ConnsRequest = decode(payload).ok()?;
        if request.acc.is_some_and(|a| a != acc) {
            return None;
        }
        let stat = self
            .account_stats()
            .into_iter()
            .find(|s| s.acc == acc && s.conns > 0)?;
        Some(self.conns_body(now, stat))
    }

    /// nats-server's account connections event for `stat`.
    pub(super) fn conns_body(&mut self, now: Instant, stat: AccountStats) -> Bytes {
        let event = AccountConns {
            kind: "io.nats.server.advisory.v1.account_connections",
            id: event_id(&mut self.rng),
            timestamp: self.wall_at(now).to_rfc3339(),
            server: self.stamp(now),
            stat,
        };
        to_bytes(&event)
    }

    /// Who the requester is: its user (a JWT user's public key), account,
    /// the account's and user's names, and how long its credentials last.
    fn user_info(&self, now: Instant, from: Slot) -> Option<UserInfo> {
        let c = self.client(from)?;
        let account = &self.accounts.get(c.account)?.name;
        let (user, user_name) = match (&c.jwt_user, &c.meta.user) {
            (Some((key, _)), Some(name)) if name != key => (key.clone(), name.clone()),
            (Some((key, _)), _) => (key.clone(), String::new()),
            (None, user) => (user.clone().unwrap_or_default(), String::new()),
        };
        let expires = c.auth_expires_at.map(|at| {
            u64::try_from(at.saturating_duration_since(now).as_nanos()).unwrap_or(u64::MAX)
        });
        Some(UserInfo {
            user,
            account: account.clone(),
            account_name: build::name_tag(self, account),
            user_name,
            permissions: c.permissions.as_deref().map(PermissionsJson::of),
            expires,
        })
    }
}

/// A 22-character event id, like nats-server's NUIDs.
pub(super) fn event_id(rng: &mut impl RngCore) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..22).map(|_| ALPHABET[(rng.next_u32() % 62) as usize] as char).collect()
}
