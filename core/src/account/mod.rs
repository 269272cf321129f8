//! Accounts: isolated subject spaces, and the rules by which messages
//! cross between them. A NATS account is defined here once: its exports
//! and imports as a config file or a JWT states them ([`AccountConfig`]),
//! the checks nats-server makes of them ([`checks`]), the routes they
//! resolve into ([`routes`]), and an account's state on a running node
//! ([`state`]): its subscription index, its cross-account routes and its
//! traffic counters. The config module parses account blocks into these
//! types; the server routes messages through them.

use std::time::Duration;

use crate::subject::subject_is_subset;

pub mod checks;
pub mod mapping;
pub(crate) mod routes;
pub(crate) mod state;

pub use state::{AccountStats, MsgBytes, TrafficStats};

/// nats-server's default `response_threshold` of a service export.
pub const DEFAULT_RESPONSE_THRESHOLD: Duration = Duration::from_secs(120);

/// One account of the `accounts {}` block.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccountConfig {
    /// The account name.
    pub name: String,
    /// `exports: [...]`.
    pub exports: Vec<Export>,
    /// `imports: [...]`.
    pub imports: Vec<Import>,
    /// `jetstream: enabled` (or a limits map): the account may use
    /// JetStream, within these limits.
    pub jetstream: Option<crate::jetstream::api::AccountLimits>,
    /// `mappings {}`: how the account's publishes are remapped.
    pub mappings: Vec<mapping::MappingConfig>,
}

/// Whether an export or import carries messages or requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportKind {
    /// `stream`: messages published in the exporter reach the importer.
    Stream,
    /// `service`: requests from the importer reach the exporter, and its
    /// responses come back.
    Service,
}

/// How many responses a service request may get (`response_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResponseType {
    /// One response (the default).
    #[default]
    Singleton,
    /// Any number of responses until the threshold passes.
    Stream,
    /// Any number of responses, each a chunk of one answer.
    Chunked,
}

/// One entry of `exports: [...]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Export {
    /// Stream or service.
    pub kind: ImportKind,
    /// The exported subject (may hold wildcards).
    pub subject: String,
    /// `accounts: [...]`: who may import; empty means public.
    pub accounts: Vec<String>,
    /// `response_type` of a service.
    pub response_type: ResponseType,
    /// `response_threshold`: how long a service's responses may come back
    /// (nats-server default two minutes).
    pub response_threshold: Duration,
}

/// One entry of `imports: [...]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    /// Stream or service.
    pub kind: ImportKind,
    /// The exporting account.
    pub account: String,
    /// The subject in the exporting account.
    pub subject: String,
    /// `to`: for a stream, where the messages land in this account; for a
    /// service, the subject this account publishes requests on.
    pub to: Option<String>,
    /// `prefix` (streams): prepended to the exporter's subject.
    pub prefix: Option<String>,
}

/// The export of `exporter` that allows `importer` to make import `i`.
/// An export of exactly the imported subject decides alone, as in
/// nats-server: a narrower export restricted to other accounts is not
/// widened by a public wildcard export that also covers it.
pub fn find_export<'a>(
    exporter: &'a AccountConfig,
    i: &Import,
    importer: &str,
) -> Option<&'a Export> {
    let admits = |e: &Export| e.accounts.is_empty() || e.accounts.iter().any(|a| a == importer);
    let mut same_kind = exporter.exports.iter().filter(|e| e.kind == i.kind);
    if let Some(exact) = same_kind.clone().find(|e| e.subject == i.subject) {
        return admits(exact).then_some(exact);
    }
    same_kind.find(|e| subject_is_subset(i.subject.as_bytes(), e.subject.as_bytes()) && admits(e))
}
