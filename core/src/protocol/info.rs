//! The `INFO` the server sends a client when it connects (and again when the
//! cluster's URLs or lame duck mode change).
//!
//! The fields, their order and which are left out when empty are those of
//! nats-server 2.15.1's client INFO. A real one, captured from
//! `nats-server -a 127.0.0.1 -p 24222`:
//!
//! ```text
//! INFO {"server_id":"NASM2F…","server_name":"NASM2F…","version":"2.15.1","proto":1,
//! "git_commit":"b2fd3ef","go":"go1.27.2","host":"127.0.0.1","port":24222,"headers":true,
//! "max_payload":1048576,"client_id":5,"client_ip":"127.0.0.1","api_lvl":5,
//! "xkey":"XBG2RI…"} \r\n
//! ```
//!
//! (one line; note the space before `\r\n`). Route, gateway and leaf node
//! fields of nats-server's `Info` are not here: clients never receive them.

use serde::{Deserialize, Serialize};

/// What natrix puts in `go`, the field where nats-server reports its Go
/// version. No client interprets it; natrix says honestly what it is built
/// with: `rust` and the minimum Rust version of the workspace.
pub const RUNTIME_VERSION: &str = concat!("rust", env!("CARGO_PKG_RUST_VERSION"));

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

fn is_zero_i32(n: &i32) -> bool {
    *n == 0
}

/// The JSON of an `INFO` line, field for field as nats-server sends it.
/// Fields tagged "omitted if empty" are left out of the JSON when empty,
/// false or zero, exactly where nats-server leaves them out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerInfo {
    /// The server's public nkey-style id.
    pub server_id: String,
    /// The server's name (its id unless configured).
    pub server_name: String,
    /// The nats-server version natrix is compatible with.
    pub version: String,
    /// natrix's own version; a field nats-server does not have (clients
    /// ignore unknown INFO fields). Omitted if empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub natrix_version: String,
    /// Protocol version: 1 (supports INFO updates and headers).
    pub proto: i32,
    /// Source revision; omitted if empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub git_commit: String,
    /// nats-server's Go version; natrix sends [`RUNTIME_VERSION`].
    pub go: String,
    /// The client listen host.
    pub host: String,
    /// The client listen port.
    pub port: u16,
    /// Whether the server supports headers (`HPUB`/`HMSG`).
    pub headers: bool,
    /// Whether CONNECT must carry credentials; omitted if false.
    #[serde(skip_serializing_if = "is_false")]
    pub auth_required: bool,
    /// Whether the client must upgrade to TLS; omitted if false.
    #[serde(skip_serializing_if = "is_false")]
    pub tls_required: bool,
    /// Whether the client must present a certificate; omitted if false.
    #[serde(skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    /// Whether TLS is offered but optional; omitted if false.
    #[serde(skip_serializing_if = "is_false")]
    pub tls_available: bool,
    /// Largest payload the server accepts from this client.
    pub max_payload: u32,
    /// Whether JetStream is enabled for the client's account; omitted if false.
    #[serde(skip_serializing_if = "is_false")]
    pub jetstream: bool,
    /// The address clients connect to, for route INFO; omitted if empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ip: String,
    /// The connection id (`cid`); omitted if zero.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub client_id: u64,
    /// The client's IP as the server sees it; omitted if empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_ip: String,
    /// Nonce for nkey/JWT auth to sign; omitted if empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    /// Cluster name; omitted if empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Whether the cluster name was chosen dynamically; omitted if false.
    #[serde(skip_serializing_if = "is_false", rename = "cluster_dynamic")]
    pub cluster_dynamic: bool,
    /// JetStream domain; omitted if empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// Client URLs of the cluster's servers; omitted if empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    /// WebSocket URLs of the cluster's servers; omitted if empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ws_connect_urls: Vec<String>,
    /// Lame duck mode: clients should move elsewhere; omitted if false.
    #[serde(skip_serializing_if = "is_false")]
    pub ldm: bool,
    /// Route/leaf compression mode; omitted if empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub compression: String,
    /// Whether this INFO answers a CONNECT; omitted if false.
    #[serde(skip_serializing_if = "is_false")]
    pub connect_info: bool,
    /// The account a leaf connection binds to; omitted if empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remote_account: String,
    /// Whether the client's account is the system account; omitted if false.
    #[serde(skip_serializing_if = "is_false", rename = "acc_is_sys")]
    pub acc_is_sys: bool,
    /// JetStream API level; omitted if zero (nats-server 2.15.1 sends 5).
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub api_lvl: i32,
    /// The server's public x25519 key, for encrypted auth callouts; omitted
    /// if empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub xkey: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The INFO nats-server 2.15.1 sent (see the module docs), as natrix
    /// would build it with the same values.
    fn captured() -> ServerInfo {
        ServerInfo {
            server_id: "NASM2FQZO2XSPWFUQZH237LQBIZYARPIFDUOQKXOQRSQISSBDZ2NLTK6".into(),
            server_name: "NASM2FQZO2XSPWFUQZH237LQBIZYARPIFDUOQKXOQRSQISSBDZ2NLTK6".into(),
            version: "2.15.1".into(),
            proto: 1,
            git_commit: "b2fd3ef".into(),
            go: "go1.27.2".into(),
            host: "127.0.0.1".into(),
            port: 24222,
            headers: true,
            max_payload: 1048576,
            client_id: 5,
            client_ip: "127.0.0.1".into(),
            api_lvl: 5,
            xkey: "XBG2RIWFGB4V2SDS6ZKAQRPWPFAFOECOIDD6DQ5JZM6KMQ76COEXDCE2".into(),
            ..ServerInfo::default()
        }
    }

    const CAPTURED_LINE: &str = concat!(
        r#"INFO {"server_id":"NASM2FQZO2XSPWFUQZH237LQBIZYARPIFDUOQKXOQRSQISSBDZ2NLTK6","#,
        r#""server_name":"NASM2FQZO2XSPWFUQZH237LQBIZYARPIFDUOQKXOQRSQISSBDZ2NLTK6","#,
        r#""version":"2.15.1","proto":1,"git_commit":"b2fd3ef","go":"go1.27.2","#,
        r#""host":"127.0.0.1","port":24222,"headers":true,"max_payload":1048576,"#,
        r#""client_id":5,"client_ip":"127.0.0.1","api_lvl":5,"#,
        r#""xkey":"XBG2RIWFGB4V2SDS6ZKAQRPWPFAFOECOIDD6DQ5JZM6KMQ76COEXDCE2"} "#,
        "\r\n"
    );

    #[test]
    fn matches_captured_nats_server_info_byte_for_byte() {
        let mut buf = bytes::BytesMut::new();
        super::super::encode::write_info(&mut buf, &captured());
        assert_eq!(std::str::from_utf8(&buf).unwrap(), CAPTURED_LINE);
    }

    #[test]
    fn parses_captured_info() {
        let json = CAPTURED_LINE.strip_prefix("INFO ").unwrap().trim_end();
        let info: ServerInfo = serde_json::from_str(json).unwrap();
        assert_eq!(info, captured());
    }

    #[test]
    fn optional_fields_keep_nats_server_order() {
        let info = ServerInfo {
            auth_required: true,
            tls_required: true,
            tls_verify: true,
            tls_available: true,
            jetstream: true,
            nonce: "n".into(),
            cluster: "c".into(),
            domain: "d".into(),
            connect_urls: vec!["1.2.3.4:4222".into()],
            ldm: true,
            ..ServerInfo::default()
        };
        let json = serde_json::to_string(&info).unwrap();
        let want = concat!(
            r#"{"server_id":"","server_name":"","version":"","proto":0,"go":"","host":"","port":0,"#,
            r#""headers":false,"auth_required":true,"tls_required":true,"tls_verify":true,"#,
            r#""tls_available":true,"max_payload":0,"jetstream":true,"nonce":"n","cluster":"c","#,
            r#""domain":"d","connect_urls":["1.2.3.4:4222"],"ldm":true}"#
        );
        assert_eq!(json, want);
    }

    #[test]
    fn runtime_version_names_rust() {
        assert!(RUNTIME_VERSION.starts_with("rust1."));
    }
}
