//! The `$JS.API.…` requests about streams and the account, answered as
//! nats-server answers them.

use bytes::Bytes;

use super::api::responses::ApiPaged;
use super::api::{self, kinds, ApiError};
use super::config::{self, StorageType, StreamConfig, JS_API_LEVEL};
use super::store::PurgeRequest;
use super::stream::Lookup;
use super::advisories::StreamAction;
use super::{headers, limits, JetStream, Reply, Stream};
use crate::time::UnixNanos;

/// The API's subject prefix.
pub(crate) const API_PREFIX: &str = "$JS.API.";

const NAMES_PAGE: usize = api::NAMES_LIMIT;
const LIST_PAGE: usize = api::LIST_LIMIT;
/// The most subject details one `STREAM.INFO` answer holds
/// (nats-server's `JSMaxSubjectDetails`).
const SUBJECTS_PAGE: usize = 100_000;

/// A parsed API subject.
enum Request<'a> {
    Info,
    Create(&'a str),
    Update(&'a str),
    StreamInfo(&'a str),
    Delete(&'a str),
    Names,
    List,
    Purge(&'a str),
    MsgGet(&'a str),
    MsgDelete(&'a str),
    DirectGet(&'a str, Option<&'a str>),
    AccountPurge(&'a str),
}

impl Request<'_> {
    /// The response's `type`.
    fn kind(&self) -> &'static str {
        match self {
            Request::Info => kinds::ACCOUNT_INFO,
            Request::Create(_) => kinds::STREAM_CREATE,
            Request::Update(_) => kinds::STREAM_UPDATE,
            Request::StreamInfo(_) => kinds::STREAM_INFO,
            Request::Delete(_) => kinds::STREAM_DELETE,
            Request::Names => kinds::STREAM_NAMES,
            Request::List => kinds::STREAM_LIST,
            Request::Purge(_) => kinds::STREAM_PURGE,
            Request::MsgGet(_) | Request::DirectGet(..) => kinds::STREAM_MSG_GET,
            Request::MsgDelete(_) => kinds::STREAM_MSG_DELETE,
            Request::AccountPurge(_) => kinds::ACCOUNT_PURGE,
        }
    }
}

fn parse(subject: &str) -> Option<Request<'_>> {
    let rest = subject.strip_prefix(API_PREFIX)?;
    if rest == "INFO" {
        return Some(Request::Info);
    }
    if let Some(rest) = rest.strip_prefix("DIRECT.GET.") {
        return Some(match rest.split_once('.') {
            Some((stream, subject)) => Request::DirectGet(stream, Some(subject)),
            None => Request::DirectGet(rest, None),
        });
    }
    if let Some(account) = rest.strip_prefix("ACCOUNT.PURGE.") {
        return (!account.is_empty() && !account.contains('.')).then_some(Request::AccountPurge(account));
    }
    let rest = rest.strip_prefix("STREAM.")?;
    let one = |s: &'static str| -> Option<&str> {
        let name = rest.strip_prefix(s)?;
        (!name.is_empty() && !name.contains('.')).then_some(name)
    };
    match rest {
        "NAMES" => return Some(Request::Names),
        "LIST" => return Some(Request::List),
        _ => {}
    }
    if let Some(n) = one("CREATE.") {
        return Some(Request::Create(n));
    }
    if let Some(n) = one("UPDATE.") {
        return Some(Request::Update(n));
    }
    if let Some(n) = one("INFO.") {
        return Some(Request::StreamInfo(n));
    }
    if let Some(n) = one("DELETE.") {
        return Some(Request::Delete(n));
    }
    if let Some(n) = one("PURGE.") {
        return Some(Request::Purge(n));
    }
    if let Some(n) = one("MSG.GET.") {
        return Some(Request::MsgGet(n));
    }
    one("MSG.DELETE.").map(Request::MsgDelete)
}

/// True when the server answers `subject` as a JetStream API request.
pub fn is_api(subject: &[u8]) -> bool {
    subject.starts_with(API_PREFIX.as_bytes())
}

impl JetStream {
    /// `subject` as an API subject of this server: `$JS.API.…` itself, or
    /// `$JS.<domain>.API.…` for the server's domain, which clients use to
    /// reach a domain's JetStream and nats-server answers as `$JS.API.…`.
    pub fn api_subject<'a>(&self, subject: &'a [u8]) -> Option<std::borrow::Cow<'a, [u8]>> {
        if is_api(subject) {
            return Some(std::borrow::Cow::Borrowed(subject));
        }
        let domain = self.limits.domain.as_deref().filter(|d| !d.is_empty())?;
        let rest = subject.strip_prefix(b"$JS.")?.strip_prefix(domain.as_bytes())?.strip_prefix(b".API.")?;
        let mut local = API_PREFIX.as_bytes().to_vec();
        local.extend_from_slice(rest);
        Some(std::borrow::Cow::Owned(local))
    }
}

impl JetStream {
    /// An API request published in `account`. Returns true when the server
    /// listens on the subject (so the requester gets no "no responders").
    pub fn handle_api(&mut self, account: &str, subject: &[u8], reply: Option<&Bytes>, payload: &Bytes, wall: UnixNanos) -> bool {
        if let Some(request) = std::str::from_utf8(subject).ok().and_then(super::consumer::api::parse) {
            if !self.is_enabled(account) {
                return self.handle_api_disabled(account, reply, super::consumer::api::kinds::INFO);
            }
            return self.handle_consumer_api(account, subject, request, reply, payload, wall);
        }
        let Some(request) = std::str::from_utf8(subject).ok().and_then(parse) else {
            return false;
        };
        if let Request::DirectGet(stream, _) = request {
            // nats-server subscribes to a stream's direct get subjects only
            // while the stream exists with `allow_direct`: otherwise the
            // requester hears "no responders", not a 404.
            let listening = self.is_enabled(account) && self.direct_target(account, stream).is_some();
            if !listening {
                return false;
            }
        }
        let Some(reply) = reply.cloned() else { return true };
        if let Request::AccountPurge(target) = request {
            // The system account's alone; others get no answer, as from nats-server.
            if self.system_account.as_deref() == Some(account) {
                self.purge_account(account, target, reply);
                self.count_api(account);
            }
            return true;
        }
        if !self.is_enabled(account) {
            self.count_api(account);
            self.count_api_error(account);
            let body = api::error_response(request.kind(), &ApiError::not_enabled_for_account());
            let audit = self.audit(account, subject, payload, &body, wall);
            self.ready.push_back(Reply { account: account.to_owned(), subject: reply, headers: None, payload: body.into() });
            self.ready.extend(audit);
            return true;
        }
        if let Request::DirectGet(stream, subject) = request {
            self.count_api(account);
            self.direct_get(account, stream, subject, reply, payload);
            return true;
        }
        let kind = request.kind();
        // Like nats-server, a request is counted once answered: the account
        // info a request returns does not count that request.
        let (body, waits) = match self.answer(account, request, payload, wall) {
            Ok(answer) => answer,
            Err(e) => {
                self.count_api_error(account);
                (api::error_response(kind, &e), false)
            }
        };
        self.count_api(account);
        let audit = self.audit(account, subject, payload, &body, wall);
        let r = Reply { account: account.to_owned(), subject: reply, headers: None, payload: body.into() };
        // Advisories go out just before the answer, the audit just after,
        // and they wait with it.
        let advisories = std::mem::take(&mut self.advisories);
        self.confirms_consumers |= waits;
        for reply in advisories.into_iter().chain([r]).chain(audit) {
            if waits {
                self.unsynced.push((None, reply));
            } else {
                self.queue_after_writes(reply);
            }
        }
        true
    }

    /// The body of a successful answer, and whether it must wait for a sync.
    fn answer(&mut self, account: &str, request: Request<'_>, payload: &Bytes, wall: UnixNanos) -> Result<(Vec<u8>, bool), ApiError> {
        match request {
            Request::Info => Ok((self.account_info(account), false)),
            Request::Create(name) => self.create(account, name, payload, wall),
            Request::Update(name) => self.update(account, name, payload, wall),
            Request::StreamInfo(name) => {
                let req = api::requests::StreamInfoRequest::parse(payload)?;
                let stream = self.stream(account, name)?;
                let mut i = info(stream, &req, wall, true);
                i.state.consumer_count = self.consumer_count(account, name);
                (i.mirror, i.sources) = self.upstream_info(account, name, wall);
                if let Some(c) = i.cluster.as_mut() {
                    c.leader.clone_from(&self.server_name);
                }
                let paged = subjects_page(&mut i, &req);
                Ok((api::responses::stream_info_response(&i, paged), false))
            }
            Request::Delete(name) => {
                api::requests::check_empty_request(payload)?;
                let mut stream = self.take_stream(account, name)?;
                self.remove_stream_consumers(account, name, Some(wall));
                if let Some(a) = self.accounts.get_mut(account) {
                    a.upstreams.remove(name);
                }
                let file = stream.config().storage == StorageType::File;
                stream.store_mut().delete().map_err(ApiError::stream_delete)?;
                self.layout += 1;
                self.advise_stream(account, name, StreamAction::Delete, wall);
                // The answer waits for the removal's syncs (asked for by
                // the store's delete): a crash must not bring the stream back.
                Ok((api::success_response(kinds::STREAM_DELETE), file))
            }
            Request::Names => self.names(account, payload),
            Request::List => self.list(account, payload, wall),
            Request::Purge(name) => self.purge(account, name, payload),
            Request::MsgGet(name) => {
                let req = api::requests::MsgGetRequest::parse(payload)?;
                let stream = self.stream_mut(account, name)?;
                match stream.get(&lookup(&req)).map_err(ApiError::stream_store_failed)? {
                    Some(m) => Ok((api::responses::stream_msg_get_response(&msg_json(m)), false)),
                    None => Err(ApiError::no_message_found()),
                }
            }
            Request::MsgDelete(name) => self.msg_delete(account, name, payload),
            Request::DirectGet(..) => unreachable!("answered by direct_get"),
            Request::AccountPurge(_) => unreachable!("answered by purge_account"),
        }
    }

    /// Every stream of `account` as monitoring shows it, by name.
    pub fn stream_infos(&self, account: &str, wall: UnixNanos) -> Vec<api::responses::StreamInfo> {
        let Some(acc) = self.accounts.get(account) else { return Vec::new() };
        acc.streams
            .values()
            .map(|s| {
                let mut i = info(s, &Default::default(), wall, true);
                if let Some(c) = i.cluster.as_mut() {
                    c.leader.clone_from(&self.server_name);
                }
                (i.mirror, i.sources) = self.upstream_info(account, s.name(), wall);
                i
            })
            .collect()
    }

    /// `$JS.API.ACCOUNT.PURGE.<target>` from the system account: every
    /// stream of `target` is deleted, files and all.
    fn purge_account(&mut self, system: &str, target: &str, reply: Bytes) {
        let streams = self.accounts.get_mut(target).map(|a| std::mem::take(&mut a.streams)).unwrap_or_default();
        if let Some(a) = self.accounts.get_mut(target) {
            a.upstreams.clear();
        }
        let known = self.accounts.contains_key(target);
        self.log(
            crate::log::Level::Info,
            format!("Purge request for account {target} (streams: {}, hasAccount: {known})", streams.len()),
        );
        let mut failed = None;
        for name in streams.keys() {
            self.remove_stream_consumers(target, name, None);
        }
        for mut stream in streams.into_values() {
            match stream.store_mut().delete() {
                Ok(()) => {
                    if stream.config().storage == StorageType::File {
                        let _ = stream.store_mut().sync();
                    }
                }
                Err(e) => {
                    failed.get_or_insert(ApiError::stream_delete(e));
                    continue;
                }
            }
            self.layout += 1;
        }
        let body = match failed {
            Some(e) => {
                self.count_api_error(system);
                api::error_response(kinds::ACCOUNT_PURGE, &e)
            }
            None => api::to_go_json(&serde_json::json!({"type": kinds::ACCOUNT_PURGE, "initiated": true})),
        };
        self.queue_after_writes(Reply { account: system.to_owned(), subject: reply, headers: None, payload: body.into() });
    }

    fn handle_api_disabled(&mut self, account: &str, reply: Option<&Bytes>, kind: &str) -> bool {
        if let Some(reply) = reply {
            self.count_api(account);
            self.count_api_error(account);
            let body = api::error_response(kind, &ApiError::not_enabled_for_account());
            self.ready.push_back(Reply { account: account.to_owned(), subject: reply.clone(), headers: None, payload: body.into() });
        }
        true
    }

    pub(crate) fn stream(&self, account: &str, name: &str) -> Result<&Stream, ApiError> {
        self.accounts.get(account).and_then(|a| a.streams.get(name)).ok_or_else(ApiError::stream_not_found)
    }

    fn stream_mut(&mut self, account: &str, name: &str) -> Result<&mut Stream, ApiError> {
        self.accounts.get_mut(account).and_then(|a| a.streams.get_mut(name)).ok_or_else(ApiError::stream_not_found)
    }

    fn take_stream(&mut self, account: &str, name: &str) -> Result<Stream, ApiError> {
        self.accounts.get_mut(account).and_then(|a| a.streams.remove(name)).ok_or_else(ApiError::stream_not_found)
    }

    /// A create or update body. nats-server compares the body's name with
    /// the subject's as it is: an empty body or an empty name is a mismatch.
    fn parse_config(name: &str, payload: &[u8]) -> Result<StreamConfig, ApiError> {
        let cfg = api::requests::StreamConfigRequest::parse(payload)?.config;
        if cfg.name != name {
            return Err(ApiError::stream_mismatch());
        }
        Ok(cfg)
    }

    fn create(&mut self, account: &str, name: &str, payload: &[u8], wall: UnixNanos) -> Result<(Vec<u8>, bool), ApiError> {
        let cfg = Self::parse_config(name, payload)?;
        let lookup = |n: &str| self.stream(account, n).ok().map(|s| s.config().clone());
        let mut cfg = config::check_stream_config_with(cfg, &self.check_limits(account), &lookup)?;
        cfg.set_static_metadata();
        self.accounts.entry(account.to_owned()).or_default();
        let acc = &self.accounts[account];
        limits::check_create(&cfg, &acc.limits, acc.footprints(), &self.budget(), self.all_footprints())?;
        let acc = self.accounts.get_mut(account).expect("made above");
        if let Some(existing) = acc.streams.get(name) {
            // The same configuration again is not an error: the stream is returned.
            let mut asked = cfg.clone();
            asked.copy_metadata_from(existing.config());
            if asked != *existing.config() {
                return Err(ApiError::stream_name_exist());
            }
            let existing = &acc.streams[name];
            return Ok((api::responses::stream_create_response(&info(existing, &Default::default(), wall, false)), false));
        }
        if acc.streams.values().any(|s| config::subjects_overlap(&s.config().subjects, &cfg.subjects)) {
            return Err(ApiError::stream_subject_overlap());
        }
        let store = self.make_store(account, &cfg, wall)?;
        let file = cfg.storage == StorageType::File;
        let stream = Stream::new(cfg, wall, store);
        let mut i = info(&stream, &Default::default(), wall, false);
        self.accounts.get_mut(account).expect("made above").streams.insert(name.to_owned(), stream);
        self.attach_upstreams(account, name, false);
        (i.mirror, i.sources) = self.upstream_info(account, name, wall);
        if let Some(m) = i.mirror.as_mut() {
            // nats-server answers before its mirror consumer is set up,
            // which is when the mirror's filter is shown.
            m.filter_subject.clear();
        }
        let body = api::responses::stream_create_response(&i);
        if file {
            self.mark_dirty((account.to_owned(), name.to_owned()));
        }
        self.layout += 1;
        self.advise_stream(account, name, StreamAction::Create, wall);
        Ok((body, file))
    }

    fn update(&mut self, account: &str, name: &str, payload: &[u8], wall: UnixNanos) -> Result<(Vec<u8>, bool), ApiError> {
        let cfg = Self::parse_config(name, payload)?;
        let check = self.check_limits(account);
        let cfg = {
            let acc = self.accounts.get(account).ok_or_else(ApiError::stream_not_found)?;
            let old = acc.streams.get(name).ok_or_else(ApiError::stream_not_found)?.config();
            let lookup = |n: &str| acc.streams.get(n).map(|s| s.config().clone());
            let mut cfg = config::check_stream_update_with(old, cfg, &check, &lookup)?;
                cfg.set_static_metadata();
            limits::check_update(old, &cfg, &acc.limits, acc.footprints(), &self.budget(), self.all_footprints())?;
            let violators = limit_violators(old, &cfg, acc.consumers.get(name));
            if !violators.is_empty() {
                let text = format!("change to limits violates consumers: {}", violators.join(", "));
                return Err(ApiError::stream_update(text));
            }
            if acc.streams.iter().any(|(n, s)| n != name && config::subjects_overlap(&s.config().subjects, &cfg.subjects)) {
                return Err(ApiError::stream_subject_overlap());
            }
            cfg
        };
        let stream = self.stream_mut(account, name)?;
        stream.update(cfg, wall).map_err(ApiError::stream_update)?;
        let file = stream.config().storage == StorageType::File;
        if file {
            Self::rewrite_meta(stream)?;
        }
        let mut i = info(stream, &Default::default(), wall, false);
        self.attach_upstreams(account, name, false);
        (i.mirror, i.sources) = self.upstream_info(account, name, wall);
        let body = api::responses::stream_update_response(&i);
        if file {
            self.mark_dirty((account.to_owned(), name.to_owned()));
        }
        self.layout += 1;
        self.advise_stream(account, name, StreamAction::Modify, wall);
        Ok((body, file))
    }

    fn names(&self, account: &str, payload: &[u8]) -> Result<(Vec<u8>, bool), ApiError> {
        let req = api::requests::StreamNamesRequest::parse(payload)?;
        let streams = self.matching_streams(account, &req.subject);
        let offset = usize::try_from(req.offset).unwrap_or(usize::MAX);
        let paged = ApiPaged { total: streams.len(), offset, limit: NAMES_PAGE };
        let page: Vec<String> = streams.iter().skip(offset).take(NAMES_PAGE).map(|s| s.name().to_owned()).collect();
        Ok((api::responses::stream_names_response(&page, paged), false))
    }

    fn list(&self, account: &str, payload: &[u8], wall: UnixNanos) -> Result<(Vec<u8>, bool), ApiError> {
        let req = api::requests::StreamListRequest::parse(payload)?;
        let streams = self.matching_streams(account, &req.subject);
        let offset = usize::try_from(req.offset).unwrap_or(usize::MAX);
        let paged = ApiPaged { total: streams.len(), offset, limit: LIST_PAGE };
        let page: Vec<api::responses::StreamInfo> = streams
            .iter()
            .skip(offset)
            .take(LIST_PAGE)
            .map(|s| {
                let mut i = info(s, &Default::default(), wall, false);
                i.config = s.config().clone();
                (i.mirror, i.sources) = self.upstream_info(account, s.name(), wall);
                i
            })
            .collect();
        Ok((api::responses::stream_list_response(&page, &[], paged), false))
    }

    /// The account's streams, by name, those whose subjects match `subject` if given.
    fn matching_streams(&self, account: &str, subject: &str) -> Vec<&Stream> {
        let subject = Some(subject).filter(|s| !s.is_empty());
        let Some(acc) = self.accounts.get(account) else { return Vec::new() };
        acc.streams
            .values()
            .filter(|s| {
                subject.is_none_or(|f| {
                    s.config().subjects.iter().any(|x| config::subjects_overlap(std::slice::from_ref(x), &[f.to_owned()]))
                })
            })
            .collect()
    }

    fn purge(&mut self, account: &str, name: &str, payload: &[u8]) -> Result<(Vec<u8>, bool), ApiError> {
        let req = api::requests::StreamPurgeRequest::parse(payload)?.unwrap_or_default();
        let stream = self.stream_mut(account, name)?;
        if stream.config().sealed {
            return Err(ApiError::stream_sealed());
        }
        if stream.config().deny_purge {
            return Err(ApiError::stream_purge_not_allowed());
        }
        let request = PurgeRequest {
            filter: Some(req.filter).filter(|f| !f.is_empty() && f != ">").map(Bytes::from),
            below_seq: Some(req.seq).filter(|&s| s > 0),
            keep: Some(req.keep).filter(|&k| k > 0),
        };
        let purged = stream.store_mut().purge(&request).map_err(ApiError::stream_purge_failed)?;
        let file = stream.config().storage == StorageType::File;
        if file {
            self.mark_dirty((account.to_owned(), name.to_owned()));
        }
        Ok((api::responses::stream_purge_response(purged), file))
    }

    fn msg_delete(&mut self, account: &str, name: &str, payload: &[u8]) -> Result<(Vec<u8>, bool), ApiError> {
        let req = api::requests::MsgDeleteRequest::parse(payload)?;
        let stream = self.stream_mut(account, name)?;
        if stream.config().sealed {
            return Err(ApiError::stream_sealed());
        }
        if stream.config().deny_delete {
            return Err(ApiError::stream_msg_delete_not_allowed());
        }
        let removed = stream.store_mut().remove(req.seq, !req.no_erase).map_err(ApiError::stream_msg_delete_failed)?;
        if !removed {
            return Err(ApiError::sequence_not_found(req.seq));
        }
        let file = stream.config().storage == StorageType::File;
        if file {
            self.mark_dirty((account.to_owned(), name.to_owned()));
        }
        Ok((api::success_response(kinds::STREAM_MSG_DELETE), file))
    }

    fn account_info(&self, account: &str) -> Vec<u8> {
        let (memory, storage, streams) = self.usage(Some(account));
        let acc = self.accounts.get(account);
        let reserved = |storage| acc.map_or(0, |a| limits::reserved(a.footprints(), storage, None)) as u64;
        api::responses::account_info_response(&api::responses::AccountInfo {
            memory,
            storage,
            reserved_memory: reserved(StorageType::Memory),
            reserved_storage: reserved(StorageType::File),
            streams: streams as u64,
            limits: acc.map(|a| a.limits.clone()).unwrap_or_default(),
            domain: self.limits.domain.clone().unwrap_or_default(),
            api: api::responses::ApiStats {
                level: JS_API_LEVEL,
                total: acc.map_or(0, |a| a.api_total),
                errors: acc.map_or(0, |a| a.api_errors),
            },
            ..Default::default()
        })
    }

    /// The stream answering direct gets for `stream`: itself with
    /// `allow_direct`, else a mirror of it with `mirror_direct` (nats-server
    /// subscribes such a mirror to its origin's direct get subjects).
    fn direct_target(&self, account: &str, stream: &str) -> Option<String> {
        let acc = self.accounts.get(account)?;
        if acc.streams.get(stream).is_some_and(|s| s.config().allow_direct) {
            return Some(stream.to_owned());
        }
        acc.streams
            .values()
            .find(|s| s.config().mirror_direct && s.config().mirror.as_ref().is_some_and(|m| m.name == stream && m.external.is_none()))
            .map(|s| s.name().to_owned())
    }

    /// `$JS.API.DIRECT.GET.<stream>[.<subject>]`: the message itself, with
    /// headers naming it, or a status.
    fn direct_get(&mut self, account: &str, stream: &str, subject: Option<&str>, reply: Bytes, payload: &Bytes) {
        let answer = |status: (u16, &str)| (Some(headers::block(Some(status), &[])), Bytes::new());
        let target = self.direct_target(account, stream).unwrap_or_else(|| stream.to_owned());
        let (hdrs, body) = match self.stream_mut(account, &target) {
            Err(_) => answer((404, "Message Not Found")),
            Ok(s) => {
                let how = match (subject, payload.is_empty()) {
                    (Some(subj), true) => Ok(Lookup::LastBySubject(Bytes::copy_from_slice(subj.as_bytes()))),
                    (Some(_), false) => Err(()),
                    (None, _) => api::requests::MsgGetRequest::parse(payload).map(|r| lookup(&r)).map_err(|_| ()),
                };
                match how {
                    Err(()) => answer((408, "Malformed Request")),
                    Ok(how) => match s.get(&how) {
                        Ok(Some(m)) => {
                            let seq = m.seq.to_string();
                            let ts = m.time.to_rfc3339();
                            let extra: [(&[u8], &[u8]); 4] = [
                                (b"Nats-Stream", target.as_bytes()),
                                (b"Nats-Subject", &m.subject),
                                (b"Nats-Sequence", seq.as_bytes()),
                                (b"Nats-Time-Stamp", ts.as_bytes()),
                            ];
                            (Some(headers::append(m.headers.as_deref(), &extra)), m.payload)
                        }
                        _ => answer((404, "Message Not Found")),
                    },
                }
            }
        };
        self.queue_after_writes(Reply { account: account.to_owned(), subject: reply, headers: hdrs, payload: body });
    }
}

/// Pages the subject details of a `STREAM.INFO` answer as nats-server
/// does: when any subject matched, the response names the total, the
/// offset and the page size, and holds the page from the offset on (in
/// subject order).
fn subjects_page(i: &mut api::responses::StreamInfo, req: &api::requests::StreamInfoRequest) -> ApiPaged {
    let total = i.state.subjects.len();
    if total == 0 {
        return ApiPaged::default();
    }
    let offset = usize::try_from(req.offset).unwrap_or(0).min(total);
    if offset > 0 || total > SUBJECTS_PAGE {
        let all = std::mem::take(&mut i.state.subjects);
        i.state.subjects = all.into_iter().skip(offset).take(SUBJECTS_PAGE).collect();
    }
    ApiPaged { total, offset, limit: SUBJECTS_PAGE }
}

/// How a `MSG.GET` request looks its message up.
fn lookup(req: &api::requests::MsgGetRequest) -> Lookup {
    if !req.last_by_subj.is_empty() {
        Lookup::LastBySubject(Bytes::copy_from_slice(req.last_by_subj.as_bytes()))
    } else if !req.next_by_subj.is_empty() {
        Lookup::NextBySubject(Bytes::copy_from_slice(req.next_by_subj.as_bytes()), req.seq)
    } else {
        Lookup::Seq(req.seq)
    }
}

/// A stored message as `MSG.GET` returns it.
fn msg_json(m: super::store::StoredMsg) -> api::responses::StoredMsgJson {
    api::responses::StoredMsgJson {
        subject: String::from_utf8_lossy(&m.subject).into_owned(),
        seq: m.seq,
        hdrs: m.headers.map(|h| h.to_vec()).unwrap_or_default(),
        data: m.payload.to_vec(),
        time: m.time,
    }
}

/// A stream's info, as `STREAM.INFO` and the create/update responses give
/// it (only `STREAM.INFO` names the server as the stream's leader).
fn info(stream: &Stream, req: &api::requests::StreamInfoRequest, wall: UnixNanos, leader: bool) -> api::responses::StreamInfo {
    let s = stream.store().state();
    let subjects = Some(req.subjects_filter.as_str())
        .filter(|f| !f.is_empty())
        .map(|f| stream.store().subject_counts(f.as_bytes()))
        .unwrap_or_default();
    let state = api::responses::StreamStateJson {
        messages: s.msgs,
        bytes: s.bytes,
        // A stream that never held a message, with no configured first
        // sequence, reports 0 as nats-server does; after that, the store's.
        first_seq: if s.last_seq == 0 && stream.config().first_seq == 0 { 0 } else { s.first_seq },
        first_ts: (s.msgs > 0).then_some(s.first_time),
        last_seq: s.last_seq,
        last_ts: (s.last_seq > 0 && s.last_time.0 != 0).then_some(s.last_time),
        num_subjects: s.num_subjects,
        subjects: subjects.into_iter().map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v)).collect(),
        num_deleted: s.num_deleted,
        deleted: if req.deleted_details { stream.store().deleted() } else { Vec::new() },
        lost: s.lost.map(|l| api::responses::LostStreamData { msgs: l.msgs, bytes: l.bytes }),
        consumer_count: 0,
    };
    api::responses::StreamInfo {
        config: stream.config().with_dynamic_metadata(crate::server::VERSION),
        created: stream.created(),
        state,
        domain: String::new(),
        cluster: leader.then(api::responses::ClusterInfoJson::default),
        mirror: None,
        sources: Vec::new(),
        ts: wall,
    }
}

/// The consumers (by name) whose own settings exceed consumer limits that
/// a stream update changes: nats-server refuses such an update rather than
/// leave them over the limits.
fn limit_violators<'a>(
    old: &StreamConfig,
    new: &StreamConfig,
    consumers: Option<&'a crate::jetstream::consumer::Consumers>,
) -> Vec<&'a str> {
    let (old, new) = (&old.consumer_limits, &new.consumer_limits);
    let inactive = (new.inactive_threshold > 0 && new.inactive_threshold != old.inactive_threshold)
        .then_some(new.inactive_threshold);
    let pending =
        (new.max_ack_pending > 0 && new.max_ack_pending != old.max_ack_pending).then_some(new.max_ack_pending);
    if inactive.is_none() && pending.is_none() {
        return Vec::new();
    }
    consumers
        .into_iter()
        .flat_map(|m| m.iter())
        .filter(|(_, c)| {
            let cfg = c.config();
            inactive.is_some_and(|max| cfg.inactive_threshold > max) || pending.is_some_and(|max| cfg.max_ack_pending > max)
        })
        .map(|(name, _)| name.as_str())
        .collect()
}
