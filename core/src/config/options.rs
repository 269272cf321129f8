//! Typed server options: what a config file and the command line resolve to.
//! Defaults are nats-server's.

use std::time::Duration;

use crate::account::AccountConfig;

/// Everything the server is configured with. Built from [`ServerOptions::default`],
/// then a config file, then command-line flags (flags win, as in nats-server).
#[derive(Clone, Debug, PartialEq)]
pub struct ServerOptions {
    /// `server_name` / `-n`: defaults to the generated server id.
    pub server_name: Option<String>,
    /// `host` / `listen` / `-a`: client listen address.
    pub host: String,
    /// `port` / `-p`: client port; `-1` means a random port.
    pub port: i32,
    /// `client_advertise`: address advertised to clients.
    pub client_advertise: Option<String>,
    /// `http_host`: monitoring host (defaults to `host`).
    pub http_host: Option<String>,
    /// `http_port` / `monitor_port` / `-m`: monitoring port; 0 is off, -1 random.
    pub http_port: i32,
    /// `https_port` / `-ms`: monitoring over TLS.
    pub https_port: i32,
    /// `http_base_path`: prefix of every monitoring endpoint.
    pub http_base_path: String,
    /// `max_payload`: largest message payload accepted (advertised in INFO).
    pub max_payload_bytes: u32,
    /// `max_control_line`: longest protocol line accepted.
    pub max_control_line_bytes: u32,
    /// `max_connections`: client connections accepted at once.
    pub max_connections: u32,
    /// `max_subscriptions`: per connection; 0 is unlimited.
    pub max_subscriptions: u32,
    /// `max_pending`: outbound bytes buffered for one client before it is a slow consumer.
    pub max_pending_bytes: u64,
    /// `memory_limit` (natrix's own; the runtime also reads `NATRIX_MEMORY_LIMIT`
    /// and `GOMEMLIMIT`): resident memory the server sheds work to stay under
    /// (see [`crate::server::memory`]). `None` is no limit.
    pub memory_limit_bytes: Option<u64>,
    /// `ping_interval`: how often the server pings an idle client.
    pub ping_interval: Duration,
    /// `ping_max`: unanswered pings before the connection is stale.
    pub ping_max: u32,
    /// `authorization { timeout }`: time a client has to send CONNECT.
    pub auth_timeout: Duration,
    /// `write_deadline`: how long a write may stall before the client is a slow consumer.
    pub write_deadline: Duration,
    /// `lame_duck_duration`: how long lame duck mode takes to evict every client.
    pub lame_duck_duration: Duration,
    /// `lame_duck_grace_period`: wait before lame duck mode starts evicting.
    pub lame_duck_grace_period: Duration,
    /// `max_closed_clients`: closed connections kept for `/connz?state=closed`.
    pub max_closed_clients: u32,
    /// `no_header_support`: refuse headers (`headers: false` in INFO).
    pub no_header_support: bool,
    /// `disable_sublist_cache`.
    pub disable_sublist_cache: bool,
    /// `max_traced_msg_len`: truncation of traced payloads; 0 is no limit.
    pub max_traced_msg_len: u32,
    /// `authorization {}` and the `--user/--pass/--auth` flags.
    pub authorization: Authorization,
    /// `no_auth_user`: the user a client without credentials becomes.
    pub no_auth_user: Option<String>,
    /// `tls {}` and the `--tls*` flags.
    pub tls: Option<TlsOptions>,
    /// `debug` / `-D`.
    pub debug: bool,
    /// `trace` / `-V`.
    pub trace: bool,
    /// `trace_verbose` / `-VV`: traces include system-account traffic.
    pub trace_verbose: bool,
    /// `logtime` / `-T`: prefix log lines with a timestamp.
    pub logtime: bool,
    /// `logtime_utc`.
    pub logtime_utc: bool,
    /// `log_file` / `-l`.
    pub log_file: Option<String>,
    /// `syslog` / `-s`.
    pub syslog: bool,
    /// `pid_file` / `-P`.
    pub pid_file: Option<String>,
    /// `ports_file_dir` / `--ports_file_dir`.
    pub ports_file_dir: Option<String>,
    /// `jetstream` / `-js`.
    pub jetstream: bool,
    /// `jetstream { store_dir }` / `-sd`.
    pub store_dir: Option<String>,
    /// `connect_error_reports`: how often repeated connect errors are logged.
    pub connect_error_reports: u32,
    /// `reconnect_error_reports`.
    pub reconnect_error_reports: u32,
    /// `-c` / `--config`: the file these options were read from.
    pub config_file: Option<String>,
    /// `remote_syslog` / `-r`: syslog server address (`udp://host:514`).
    pub remote_syslog: Option<String>,
    /// `log_size_limit` / `logfile_size_limit`: rotate the log file past this size; 0 never.
    pub log_size_limit_bytes: i64,
    /// `log_max_num` / `logfile_max_num`: rotated log files kept; 0 keeps all.
    pub log_max_files: i64,
    /// `prof_port` / `--profile`: profiling HTTP port; 0 is off.
    pub prof_port: i32,
    /// `system_account` / `system`: name of the system account.
    pub system_account: Option<String>,
    /// `no_system_account`: run without a system account.
    pub no_system_account: bool,
    /// `jetstream { max_memory_store }`: memory storage limit; `None` lets the server size it.
    pub jetstream_max_memory_bytes: Option<i64>,
    /// `jetstream { max_file_store }`: file storage limit; `None` lets the server size it.
    pub jetstream_max_store_bytes: Option<i64>,
    /// `jetstream { domain }`.
    pub jetstream_domain: Option<String>,
    /// `jetstream { sync_interval }`: `None` is natrix's default, every
    /// acknowledged write synced before its acknowledgement.
    pub jetstream_sync: Option<JetStreamSync>,
    /// `accounts {}`: the configured accounts with their exports and
    /// imports. Their users are in [`ServerOptions::authorization`].
    pub accounts: Vec<AccountConfig>,
    /// Top-level `mappings {}`: the global account's subject mappings.
    pub mappings: Vec<crate::account::mapping::MappingConfig>,
    /// `operator`: trusted operator JWTs (operator mode). A value that is
    /// not a JWT is a file path, which [`super::load`] replaces with the
    /// JWT the file holds.
    pub operators: Vec<String>,
    /// `resolver`: where account JWTs come from in operator mode.
    pub resolver: Option<Resolver>,
    /// `resolver_preload`: account public key → account JWT.
    pub resolver_preload: std::collections::BTreeMap<String, String>,
    /// `websocket {}`: the WebSocket listener; off while its port is 0.
    pub websocket: WebsocketOptions,
    /// `mqtt {}`: the MQTT listener; off while its port is 0.
    pub mqtt: MqttOptions,
}

/// How JetStream syncs its writes (`jetstream { sync_interval }`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JetStreamSync {
    /// `always`: every write synced before it is acknowledged (natrix's default).
    Always,
    /// A duration: writes acknowledged at once and synced at this interval,
    /// as nats-server does by default; a crash may lose the last interval.
    Interval(std::time::Duration),
}

/// `resolver`: how the server finds account JWTs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolver {
    /// `MEMORY`: only the JWTs of `resolver_preload`.
    Memory,
    /// `{ type: full | cache, dir, … }`: the built-in NATS resolver, which
    /// keeps account JWTs in `dir` and takes claim updates, lookups, lists
    /// and deletes on `$SYS.REQ.…` at runtime.
    Nats {
        /// `dir`: where the JWTs are kept (created if missing).
        dir: Option<String>,
        /// `type: cache` (only accounts in use are kept) rather than `full`.
        cache: bool,
        /// `allow_delete` / `hard_delete`: whether and how
        /// `$SYS.REQ.CLAIMS.DELETE` deletes.
        delete: ResolverDelete,
        /// `limit`: most JWTs kept; `None` is nats-server's default.
        limit: Option<u64>,
        /// `interval`: how often a full resolver compares its JWTs with
        /// other servers' (kept for clusters; a single server has none).
        interval: Option<std::time::Duration>,
        /// `timeout`: how long a lookup from other servers may take.
        timeout: Option<std::time::Duration>,
        /// `ttl`: how long a cache resolver keeps a JWT.
        ttl: Option<std::time::Duration>,
    },
}

/// What `$SYS.REQ.CLAIMS.DELETE` may do to the NATS resolver's JWTs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResolverDelete {
    /// A full resolver without `allow_delete`: deletes are refused.
    #[default]
    Refuse,
    /// `allow_delete` alone: the JWT is kept aside as `<key>.jwt.deleted`.
    Rename,
    /// `allow_delete` with `hard_delete`, or a cache resolver: the JWT is removed.
    Remove,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            websocket: WebsocketOptions::default(),
            mqtt: MqttOptions::default(),
            server_name: None,
            host: "0.0.0.0".to_owned(),
            port: 4222,
            client_advertise: None,
            http_host: None,
            http_port: 0,
            https_port: 0,
            http_base_path: String::new(),
            max_payload_bytes: 1024 * 1024,
            max_control_line_bytes: 4096,
            max_connections: 64 * 1024,
            max_subscriptions: 0,
            max_pending_bytes: 64 * 1024 * 1024,
            memory_limit_bytes: None,
            ping_interval: Duration::from_secs(120),
            ping_max: 2,
            auth_timeout: Duration::from_secs(2),
            write_deadline: Duration::from_secs(10),
            lame_duck_duration: Duration::from_secs(120),
            lame_duck_grace_period: Duration::from_secs(10),
            max_closed_clients: 10_000,
            no_header_support: false,
            disable_sublist_cache: false,
            max_traced_msg_len: 0,
            authorization: Authorization::default(),
            no_auth_user: None,
            tls: None,
            debug: false,
            trace: false,
            trace_verbose: false,
            logtime: true,
            logtime_utc: false,
            log_file: None,
            syslog: false,
            pid_file: None,
            ports_file_dir: None,
            jetstream: false,
            store_dir: None,
            connect_error_reports: 3600,
            reconnect_error_reports: 1,
            config_file: None,
            remote_syslog: None,
            log_size_limit_bytes: 0,
            log_max_files: 0,
            prof_port: 0,
            system_account: None,
            no_system_account: false,
            jetstream_max_memory_bytes: None,
            jetstream_max_store_bytes: None,
            jetstream_domain: None,
            jetstream_sync: None,
            accounts: Vec::new(),
            mappings: Vec::new(),
            operators: Vec::new(),
            resolver: None,
            resolver_preload: std::collections::BTreeMap::new(),
        }
    }
}

/// The `authorization {}` block (and `--user/--pass/--auth`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Authorization {
    /// Single user name.
    pub user: Option<String>,
    /// Single user password (plain or bcrypt `$2a$…`).
    pub password: Option<String>,
    /// Token (plain or bcrypt).
    pub token: Option<String>,
    /// `users: [...]`: several users, each with optional permissions.
    pub users: Vec<User>,
    /// `permissions`: default permissions for users that have none.
    pub default_permissions: Option<Permissions>,
}

impl Authorization {
    /// True when clients must present credentials.
    pub fn is_required(&self) -> bool {
        self.user.is_some() || self.token.is_some() || !self.users.is_empty()
    }
}

/// One entry of `users: [...]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct User {
    /// `user`.
    pub user: String,
    /// `password` (plain or bcrypt).
    pub password: Option<String>,
    /// `nkey`: public nkey (`U…`) for nonce-signature auth.
    pub nkey: Option<String>,
    /// `permissions`.
    pub permissions: Option<Permissions>,
    /// `account`: the account the user belongs to (`$G` when absent).
    pub account: Option<String>,
    /// `allowed_connection_types`: `STANDARD`, `WEBSOCKET`, `MQTT`…; empty allows all.
    pub allowed_connection_types: Vec<String>,
}

/// Per-user `permissions { publish, subscribe, allow_responses }`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Permissions {
    /// `publish`.
    pub publish: Option<SubjectPermission>,
    /// `subscribe`.
    pub subscribe: Option<SubjectPermission>,
    /// `allow_responses`.
    pub allow_responses: Option<ResponsePermission>,
}

/// `{ allow: [...], deny: [...] }` (a bare list means `allow`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubjectPermission {
    /// Subjects (with wildcards) allowed.
    pub allow: Vec<String>,
    /// Subjects (with wildcards) denied; deny wins.
    pub deny: Vec<String>,
}

/// `allow_responses: true | { max, expires }` (a JWT's `resp`). As in
/// nats-server, 0 in either field means its default (one response, within
/// two minutes) and a negative value means no limit.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponsePermission {
    /// Responses allowed per request; `None`: any number.
    pub max_msgs: Option<u32>,
    /// How long after the request they are allowed; `None`: forever.
    pub expires: Option<Duration>,
}

impl ResponsePermission {
    /// nats-server's default number of responses per request.
    pub const DEFAULT_MAX_MSGS: u32 = 1;
    /// nats-server's default time allowed for them.
    pub const DEFAULT_EXPIRES: Duration = Duration::from_secs(120);

    /// From nats-server's signed numbers: 0 is the default, negative unlimited.
    pub fn from_limits(max_msgs: i64, expires_ns: i64) -> Self {
        let max_msgs = match max_msgs {
            0 => Some(Self::DEFAULT_MAX_MSGS),
            n if n < 0 => None,
            n => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        };
        let expires = match expires_ns {
            0 => Some(Self::DEFAULT_EXPIRES),
            n if n < 0 => None,
            n => Some(Duration::from_nanos(n.unsigned_abs())),
        };
        ResponsePermission { max_msgs, expires }
    }
}

impl Default for ResponsePermission {
    /// `allow_responses: true`.
    fn default() -> Self {
        ResponsePermission::from_limits(0, 0)
    }
}

/// The `tls {}` block and the `--tls*` flags. Paths are read by the runtime.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsOptions {
    /// `cert_file` / `--tlscert`.
    pub cert_file: Option<String>,
    /// `key_file` / `--tlskey`.
    pub key_file: Option<String>,
    /// `ca_file` / `--tlscacert`: CAs trusted for client certificates.
    pub ca_file: Option<String>,
    /// `verify` / `--tlsverify`: require and verify client certificates.
    pub verify: bool,
    /// `verify_and_map`: verify and map the certificate subject to a user.
    pub verify_and_map: bool,
    /// `timeout`: TLS handshake timeout (nats-server default 2s).
    pub timeout: Duration,
    /// `handshake_first`: TLS before INFO.
    pub handshake_first: bool,
    /// `handshake_first: auto` or a duration: how long to wait for the
    /// client's TLS handshake before sending INFO in plain text after all
    /// (the client then upgrades to TLS as usual). `None`: TLS first only.
    pub handshake_first_fallback: Option<Duration>,
}


/// The `mqtt {}` block, as nats-server reads it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MqttOptions {
    /// `host` / `net` / `listen`: listen address (`0.0.0.0` when empty).
    pub host: String,
    /// `port` / `listen`: 0 is off, `-1` a random port.
    pub port: i32,
    /// `tls {}`: MQTT over TLS.
    pub tls: Option<TlsOptions>,
    /// `authorization { user }`: overrides the server's users for MQTT clients.
    pub username: Option<String>,
    /// `authorization { password }`.
    pub password: Option<String>,
    /// `authorization { token }`.
    pub token: Option<String>,
    /// `authorization { timeout }`.
    pub auth_timeout: Option<Duration>,
    /// `no_auth_user`: the user an MQTT client without credentials becomes.
    pub no_auth_user: Option<String>,
    /// `ack_wait`: nanoseconds before an unacknowledged QoS 1 delivery is
    /// redelivered (negative is refused at start-up); `None` is 30s.
    pub ack_wait: Option<i64>,
    /// `js_api_timeout`: nanoseconds (negative is refused at start-up).
    pub js_api_timeout: Option<i64>,
    /// `max_ack_pending`: unacknowledged QoS 1 deliveries per subscription; 0 is 1024.
    pub max_ack_pending: u16,
    /// `js_domain`: the JetStream domain the MQTT streams live in.
    pub js_domain: Option<String>,
    /// `stream_replicas`: replicas of the MQTT streams (one node: 1).
    pub stream_replicas: i64,
    /// `consumer_memory_storage`: QoS 1 consumers kept in memory.
    pub consumer_memory_storage: bool,
    /// `consumer_inactive_threshold`: removes idle QoS 1 consumers.
    pub consumer_inactive_threshold: Option<Duration>,
    /// `reject_qos2_publish`.
    pub reject_qos2_publish: bool,
    /// `downgrade_qos2_subscribe`.
    pub downgrade_qos2_subscribe: bool,
}

/// The `websocket {}` block, as nats-server reads it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WebsocketOptions {
    /// `host` / `net` / `listen`: listen address (nats-server's default host when empty).
    pub host: String,
    /// `port` / `listen`: 0 is off, `-1` a random port.
    pub port: i32,
    /// `advertise`: the URL advertised to clients.
    pub advertise: Option<String>,
    /// `no_tls`: plain `ws://` (nats-server refuses a listener with neither TLS nor this).
    pub no_tls: bool,
    /// `tls {}`: `wss://`.
    pub tls: Option<TlsOptions>,
    /// `same_origin`: the `Origin` header must match the request's host.
    pub same_origin: bool,
    /// `allowed_origins`: origins (`scheme://host[:port]`) accepted.
    pub allowed_origins: Vec<String>,
    /// `handshake_timeout`: time to complete the HTTP upgrade (and TLS); zero is none.
    pub handshake_timeout: Duration,
    /// `compression`: accept `permessage-deflate` when a client asks for it.
    pub compression: bool,
    /// `authorization { user }`: overrides the server's users for WebSocket clients.
    pub username: Option<String>,
    /// `authorization { password }`.
    pub password: Option<String>,
    /// `authorization { token }`.
    pub token: Option<String>,
    /// `authorization { timeout }`.
    pub auth_timeout: Option<Duration>,
    /// `jwt_cookie`: the cookie carrying the user JWT.
    pub jwt_cookie: Option<String>,
    /// `user_cookie`.
    pub user_cookie: Option<String>,
    /// `pass_cookie`.
    pub pass_cookie: Option<String>,
    /// `token_cookie`.
    pub token_cookie: Option<String>,
    /// `no_auth_user`: the user a WebSocket client without credentials becomes.
    pub no_auth_user: Option<String>,
    /// `headers {}`: extra headers of the upgrade response, in file order.
    pub headers: Vec<(String, String)>,
    /// `ping_interval`.
    pub ping_interval: Option<Duration>,
}

impl WebsocketOptions {
    /// Whether a WebSocket listener is configured.
    pub fn enabled(&self) -> bool {
        self.port != 0
    }

    /// Whether the block overrides the server's authentication for WebSocket clients.
    pub fn auth_override(&self) -> bool {
        self.username.is_some() || self.token.is_some() || self.no_auth_user.is_some()
    }

}
