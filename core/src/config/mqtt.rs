//! The `mqtt {}` block, with nats-server's keys, aliases and the checks it
//! makes before it starts an MQTT listener (its `validateMQTTOptions`).

use std::time::Duration;

use super::apply::{listen, set_some, Report};
use super::apply_blocks::tls;
use super::options::{MqttOptions, ServerOptions};
use super::value::Value;

/// Applies an `mqtt {}` block.
pub(crate) fn mqtt(v: &Value, opts: &mut ServerOptions, r: &mut Report) {
    let Some(map) = r.map(v, "mqtt") else { return };
    let m = &mut opts.mqtt;
    for entry in map.entries() {
        let ev = &entry.value;
        match entry.key.to_ascii_lowercase().as_str() {
            "listen" => {
                if let Some((host, port)) = listen(ev, &entry.key, r) {
                    if let Some(host) = host {
                        m.host = host;
                    }
                    m.port = port;
                }
            }
            "port" => {
                if let Some(port) = r.port(ev, &entry.key) {
                    m.port = port;
                }
            }
            "host" | "net" => {
                if let Some(host) = r.string(ev, &entry.key) {
                    m.host = host;
                }
            }
            "tls" => m.tls = tls(ev, r).or(m.tls.take()),
            "authorization" | "authentication" => simple_auth(ev, m, r),
            "no_auth_user" => set_some(&mut m.no_auth_user, r.string(ev, &entry.key)),
            "ack_wait" | "ackwait" => m.ack_wait = signed_duration(ev, "ack_wait", r).or(m.ack_wait),
            "js_api_timeout" | "api_timeout" => {
                m.js_api_timeout = signed_duration(ev, "js_api_timeout", r).or(m.js_api_timeout);
            }
            "max_ack_pending" | "max_pending" | "max_inflight" => {
                if let Some(n) = r.int(ev, &entry.key) {
                    match u16::try_from(n) {
                        Ok(n) => m.max_ack_pending = n,
                        Err(_) => r.error(&ev.pos, format!("invalid value {n}, should in [0..65535] range")),
                    }
                }
            }
            "js_domain" => set_some(&mut m.js_domain, r.string(ev, &entry.key)),
            "stream_replicas" => {
                if let Some(n) = r.int(ev, &entry.key) {
                    m.stream_replicas = n;
                }
            }
            "consumer_replicas" => r.warn(&ev.pos, &entry.key, "consumer replicas setting ignored in this server version"),
            "consumer_memory_storage" => {
                m.consumer_memory_storage = r.boolean(ev, &entry.key).unwrap_or(m.consumer_memory_storage);
            }
            "consumer_inactive_threshold" | "consumer_auto_cleanup" => {
                set_some(&mut m.consumer_inactive_threshold, r.duration(ev, "consumer_inactive_threshold"));
            }
            "reject_qos2_publish" => m.reject_qos2_publish = r.boolean(ev, &entry.key).unwrap_or(m.reject_qos2_publish),
            "downgrade_qos2_subscribe" => {
                m.downgrade_qos2_subscribe = r.boolean(ev, &entry.key).unwrap_or(m.downgrade_qos2_subscribe);
            }
            _ => r.unknown_field(entry),
        }
    }
}

/// A duration that may be negative (nats-server refuses it only when it
/// starts the listener, with its own message): nanoseconds.
fn signed_duration(v: &Value, key: &str, r: &mut Report) -> Option<i64> {
    use super::value::ValueKind;
    if let ValueKind::String(s) = &v.kind {
        if let Some(rest) = s.strip_prefix('-') {
            let positive = r.duration(&Value { kind: ValueKind::String(rest.to_owned()), pos: v.pos.clone() }, key)?;
            return Some(-i64::try_from(positive.as_nanos()).unwrap_or(i64::MAX));
        }
    }
    r.duration(v, key).map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// `authorization { user, password, token, timeout }`.
fn simple_auth(v: &Value, m: &mut MqttOptions, r: &mut Report) {
    let Some(map) = r.map(v, "authorization") else { return };
    for entry in map.entries() {
        let ev = &entry.value;
        match entry.key.to_ascii_lowercase().as_str() {
            "user" | "username" => set_some(&mut m.username, r.string(ev, &entry.key)),
            "pass" | "password" => set_some(&mut m.password, r.string(ev, &entry.key)),
            "token" => set_some(&mut m.token, r.string(ev, &entry.key)),
            "timeout" => set_some(&mut m.auth_timeout, r.seconds(ev, "timeout")),
            _ => r.unknown_field(entry),
        }
    }
}

/// The first reason nats-server would refuse to start with these MQTT
/// options (checked once the flags are applied too, as nats-server does
/// at start-up), or natrix's refusal of what it does not do yet.
pub fn first_problem(opts: &ServerOptions) -> Option<String> {
    let m = &opts.mqtt;
    if !m.enabled() {
        return None;
    }
    if let Some(problem) = m.no_auth_user.as_deref().and_then(|u| no_auth_user_problem(opts, u)) {
        return Some(problem);
    }
    if !opts.authorization.users.is_empty() {
        if m.username.is_some() {
            return Some("mqtt authentication username not compatible with presence of users/nkeys".to_owned());
        }
        if m.token.is_some() {
            return Some("mqtt authentication token not compatible with presence of users/nkeys".to_owned());
        }
    }
    if m.ack_wait.is_some_and(|w| w < 0) {
        return Some("ack wait must be a positive value".to_owned());
    }
    if m.js_api_timeout.is_some_and(|w| w < 0) {
        return Some("JS API timeout must be a positive value".to_owned());
    }
    // natrix runs no clusters, gateways or leaf nodes: standalone always.
    if !opts.jetstream {
        return Some("mqtt requires JetStream to be enabled if running in standalone mode".to_owned());
    }
    None
}

/// Why a listener's `no_auth_user` cannot be (nats-server's `validateNoAuthUser`).
pub(crate) fn no_auth_user_problem(opts: &ServerOptions, user: &str) -> Option<String> {
    if !opts.operators.is_empty() {
        return Some("no_auth_user not compatible with Trusted Operator".to_owned());
    }
    if opts.authorization.users.is_empty() {
        return Some(format!("no_auth_user: \"{user}\" present, but users/nkeys are not defined"));
    }
    let known = opts.authorization.users.iter().any(|u| u.user == user || u.nkey.as_deref() == Some(user));
    (!known).then(|| {
        format!("no_auth_user: \"{user}\" not present as user or nkey in authorization block or account configuration")
    })
}

impl MqttOptions {
    /// Whether an MQTT listener is configured.
    pub fn enabled(&self) -> bool {
        self.port != 0
    }

    /// Whether the block overrides the server's authentication for MQTT clients.
    pub fn auth_override(&self) -> bool {
        self.username.is_some() || self.token.is_some() || self.no_auth_user.is_some()
    }

    /// How long a QoS 1 delivery waits for its PUBACK before JetStream
    /// redelivers it (nats-server's default: 30s).
    pub fn ack_wait(&self) -> Duration {
        match self.ack_wait {
            Some(ns) if ns > 0 => Duration::from_nanos(ns.unsigned_abs()),
            _ => Duration::from_secs(30),
        }
    }

    /// Unacknowledged QoS 1 deliveries per subscription (default 1024).
    pub fn max_ack_pending(&self) -> u16 {
        if self.max_ack_pending == 0 {
            1024
        } else {
            self.max_ack_pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::load;
    use super::*;

    #[test]
    fn reads_every_key_with_aliases() {
        let opts = load(
            r#"jetstream: true
            mqtt {
                listen: "127.0.0.1:1883"
                ack_wait: "5s"
                max_inflight: 100
                js_domain: "hub"
                stream_replicas: 1
                consumer_memory_storage: true
                consumer_inactive_threshold: "1m"
                api_timeout: "2s"
            }"#,
        )
        .unwrap();
        let m = &opts.mqtt;
        assert_eq!((m.host.as_str(), m.port), ("127.0.0.1", 1883));
        assert_eq!(m.ack_wait(), Duration::from_secs(5));
        assert_eq!(m.max_ack_pending(), 100);
        assert_eq!(m.js_domain.as_deref(), Some("hub"));
        assert!(m.consumer_memory_storage);
        assert_eq!(m.consumer_inactive_threshold, Some(Duration::from_secs(60)));
        assert_eq!(first_problem(&opts), None);
        let opts = load("jetstream: true\nmqtt { host: h, port: 1, ackwait: \"1s\", max_pending: 0 }").unwrap();
        assert_eq!(opts.mqtt.ack_wait(), Duration::from_secs(1));
        assert_eq!(opts.mqtt.max_ack_pending(), 1024, "0 is the default");
    }

    #[test]
    fn refuses_what_nats_server_refuses() {
        let parse_errors = [
            ("mqtt { port: 1883, bogus: 1 }", "unknown field \"bogus\""),
            ("mqtt { port: 1883, max_ack_pending: 70000 }", "invalid value 70000, should in [0..65535] range"),
            ("mqtt { port: 1883, max_ack_pending: -1 }", "should in [0..65535] range"),
            ("mqtt { port: 1883, authorization { what: 1 } }", "unknown field \"what\""),
            ("mqtt: 1", "expected a map"),
        ];
        for (text, expected) in parse_errors {
            let err = load(text).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
        let start_errors = [
            ("mqtt { port: 1883 }", "mqtt requires JetStream to be enabled if running in standalone mode"),
            ("jetstream: true\nmqtt { port: 1883, ack_wait: \"-1s\" }", "ack wait must be a positive value"),
            ("jetstream: true\nmqtt { port: 1883, no_auth_user: zz }", "no_auth_user: \"zz\" present, but users/nkeys are not defined"),
            (
                "jetstream: true\nauthorization { users: [{user: a, password: b}] }\nmqtt { port: 1883, authorization { username: x, password: y } }",
                "mqtt authentication username not compatible with presence of users/nkeys",
            ),
            (
                "jetstream: true\nauthorization { users: [{user: a, password: b}] }\nmqtt { port: 1883, no_auth_user: zz }",
                "no_auth_user: \"zz\" not present as user or nkey in authorization block or account configuration",
            ),
            (
                "jetstream: true\nauthorization { users: [{user: a, password: b}] }\nmqtt { port: 1883, authorization { token: t } }",
                "mqtt authentication token not compatible with presence of users/nkeys",
            ),
        ];
        for (text, expected) in start_errors {
            let opts = load(text).expect(text);
            let err = first_problem(&opts).expect(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn accepts_the_blocks_own_authorization() {
        for text in [
            "jetstream: true\nauthorization { users: [{user: a, password: b}] }\nmqtt { port: 1883, no_auth_user: a }",
            "jetstream: true\nmqtt { port: 1883, authorization { username: u, password: p, timeout: 3 } }",
            "jetstream: true\nauthorization { token: main }\nmqtt { port: 1883, authorization { token: own } }",
        ] {
            let opts = load(text).expect(text);
            assert_eq!(first_problem(&opts), None, "{text}");
            assert!(opts.mqtt.auth_override(), "{text}");
        }
        let opts = load("jetstream: true\nmqtt { port: 1883, authorization { timeout: 3 } }").unwrap();
        assert_eq!(opts.mqtt.auth_timeout, Some(Duration::from_secs(3)));
        assert!(!opts.mqtt.auth_override(), "a timeout alone overrides nothing");
    }

    #[test]
    fn an_unused_block_is_not_checked() {
        let opts = load("mqtt { ack_wait: \"-1s\" }").unwrap();
        assert!(!opts.mqtt.enabled());
        assert_eq!(first_problem(&opts), None);
    }
}
