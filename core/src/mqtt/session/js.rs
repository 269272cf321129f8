//! The session's JetStream side: the MQTT streams, the stored session,
//! QoS 1 consumers, retained-message fetches, and the API replies.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::super::packet::{self, rc};
use super::super::{nats::Msg, topic};
use super::super::{
    MSGS_PREFIX, MSGS_STREAM, QOS2IN_PREFIX, QOS2IN_STREAM, RMSGS_PREFIX, RMSGS_STREAM, SESS_PREFIX, SESS_STREAM, SUB_PREFIX,
    TAKEOVER_PREFIX,
};
use super::{random_token, reserved, ConsumerRec, MqttSession, Outbound, Phase, Request, SidKind, Sub};
use crate::close::CloseReason;
use crate::time::Instant;

impl MqttSession {
    pub(super) fn create_streams(&mut self) {
        self.phase = Phase::Streams;
        // A session of the same client id elsewhere closes (MQTT-3.1.4-2);
        // published before this one listens, so it does not hear itself.
        let takeover = format!("{TAKEOVER_PREFIX}{}", self.id_hash);
        let _ = write!(self.to_server, "PUB {takeover} 0\r\n\r\n");
        self.add_sid(&takeover, SidKind::Takeover);
        let streams = [
            json!({"name": SESS_STREAM, "subjects": [format!("{SESS_PREFIX}>")], "storage": "file",
                   "retention": "limits", "max_msgs_per_subject": 1, "num_replicas": 1}),
            json!({"name": MSGS_STREAM, "subjects": [format!("{MSGS_PREFIX}>")], "storage": "file",
                   "retention": "interest", "num_replicas": 1}),
            json!({"name": RMSGS_STREAM, "subjects": [format!("{RMSGS_PREFIX}>")], "storage": "file",
                   "retention": "limits", "max_msgs_per_subject": 1, "num_replicas": 1}),
            json!({"name": QOS2IN_STREAM, "subjects": [format!("{QOS2IN_PREFIX}>")], "storage": "file",
                   "retention": "limits", "discard": "new", "max_msgs_per_subject": 1,
                   "discard_new_per_subject": true, "num_replicas": 1}),
        ];
        self.streams_pending = streams.len();
        for cfg in streams {
            let name = cfg["name"].as_str().unwrap_or_default().to_owned();
            let subject = format!("{}.STREAM.CREATE.{name}", self.setup.js_api);
            self.request(&subject, cfg.to_string().as_bytes(), Request::StreamCreate);
        }
    }

    pub(super) fn load_session(&mut self) {
        self.phase = Phase::Loading;
        let subject = format!("{}.STREAM.MSG.GET.{SESS_STREAM}", self.setup.js_api);
        let body = json!({"last_by_subj": format!("{SESS_PREFIX}{}", self.id_hash)});
        self.request(&subject, body.to_string().as_bytes(), Request::SessionLoad);
    }

    /// The stored session arrived (or none was stored).
    pub(super) fn session_loaded(&mut self, stored: Option<Value>) {
        let clean = self.connect.as_ref().is_some_and(|c| c.clean);
        match stored {
            Some(record) if !clean => {
                self.session_present = true;
                self.restore(&record);
            }
            Some(record) => {
                // A clean session starts afresh: the old one's consumers go.
                for cons in record["cons"].as_object().into_iter().flat_map(|m| m.values()) {
                    if let Some(name) = cons["config"]["durable_name"].as_str() {
                        self.delete_consumer(name);
                    }
                }
                let subject = format!("{}.STREAM.PURGE.{SESS_STREAM}", self.setup.js_api);
                let body = json!({"filter": format!("{SESS_PREFIX}{}", self.id_hash)});
                self.request(&subject, body.to_string().as_bytes(), Request::Ignored);
            }
            None => {}
        }
        packet::connack(&mut self.to_client, self.session_present, rc::ACCEPTED);
        self.phase = Phase::Connected;
        if !clean {
            self.save_session();
        }
    }

    pub(super) fn restore(&mut self, record: &Value) {
        let Some(subs) = record["subs"].as_object() else { return };
        for (subject, qos) in subs {
            let qos = qos.as_u64().unwrap_or(0).min(2) as u8;
            let sids = self.subscribe_plain(subject);
            let consumer = match record["cons"].get(subject) {
                Some(cons) if qos > 0 => {
                    let config = cons.clone();
                    let deliver = config["config"]["deliver_subject"].as_str().unwrap_or_default().to_owned();
                    let name = config["config"]["durable_name"].as_str().map(str::to_owned);
                    let deliver_sid = self.add_sid(&deliver, SidKind::Consumer { subject: subject.clone(), reserved: reserved(subject) });
                    // Re-creating a durable with its own config is a no-op
                    // when it exists, and brings it back when it does not.
                    self.create_consumer(subject, &config, false);
                    Some(ConsumerRec { name, deliver_sid, config })
                }
                _ => None,
            };
            self.subs.insert(subject.clone(), Sub { qos, sids, consumer });
        }
    }

    pub(super) fn save_session(&mut self) {
        self.save_session_for(Request::Ignored);
    }

    /// Stores the session; `request` is what its acknowledgement is for.
    pub(super) fn save_session_for(&mut self, request: Request) {
        let mut subs = serde_json::Map::new();
        let mut cons = serde_json::Map::new();
        for (subject, sub) in &self.subs {
            subs.insert(subject.clone(), json!(sub.qos));
            if let Some(c) = &sub.consumer {
                cons.insert(subject.clone(), c.config.clone());
            }
        }
        let record = json!({"origin": self.setup.server_name, "id": self.client_id, "subs": subs, "cons": cons});
        let subject = format!("{SESS_PREFIX}{}", self.id_hash);
        self.request(&subject, record.to_string().as_bytes(), request);
    }

    pub(super) fn add_consumer(&mut self, subject: &str) {
        let deliver = format!("{SUB_PREFIX}{}", random_token(&mut self.rng, 22));
        let durable = self.connect.as_ref().is_some_and(|c| !c.clean);
        let mut config = json!({
            "deliver_subject": deliver,
            "ack_policy": "explicit",
            "deliver_policy": "new",
            "filter_subject": format!("{MSGS_PREFIX}{subject}"),
            "ack_wait": u64::try_from(self.setup.ack_wait.as_nanos()).unwrap_or(u64::MAX),
            "max_ack_pending": self.setup.max_ack_pending,
        });
        if self.setup.consumer_memory_storage {
            config["mem_storage"] = json!(true);
        }
        let name = durable.then(|| format!("{}_{}", self.id_hash, random_token(&mut self.rng, 22)));
        if let Some(n) = &name {
            config["durable_name"] = json!(n);
        }
        let body = json!({"stream_name": MSGS_STREAM, "config": config});
        let deliver_sid = self.add_sid(&deliver, SidKind::Consumer { subject: subject.to_owned(), reserved: reserved(subject) });
        self.create_consumer(subject, &body, true);
        if let Some(sub) = self.subs.get_mut(subject) {
            sub.consumer = Some(ConsumerRec { name, deliver_sid, config: body });
        }
    }

    pub(super) fn create_consumer(&mut self, subject: &str, body: &Value, blocking: bool) {
        let api = match body["config"]["durable_name"].as_str() {
            Some(name) => format!("{}.CONSUMER.CREATE.{MSGS_STREAM}.{name}", self.setup.js_api),
            None => format!("{}.CONSUMER.CREATE.{MSGS_STREAM}", self.setup.js_api),
        };
        let request = if blocking { Request::ConsumerCreate { subject: subject.to_owned() } } else { Request::Ignored };
        self.request(&api, body.to_string().as_bytes(), request);
        self.blocking += usize::from(blocking);
    }

    pub(super) fn drop_consumer(&mut self, subject: &str) {
        let Some(rec) = self.subs.get_mut(subject).and_then(|s| s.consumer.take()) else { return };
        self.remove_sid(rec.deliver_sid);
        let stale: Vec<u16> = self
            .outbound
            .iter()
            .filter(|(_, o)| o.key.as_ref().is_some_and(|(c, _)| Some(c) == rec.name.as_ref()))
            .map(|(&pi, _)| pi)
            .collect();
        for pi in stale {
            if let Some(Outbound { key: Some(key), .. }) = self.outbound.remove(&pi) {
                self.outbound_by_key.remove(&key);
            }
        }
        if let Some(name) = rec.name {
            self.delete_consumer(&name);
        }
    }

    pub(super) fn delete_consumer(&mut self, name: &str) {
        let api = format!("{}.CONSUMER.DELETE.{MSGS_STREAM}.{name}", self.setup.js_api);
        self.request(&api, b"", Request::Ignored);
    }

    /// Retained messages for a new subscription come from an ephemeral
    /// consumer of the last message of each matching subject.
    pub(super) fn fetch_retained(&mut self, subject: &str, qos: u8) {
        let mut filters = vec![format!("{RMSGS_PREFIX}{subject}")];
        if let Some(parent) = topic::level_up(subject) {
            filters.push(format!("{RMSGS_PREFIX}{parent}"));
        }
        for filter in filters {
            let deliver = format!("{SUB_PREFIX}{}", random_token(&mut self.rng, 22));
            let kind = SidKind::Retained { qos, reserved: reserved(subject), expected: None, got: 0, name: None };
            let sid = self.add_sid(&deliver, kind);
            let body = json!({"stream_name": RMSGS_STREAM, "config": {
                "deliver_subject": deliver, "ack_policy": "none", "deliver_policy": "last_per_subject",
                "filter_subject": filter, "mem_storage": true,
            }});
            let api = format!("{}.CONSUMER.CREATE.{RMSGS_STREAM}", self.setup.js_api);
            self.request(&api, body.to_string().as_bytes(), Request::RetainedConsumer { sid });
        }
    }

    /// A retained fetch got its count, or one more message: done once all came.
    pub(super) fn retained_progress(&mut self, sid: u64) {
        let Some(SidKind::Retained { expected: Some(n), got, name, .. }) = self.sids.get(&sid) else { return };
        if *got >= *n {
            let name = name.clone();
            self.remove_sid(sid);
            if let Some(name) = name {
                let api = format!("{}.CONSUMER.DELETE.{RMSGS_STREAM}.{name}", self.setup.js_api);
                self.request(&api, b"", Request::Ignored);
            }
        }
    }

    pub(super) fn request(&mut self, subject: &str, body: &[u8], request: Request) {
        let reply = self.reply_to(request);
        let _ = write!(self.to_server, "PUB {subject} {reply} {}\r\n", body.len());
        self.to_server.extend_from_slice(body);
        self.to_server.extend_from_slice(b"\r\n");
    }

    pub(super) fn reply_to(&mut self, request: Request) -> String {
        let id = self.next_id;
        self.next_id += 1;
        self.requests.insert(id, request);
        format!("{}.{id}", self.reply_prefix)
    }

    pub(super) fn handle_reply(&mut self, _now: Instant, m: Msg) {
        let Some(id) = m.subject.rsplit('.').next().and_then(|t| t.parse::<u64>().ok()) else { return };
        let Some(request) = self.requests.remove(&id) else { return };
        let reply: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
        let error = reply.get("error").map(|e| e["err_code"].as_u64().unwrap_or(0));
        match request {
            Request::Ignored => {}
            Request::StreamCreate => {
                // 10058: the stream exists (with another config): use it.
                if matches!(error, Some(code) if code != 10058) {
                    packet::connack(&mut self.to_client, false, rc::SERVER_UNAVAILABLE);
                    return self.fail(CloseReason::ServerShutdown);
                }
                self.streams_pending = self.streams_pending.saturating_sub(1);
                if self.streams_pending == 0 {
                    self.load_session();
                }
            }
            Request::SessionLoad => {
                let stored = reply["message"]["data"].as_str().and_then(|d| {
                    use base64::Engine;
                    let raw = base64::engine::general_purpose::STANDARD.decode(d).ok()?;
                    serde_json::from_slice::<Value>(&raw).ok()
                });
                self.session_loaded(stored);
            }
            Request::Store(ticket) => {
                if error.is_some() {
                    // nats-server closes a client whose QoS 1 message it could not store.
                    return self.fail(CloseReason::ServerShutdown);
                }
                if let Some(a) = self.inbound.iter_mut().find(|a| a.ticket == ticket) {
                    a.outstanding = a.outstanding.saturating_sub(1);
                }
                self.flush_acks();
            }
            Request::ConsumerCreate { subject } => {
                self.blocking = self.blocking.saturating_sub(1);
                if error.is_some() {
                    self.drop_consumer(&subject);
                    if let Some((_, codes, granted)) = self.suback.as_mut() {
                        if let Some(i) = granted.iter().position(|(s, _)| *s == subject) {
                            granted.remove(i);
                            if let Some(c) = codes.iter_mut().filter(|c| **c != 0x80).nth(i) {
                                *c = 0x80;
                            }
                        }
                    }
                    if let Some(sub) = self.subs.remove(&subject) {
                        for sid in sub.sids {
                            self.remove_sid(sid);
                        }
                    }
                } else if let Some(rec) = self.subs.get_mut(&subject).and_then(|s| s.consumer.as_mut()) {
                    rec.name = reply["name"].as_str().map(str::to_owned);
                }
                if self.blocking == 0 {
                    self.finish_subscribe();
                }
            }
            Request::SubscribeSaved => {
                if error.is_some() {
                    // nats-server closes a client whose session it could not store.
                    return self.fail(CloseReason::ServerShutdown);
                }
                self.blocking = self.blocking.saturating_sub(1);
                if self.blocking == 0 {
                    self.finish_subscribe();
                }
            }
            Request::Qos2Stored(pi) => {
                // 10077: this packet id is stored already (a resent PUBLISH).
                if matches!(error, Some(code) if code != 10077) {
                    return self.fail(CloseReason::ServerShutdown);
                }
                packet::pubrec(&mut self.to_client, pi);
            }
            Request::Qos2Released(pi) => {
                use base64::Engine;
                let b64 = |v: &Value| {
                    let text = v.as_str().unwrap_or_default();
                    base64::engine::general_purpose::STANDARD.decode(text).ok().map(bytes::Bytes::from)
                };
                let msg = &reply["message"];
                let stored = msg["seq"].as_u64().map(|seq| {
                    (seq, b64(&msg["hdrs"]).unwrap_or_default(), b64(&msg["data"]).unwrap_or_default())
                });
                self.qos2_released(pi, stored);
            }
            Request::RetainedConsumer { sid } => {
                if let Some(SidKind::Retained { expected, name, .. }) = self.sids.get_mut(&sid) {
                    *expected = Some(if error.is_some() { 0 } else { reply["num_pending"].as_u64().unwrap_or(0) });
                    *name = reply["name"].as_str().map(str::to_owned);
                }
                self.retained_progress(sid);
            }
        }
    }
}
