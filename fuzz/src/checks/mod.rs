//! One check per fuzz target. A check takes the fuzzer's bytes, drives one
//! natrix-core parser (or the whole server) with them, and panics if an
//! invariant breaks. The fuzz targets and the corpus replay test
//! (`core/tests/fuzz_corpus.rs`, which includes this file by path) call the
//! same functions, so the logic lives here only.
//!
//! Dependencies: natrix-core, bytes, serde_json, arbitrary, base64, nkeys —
//! all available to natrix-core's integration tests too.

mod auth;
mod config;
mod jetstream;
mod mqtt;
mod protocol;
mod server;
mod subject;
mod system;
mod websocket;

pub use auth::jwt_auth;
pub use config::{cli_args, config_parse};
pub use jetstream::{js_api, js_store_recovery};
pub use mqtt::mqtt_packets;
pub use protocol::{connect_json, protocol_parser};
pub use server::{monitor_query, server_node};
pub use subject::{subject_validation, sublist_ops};
pub use system::system_requests;
pub use websocket::websocket_frames;

/// A fuzz target's check: panics on a finding.
pub type Check = fn(&[u8]);

/// Every target by name (the directory under `fuzz/corpus/`), with its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("protocol_parser", protocol_parser),
    ("server_node", server_node),
    ("connect_json", connect_json),
    ("config_parse", config_parse),
    ("cli_args", cli_args),
    ("subject_validation", subject_validation),
    ("sublist_ops", sublist_ops),
    ("monitor_query", monitor_query),
    ("jwt_auth", jwt_auth),
    ("system_requests", system_requests),
    ("websocket_frames", websocket_frames),
    ("js_api", js_api),
    ("js_store_recovery", js_store_recovery),
    ("mqtt_packets", mqtt_packets),
];

/// A small deterministic generator seeded from the input itself, for
/// choices (split points) that must be reproducible from the input alone.
pub(crate) struct InputRng(u64);

impl InputRng {
    /// Seeds from an FNV-1a hash of `data`.
    pub(crate) fn from_input(data: &[u8]) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in data {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        InputRng(h | 1)
    }

    /// xorshift64*.
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `1..=max`.
    pub(crate) fn between_one_and(&mut self, max: usize) -> usize {
        1 + (self.next() % max as u64) as usize
    }
}

/// Splits `data` at each NUL byte (the separator the text targets use
/// between files, arguments or fields), as lossy UTF-8 strings.
pub(crate) fn nul_fields(data: &[u8]) -> Vec<String> {
    data.split(|&b| b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}
