//! NATS JWTs as `nsc` writes them: `header.claims.signature`, each part
//! unpadded base64url, the signature an ed25519 signature by the issuer's
//! nkey over `header.claims`. Only decoding and verification live here.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;

use super::nkey::{self, KeyRole, NkeyError};

/// Why a JWT was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts of JSON.
    #[error("malformed JWT: {0}")]
    Malformed(&'static str),
    /// The header names another type or algorithm.
    #[error("unsupported JWT header")]
    BadHeader,
    /// The signature does not verify under the issuer.
    #[error("JWT signature: {0}")]
    Signature(NkeyError),
    /// A claim of the wrong kind (e.g. an account JWT where a user's belongs).
    #[error("expected a {expected} JWT, got {got:?}")]
    WrongType {
        /// The kind wanted.
        expected: &'static str,
        /// The `nats.type` found.
        got: String,
    },
    /// Past `exp`.
    #[error("JWT expired")]
    Expired,
    /// Before `nbf`.
    #[error("JWT not yet valid")]
    NotYetValid,
    /// An account JWT breaking its own limits (nats-server's validation
    /// errors, e.g. more exports than `limits.exports` allows).
    #[error("validation errors: [{}]", .0.join(" "))]
    Invalid(Vec<&'static str>),
    /// The issuer's key has a role this kind of JWT may not be issued by
    /// (an account JWT signed by a user key); the roles allowed, in
    /// nats-server's words (`[account operator]`).
    #[error("unable to validate expected prefixes - {0}")]
    UnexpectedIssuer(&'static str),
}

/// The claims every NATS JWT has.
#[derive(Clone, Debug, Deserialize)]
pub struct Claims<N> {
    /// Unique id.
    #[serde(default)]
    pub jti: String,
    /// Issued at, Unix seconds.
    #[serde(default)]
    pub iat: i64,
    /// Issuer public nkey.
    pub iss: String,
    /// Subject public nkey (the operator, account or user).
    pub sub: String,
    /// Human name.
    #[serde(default)]
    pub name: String,
    /// Expiry, Unix seconds; absent or 0 never expires.
    #[serde(default)]
    pub exp: i64,
    /// Not before, Unix seconds.
    #[serde(default)]
    pub nbf: i64,
    /// The NATS-specific part.
    pub nats: N,
}

/// `nats` of an operator JWT.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct OperatorNats {
    /// `operator`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Keys that may sign account JWTs besides the operator's own.
    #[serde(default)]
    pub signing_keys: Vec<String>,
    /// The system account's public key.
    #[serde(default)]
    pub system_account: String,
}

/// A signing key of an account: a plain key, or a scoped one with a role.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum SigningKey {
    /// A plain signing key.
    Plain(String),
    /// A scoped signing key: users it signs get its template's permissions.
    Scoped {
        /// The public key.
        key: String,
        /// The permissions template.
        #[serde(default)]
        template: ScopeTemplate,
    },
}

/// The template of a scoped signing key: the permissions and limits every
/// user it signs gets.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ScopeTemplate {
    /// Permissions, before `{{…}}` expansion.
    #[serde(flatten)]
    pub permissions: UserPermissionClaims,
    /// Subscriptions per connection; -1 is unlimited.
    #[serde(default = "unlimited")]
    pub subs: i64,
    /// Largest payload; -1 is unlimited.
    #[serde(default = "unlimited")]
    pub payload: i64,
}

impl Default for ScopeTemplate {
    fn default() -> Self {
        ScopeTemplate {
            permissions: UserPermissionClaims::default(),
            subs: -1,
            payload: -1,
        }
    }
}

/// A scope template's limits default to unlimited, unlike a user's
/// (nats-server starts a scope from unlimited before reading it).
fn unlimited() -> i64 {
    -1
}

impl SigningKey {
    /// The public key.
    pub fn key(&self) -> &str {
        match self {
            SigningKey::Plain(k) | SigningKey::Scoped { key: k, .. } => k,
        }
    }
}

/// `nats` of an account JWT.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AccountNats {
    /// `account`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Keys that may sign user JWTs besides the account's own.
    #[serde(default)]
    pub signing_keys: Vec<SigningKey>,
    /// Revoked users: public key (or `*`) → users issued at or before this
    /// Unix second are refused.
    #[serde(default)]
    pub revocations: BTreeMap<String, i64>,
    /// Permissions of users whose JWT names none.
    #[serde(default)]
    pub default_permissions: Option<UserPermissionClaims>,
    /// What the account exports.
    #[serde(default)]
    pub exports: Vec<ExportClaim>,
    /// What the account imports.
    #[serde(default)]
    pub imports: Vec<ImportClaim>,
    /// `key:value` tags, for scoped signing key templates.
    #[serde(default)]
    pub tags: Vec<String>,
    /// What the account's clients may do. As with nats-server, a limit the
    /// JWT leaves out is 0, not unlimited: `nsc` writes -1 for unlimited.
    #[serde(default)]
    pub limits: AccountLimitClaims,
    /// Subject mappings: source subject → weighted destinations.
    #[serde(default)]
    pub mappings: BTreeMap<String, Vec<WeightedMappingClaim>>,
}

/// One destination of an account JWT's mapping.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct WeightedMappingClaim {
    /// The destination subject.
    #[serde(default)]
    pub subject: String,
    /// Its share in percent; 0 (or absent) means 100, as in nats-server.
    #[serde(default)]
    pub weight: u8,
    /// The cluster the destination applies in.
    #[serde(default)]
    pub cluster: String,
}

/// `limits` of an account JWT. A negative number (nsc writes -1) is unlimited.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct AccountLimitClaims {
    /// Subscriptions per client connection of the account.
    #[serde(default)]
    pub subs: i64,
    /// Bytes; carried but not enforced for core NATS, as in nats-server.
    #[serde(default)]
    pub data: i64,
    /// Largest message payload a client of the account may publish.
    #[serde(default)]
    pub payload: i64,
    /// How many imports the JWT may declare.
    #[serde(default)]
    pub imports: i64,
    /// How many exports the JWT may declare.
    #[serde(default)]
    pub exports: i64,
    /// Whether exported subjects may contain wildcards.
    #[serde(default)]
    pub wildcards: bool,
    /// Bearer user JWTs (no nonce signature) are refused.
    #[serde(default)]
    pub disallow_bearer: bool,
    /// Client connections the account may have at once.
    #[serde(default)]
    pub conn: i64,
    /// Leaf node connections the account may have at once.
    #[serde(default)]
    pub leaf: i64,
    /// JetStream limits; JetStream is on for the account when memory or
    /// disk storage is non-zero here, or a tier is given.
    #[serde(flatten)]
    pub jetstream: JetStreamLimitClaims,
    /// JetStream limits per replication tier (`R1`, `R3`…).
    #[serde(default)]
    pub tiered_limits: BTreeMap<String, JetStreamLimitClaims>,
}

/// The JetStream part of an account JWT's `limits` (0 in a limit means
/// none allowed, except where noted).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct JetStreamLimitClaims {
    /// Memory bytes (-1 unlimited).
    #[serde(default)]
    pub mem_storage: i64,
    /// Disk bytes (-1 unlimited).
    #[serde(default)]
    pub disk_storage: i64,
    /// Streams (-1 unlimited).
    #[serde(default)]
    pub streams: i64,
    /// Consumers (-1 unlimited).
    #[serde(default)]
    pub consumer: i64,
    /// Unacknowledged messages per consumer (0 or less: unlimited).
    #[serde(default)]
    pub max_ack_pending: i64,
    /// Largest memory stream (0 or less: unlimited).
    #[serde(default)]
    pub mem_max_stream_bytes: i64,
    /// Largest file stream (0 or less: unlimited).
    #[serde(default)]
    pub disk_max_stream_bytes: i64,
    /// Streams must set `max_bytes`.
    #[serde(default)]
    pub max_bytes_required: bool,
}

/// A JWT limit as a bound: `None` when unlimited (negative).
pub fn bound(limit: i64) -> Option<u64> {
    u64::try_from(limit).ok()
}

/// The tighter of two bounds (`None` is unlimited).
pub fn tighter(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The subscription and payload limits of a user JWT, or of the scoped
/// signing key that issued it. Negative is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserLimits {
    /// Subscriptions per connection.
    pub subs: i64,
    /// Largest payload.
    pub payload: i64,
}

/// What one connection may do: `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnLimits {
    /// Subscriptions the connection may hold.
    pub subs: Option<u64>,
    /// Largest payload it may publish.
    pub payload: Option<u64>,
}

impl UserLimits {
    /// The tighter of the user's and the account's limits, each limit on
    /// its own, as nats-server combines them (an account's `subs` bounds
    /// each of its connections, not their sum).
    pub fn within(self, account: &AccountLimitClaims) -> ConnLimits {
        ConnLimits {
            subs: tighter(bound(self.subs), bound(account.subs)),
            payload: tighter(bound(self.payload), bound(account.payload)),
        }
    }
}

impl AccountNats {
    /// Checks the JWT against its own `imports`, `exports` and `wildcards`
    /// limits, as nats-server validates an account before using or storing
    /// it; the error lists every problem, in nats-server's words.
    pub fn validate(&self) -> Result<(), JwtError> {
        const IMPORTS: &str = "the account contains more imports than allowed by the operator";
        let mut problems = Vec::new();
        let over = |limit: i64, n: usize| bound(limit).is_some_and(|max| n as u64 > max);
        if over(self.limits.imports, self.imports.len()) {
            // nats-server checks the import count twice when any limit is set,
            // and so reports it twice.
            if self.limits != AccountLimitClaims::default() {
                problems.push(IMPORTS);
            }
            problems.push(IMPORTS);
        }
        if bound(self.limits.exports).is_some() {
            if over(self.limits.exports, self.exports.len()) {
                problems.push("the account contains more exports than allowed by the operator");
            }
            if !self.limits.wildcards {
                // One line per wildcard export, as nats-server reports them.
                let wildcards = self
                    .exports
                    .iter()
                    .filter(|e| !crate::subject::is_literal(e.subject.as_bytes()));
                let line =
                    "the account contains wildcard exports that are not allowed by the operator";
                problems.extend(wildcards.map(|_| line));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(JwtError::Invalid(problems))
        }
    }
}

/// Per-user limits and connection restrictions of a user JWT.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct UserLimitClaims {
    /// Maximum subscriptions; -1 is unlimited.
    #[serde(default)]
    pub subs: i64,
    /// Maximum bytes; -1 is unlimited.
    #[serde(default)]
    pub data: i64,
    /// Maximum payload; -1 is unlimited.
    #[serde(default)]
    pub payload: i64,
    /// Allowed source networks (CIDR list).
    #[serde(default)]
    pub src: Option<serde_json::Value>,
    /// Allowed times of day.
    #[serde(default)]
    pub times: Option<serde_json::Value>,
    /// The time zone of `times`.
    #[serde(default)]
    pub times_location: String,
    /// Allowed connection types.
    #[serde(default)]
    pub allowed_connection_types: Option<Vec<String>>,
}

/// One export of an account JWT.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ExportClaim {
    /// The exported subject.
    #[serde(default)]
    pub subject: String,
    /// `stream` or `service`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Importers need an activation token.
    #[serde(default)]
    pub token_req: bool,
    /// `Singleton`, `Stream` or `Chunked`.
    #[serde(default)]
    pub response_type: String,
    /// How long responses may come back, in nanoseconds.
    #[serde(default)]
    pub response_threshold: i64,
    /// Revoked activation tokens: importing account (or `*`) → tokens
    /// issued at or before this Unix second no longer open the export.
    #[serde(default)]
    pub revocations: BTreeMap<String, i64>,
}

/// One import of an account JWT.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ImportClaim {
    /// The subject in the exporting account.
    #[serde(default)]
    pub subject: String,
    /// The exporting account's public key.
    #[serde(default)]
    pub account: String,
    /// `stream` or `service`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The activation token (a JWT by the exporter) for a private export.
    #[serde(default)]
    pub token: String,
    /// Where the import lands locally.
    #[serde(default)]
    pub local_subject: String,
    /// Older form: a stream's prefix, or a service's local subject.
    #[serde(default)]
    pub to: String,
}

/// `nats` of an activation token.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ActivationNats {
    /// `activation`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The subject the activation allows.
    #[serde(default)]
    pub subject: String,
    /// Set when a signing key of the exporter issued the token.
    #[serde(default)]
    pub issuer_account: String,
}

/// Allow and deny lists as JWTs carry them.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct PermissionClaim {
    /// Allowed subjects.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// Denied subjects.
    #[serde(default)]
    pub deny: Option<Vec<String>>,
}

/// `resp` of a user JWT.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct ResponseClaim {
    /// Responses allowed per request.
    #[serde(default)]
    pub max: i64,
    /// How long, in nanoseconds.
    #[serde(default)]
    pub ttl: i64,
}

/// The permission part of a user JWT (and of a scoped key's template).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct UserPermissionClaims {
    /// `pub`.
    #[serde(rename = "pub", default)]
    pub publish: PermissionClaim,
    /// `sub`.
    #[serde(rename = "sub", default)]
    pub subscribe: PermissionClaim,
    /// `resp`.
    #[serde(default)]
    pub resp: Option<ResponseClaim>,
}

/// `nats` of a user JWT.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct UserNats {
    /// `user`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Set when a signing key of the account issued this user.
    #[serde(default)]
    pub issuer_account: String,
    /// The user's permissions.
    #[serde(flatten)]
    pub permissions: UserPermissionClaims,
    /// Whether the user is a bearer token (no nonce signature needed).
    #[serde(default)]
    pub bearer_token: bool,
    /// `key:value` tags, for scoped signing key templates.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The limits and connection restrictions a user may carry; a user of a
    /// scoped signing key must carry none of them.
    #[serde(flatten)]
    pub limits: UserLimitClaims,
}

#[derive(Deserialize)]
struct Header {
    typ: String,
    alg: String,
}

/// Decodes `jwt`, checks its header and that its issuer signed it, and
/// returns its claims. Who the issuer may be is the caller's question.
pub fn decode<N: serde::de::DeserializeOwned>(jwt: &str) -> Result<Claims<N>, JwtError> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    // Exactly three parts: a fourth is no part of the signature.
    let mut parts = jwt.trim().split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("expected three parts"));
    };
    let header_bytes = b64
        .decode(h)
        .map_err(|_| JwtError::Malformed("header is not base64url"))?;
    let header: Header = serde_json::from_slice(&header_bytes)
        .map_err(|_| JwtError::Malformed("header is not JSON"))?;
    // `ed25519-nkey` is version 2; `ed25519` the version-1 JWTs that nsc
    // wrote before 2020, which nats-server still accepts.
    let version_1 = header.alg == "ed25519";
    if !header.typ.eq_ignore_ascii_case("jwt") || !(version_1 || header.alg == "ed25519-nkey") {
        return Err(JwtError::BadHeader);
    }
    let claims_bytes = b64
        .decode(c)
        .map_err(|_| JwtError::Malformed("claims are not base64url"))?;
    let claims: Claims<N> = if version_1 {
        serde_json::from_value(version_1_claims(&claims_bytes)?)
    } else {
        serde_json::from_slice(&claims_bytes)
    }
    .map_err(|_| JwtError::Malformed("claims are not NATS JSON"))?;
    let sig = b64
        .decode(s)
        .map_err(|_| JwtError::Malformed("signature is not base64url"))?;
    let role = nkey::role_of(&claims.iss).ok_or(JwtError::Signature(NkeyError::WrongRole))?;
    // Version 2 signs the header and the claims; version 1 the claims only.
    let signed = if version_1 { c.as_bytes() } else { &jwt.trim().as_bytes()[..h.len() + 1 + c.len()] };
    nkey::verify(&claims.iss, role, signed, &sig).map_err(JwtError::Signature)?;
    Ok(claims)
}

/// A version-1 claim set in the version-2 layout: its type is at the top
/// level rather than in `nats`, and `nats` may be absent. Version-1 users
/// had no limits: they are unlimited (version 2 reads a missing limit as 0).
fn version_1_claims(bytes: &[u8]) -> Result<serde_json::Value, JwtError> {
    let mut claims: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| JwtError::Malformed("claims are not NATS JSON"))?;
    let Some(object) = claims.as_object_mut() else {
        return Err(JwtError::Malformed("claims are not NATS JSON"));
    };
    let kind = object.get("type").cloned();
    let nats = object.entry("nats").or_insert_with(|| serde_json::json!({}));
    if let (Some(nats), Some(kind)) = (nats.as_object_mut(), kind) {
        if kind == "user" {
            for limit in ["subs", "data", "payload"] {
                nats.entry(limit).or_insert(serde_json::json!(-1));
            }
        }
        nats.entry("type").or_insert(kind);
    }
    Ok(claims)
}

impl<N> Claims<N> {
    /// Checks `exp` and `nbf` against the wall clock, in Unix seconds.
    pub fn check_time(&self, now_unix_secs: i64) -> Result<(), JwtError> {
        if self.exp > 0 && now_unix_secs >= self.exp {
            return Err(JwtError::Expired);
        }
        if self.nbf > 0 && now_unix_secs < self.nbf {
            return Err(JwtError::NotYetValid);
        }
        Ok(())
    }
}

/// Checks `nats.type`.
pub fn expect_type(found: &str, expected: &'static str) -> Result<(), JwtError> {
    if found == expected {
        Ok(())
    } else {
        Err(JwtError::WrongType {
            expected,
            got: found.to_owned(),
        })
    }
}

pub use crate::config::jwt_in_text as extract;

/// The role a JWT's subject must have.
pub fn subject_role(kind: &str) -> Option<KeyRole> {
    match kind {
        "operator" => Some(KeyRole::Operator),
        "account" => Some(KeyRole::Account),
        "user" => Some(KeyRole::User),
        _ => None,
    }
}
