//! Operator mode (decentralized auth): the server trusts operator JWTs,
//! finds account JWTs through a resolver (`MEMORY` with
//! `resolver_preload`), and a client proves itself with a user JWT signed
//! by its account (or one of the account's signing keys) plus a signature
//! of the server's nonce by the user's nkey.

use core::net::IpAddr;
use std::collections::BTreeMap;

use super::jwt::{
    self, AccountLimitClaims, AccountNats, ActivationNats, Claims, ExportClaim, ImportClaim,
    JwtError, OperatorNats, ScopeTemplate, SigningKey, UserLimits, UserNats, UserPermissionClaims,
};
use super::nkey::{self, KeyRole};
use super::restrictions;
use super::template::{expand, TemplateContext};
use super::AuthError;
use crate::jetstream::api::AccountLimits;
use crate::account::{AccountConfig, Export, Import, ImportKind, ResponseType, DEFAULT_RESPONSE_THRESHOLD};
use crate::config::{Permissions, ResponsePermission, SubjectPermission};
use crate::protocol::ConnectInfo;

/// What the server trusts in operator mode.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    /// Operator identity and signing keys: issuers accounts may have.
    operator_keys: Vec<String>,
    /// The system account named by an operator JWT, if any.
    system_account: Option<String>,
    /// Account public key → account JWT (`resolver_preload`, the resolver
    /// directory, claim updates), decoded when stored.
    accounts: BTreeMap<String, StoredAccount>,
}

/// An account JWT as stored, with what does not depend on the clock or on
/// the operator worked out once: decoding and checking an ed25519
/// signature costs tens of microseconds, and the accounts are walked on
/// every claim update, expiry, STATZ and connect.
#[derive(Clone, Debug)]
struct StoredAccount {
    /// The JWT as stored.
    jwt: String,
    /// [`jwt::decode`] of `jwt`: signed by its issuer, or why not.
    claims: Result<Claims<AccountNats>, JwtError>,
    /// [`jwt::decode`] of each import's activation token, in import order;
    /// `None` for an import without one.
    activations: Vec<Option<Result<Claims<ActivationNats>, JwtError>>>,
}

impl StoredAccount {
    fn new(jwt: String) -> StoredAccount {
        let claims: Result<Claims<AccountNats>, JwtError> = jwt::decode(&jwt);
        let activations = claims.as_ref().map_or_else(
            |_| Vec::new(),
            |c| {
                let imports = c.nats.imports.iter();
                imports
                    .map(|i| (!i.token.is_empty()).then(|| jwt::decode(&i.token)))
                    .collect()
            },
        );
        StoredAccount {
            jwt,
            claims,
            activations,
        }
    }

    /// What [`Trust::decode_account`] says of the stored JWT.
    fn as_account(&self) -> Result<&Claims<AccountNats>, JwtError> {
        let claims = self.claims.as_ref().map_err(Clone::clone)?;
        jwt::expect_type(&claims.nats.kind, "account")?;
        check_account_issuer(claims)?;
        Ok(claims)
    }
}

/// A client authenticated by a user JWT.
#[derive(Clone, Debug, PartialEq)]
pub struct JwtIdentity {
    /// The user's public nkey.
    pub user: String,
    /// The user's name claim.
    pub name: String,
    /// The account's public key.
    pub account: String,
    /// The user's permissions; `None` allows everything.
    pub permissions: Option<Permissions>,
    /// The user JWT's `iat`, Unix seconds.
    pub issued_at: i64,
    /// When the connection must end, Unix seconds: the user JWT's `exp` or
    /// the end of the `times` window that admitted it, whichever is first.
    pub expires_at: Option<i64>,
    /// The user's own limits (or its scoped signing key's).
    pub user_limits: UserLimits,
    /// The account's limits when the user connected.
    pub account_limits: AccountLimitClaims,
    /// A bearer token: no nonce signature was asked for.
    pub bearer_token: bool,
}

impl Trust {
    /// Trusts these operator JWTs (each verified as self-signed by an
    /// operator key) and knows these account JWTs.
    pub fn new(
        operator_jwts: &[String],
        preload: &BTreeMap<String, String>,
    ) -> Result<Trust, JwtError> {
        let accounts = preload
            .iter()
            .map(|(key, text)| (key.clone(), StoredAccount::new(text.clone())))
            .collect();
        let mut trust = Trust {
            accounts,
            ..Trust::default()
        };
        for text in operator_jwts {
            let op: Claims<OperatorNats> = jwt::decode(text)?;
            jwt::expect_type(&op.nats.kind, "operator")?;
            if nkey::role_of(&op.sub) != Some(KeyRole::Operator) {
                return Err(JwtError::Signature(nkey::NkeyError::WrongRole));
            }
            trust.operator_keys.push(op.sub.clone());
            trust
                .operator_keys
                .extend(op.nats.signing_keys.iter().cloned());
            if !op.nats.system_account.is_empty() {
                trust.system_account = Some(op.nats.system_account.clone());
            }
        }
        Ok(trust)
    }

    /// Stores an account JWT sent as a claim update, after checking it is
    /// a signed account JWT; returns the account's key. As nats-server's
    /// resolver does, whether its issuer is trusted is checked when the
    /// account is used.
    pub fn update_account(&mut self, text: &str) -> Result<String, JwtError> {
        let stored = StoredAccount::new(text.trim().to_owned());
        let key = stored.as_account()?.sub.clone();
        self.accounts.insert(key.clone(), stored);
        Ok(key)
    }

    /// Decodes `text` as a signed account JWT: what the NATS resolver
    /// requires of a JWT before it stores it.
    pub fn decode_account(text: &str) -> Result<Claims<AccountNats>, JwtError> {
        let claims: Claims<AccountNats> = jwt::decode(text)?;
        jwt::expect_type(&claims.nats.kind, "account")?;
        check_account_issuer(&claims)?;
        Ok(claims)
    }

    /// The claims of account `key`'s stored JWT, if it is a signed account
    /// JWT ([`Trust::decode_account`] of [`Trust::account_jwt`]), decoded
    /// when it was stored. Neither the clock nor the issuer's trust is
    /// checked: [`Trust::account`] does that.
    pub fn account_claims(&self, key: &str) -> Option<&Claims<AccountNats>> {
        self.accounts.get(key)?.as_account().ok()
    }

    /// Makes `text` (already decoded by [`Trust::decode_account`]) the JWT
    /// of account `key`.
    pub fn store_account(&mut self, key: &str, text: &str) {
        let stored = StoredAccount::new(text.trim().to_owned());
        self.accounts.insert(key.to_owned(), stored);
    }

    /// Forgets account `key`'s JWT (a resolver delete); false if unknown.
    pub fn remove_account(&mut self, key: &str) -> bool {
        self.accounts.remove(key).is_some()
    }

    /// The keys of every stored account JWT, sorted.
    pub fn account_keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.accounts.keys().map(String::as_str)
    }

    /// True when `key` is a trusted operator key (an operator's identity or
    /// one of its signing keys): who may delete accounts.
    pub fn is_operator_key(&self, key: &str) -> bool {
        self.operator_keys.iter().any(|k| k == key)
    }

    /// Which users account `key`'s current JWT revokes: a predicate over
    /// (user key, `iat`). `None` when the account does not verify.
    pub fn revocations(&self, key: &str, now: i64) -> Option<impl Fn(&str, i64) -> bool> {
        let revocations = self.verified(key, now).ok()?.nats.revocations.clone();
        Some(move |user: &str, issued_at: i64| is_revoked(&revocations, user, issued_at))
    }

    /// The stored JWT of account `key`.
    pub fn account_jwt(&self, key: &str) -> Option<&str> {
        self.accounts.get(key).map(|a| a.jwt.as_str())
    }

    /// The system account an operator JWT names.
    pub fn system_account(&self) -> Option<&str> {
        self.system_account.as_deref()
    }

    /// The verified claims of account `key` at `now` (Unix seconds).
    pub fn account(&self, key: &str, now: i64) -> Result<Claims<AccountNats>, AuthError> {
        self.verified(key, now).cloned()
    }

    /// [`Trust::account`] without the copy: the signature was checked when
    /// the JWT was stored, so only the clock and the issuer's trust are.
    fn verified(&self, key: &str, now: i64) -> Result<&Claims<AccountNats>, AuthError> {
        let stored = self
            .accounts
            .get(key)
            .ok_or_else(|| AuthError::UnknownAccount(key.to_owned()))?;
        let claims = stored
            .claims
            .as_ref()
            .map_err(|e| AuthError::AccountJwt(e.clone()))?;
        jwt::expect_type(&claims.nats.kind, "account").map_err(AuthError::AccountJwt)?;
        claims.check_time(now).map_err(AuthError::AccountJwt)?;
        claims.nats.validate().map_err(AuthError::AccountJwt)?;
        if claims.sub != key {
            return Err(AuthError::UnknownAccount(key.to_owned()));
        }
        if !self.operator_keys.contains(&claims.iss) {
            return Err(AuthError::UntrustedIssuer(claims.iss.clone()));
        }
        Ok(claims)
    }

    /// Every known account that verifies at `now`, with the exports and
    /// imports of its JWT, plus a log line for each one refused. A private
    /// (`token_req`) export admits exactly the importers whose activation
    /// token the exporter signed for them.
    pub fn account_configs(&self, now: i64) -> (Vec<AccountConfig>, Vec<String>) {
        let mut problems = Vec::new();
        let mut claims = Vec::new();
        let mut activations = Vec::new();
        for (key, stored) in &self.accounts {
            match self.verified(key, now) {
                Ok(c) => {
                    claims.push(c);
                    activations.push(&stored.activations);
                }
                Err(e) => problems.push(format!("account {key} not loaded: {e}")),
            }
        }
        let mut configs: Vec<AccountConfig> = claims.iter().copied().map(config_of).collect();
        for (i, importer) in claims.iter().enumerate() {
            for (imp, token) in importer.nats.imports.iter().zip(activations[i]) {
                let Some(import) = import_of(imp) else {
                    continue;
                };
                if let Some(token) = token {
                    match activation(&claims, imp, token, &importer.sub, now) {
                        Ok(()) => admit(&mut configs, &import, &importer.sub),
                        Err(e) => problems
                            .push(format!("activation token of {} refused: {e}", importer.sub)),
                    }
                }
                configs[i].imports.push(import);
            }
        }
        (configs, problems)
    }

    /// The earliest `exp` later than `now` (Unix seconds) of the account
    /// JWTs that verify at `now` and of the activation tokens their imports
    /// carry: when the accounts and imports in force next change without
    /// a claim update. `None` when nothing in force expires.
    pub fn next_expiry(&self, now: i64) -> Option<i64> {
        let mut next: Option<i64> = None;
        for (key, stored) in &self.accounts {
            let Ok(account) = self.verified(key, now) else {
                continue;
            };
            let tokens = stored
                .activations
                .iter()
                .filter_map(|t| t.as_ref()?.as_ref().ok())
                .map(|t| t.exp);
            for exp in tokens.chain([account.exp]).filter(|&exp| exp > now) {
                next = Some(next.map_or(exp, |n| n.min(exp)));
            }
        }
        next
    }

    /// The keys of the stored account JWTs whose `exp` lies in
    /// (`after`, `upto`] (Unix seconds): the accounts that expired in
    /// between, sorted.
    pub fn expired_between(&self, after: i64, upto: i64) -> Vec<String> {
        self.accounts
            .iter()
            .filter(|(_, stored)| {
                stored
                    .as_account()
                    .is_ok_and(|c| c.exp > after && c.exp <= upto)
            })
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Authenticates a CONNECT carrying a user JWT at `now` (Unix seconds).
    /// `peer` and `connection_type` are checked against the user's `src` and
    /// `allowed_connection_types`, `now` against its `times`.
    pub fn authenticate(
        &self,
        connect: &ConnectInfo,
        nonce: Option<&str>,
        now: i64,
        peer: IpAddr,
        connection_type: &str,
    ) -> Result<JwtIdentity, AuthError> {
        let text = connect
            .jwt
            .as_deref()
            .ok_or(AuthError::MissingCredentials)?;
        let user: Claims<UserNats> = jwt::decode(text).map_err(AuthError::UserJwt)?;
        jwt::expect_type(&user.nats.kind, "user").map_err(AuthError::UserJwt)?;
        user.check_time(now).map_err(AuthError::UserJwt)?;
        nkey::decode_public(&user.sub, KeyRole::User).map_err(|why| AuthError::BadSignature {
            key: user.sub.clone(),
            why,
        })?;
        let account_key = if user.nats.issuer_account.is_empty() {
            &user.iss
        } else {
            &user.nats.issuer_account
        };
        let account = self.verified(account_key, now)?;
        let scope = issuer_scope(account, &user.iss)?;
        if is_revoked(&account.nats.revocations, &user.sub, user.iat) {
            return Err(AuthError::Revoked(user.sub.clone()));
        }
        if user.nats.bearer_token && account.nats.limits.disallow_bearer {
            return Err(AuthError::BearerNotAllowed(user.sub.clone()));
        }
        if !user.nats.bearer_token {
            let nonce = nonce.ok_or(AuthError::NoNonce)?;
            let bad = |why| AuthError::BadSignature {
                key: user.sub.clone(),
                why,
            };
            let sig =
                nkey::decode_signature(connect.sig.as_deref().unwrap_or_default()).map_err(bad)?;
            nkey::verify(&user.sub, KeyRole::User, nonce.as_bytes(), &sig).map_err(bad)?;
        }
        let window_end = restrictions::check(&user.nats.limits, peer, now, connection_type)
            .map_err(|why| AuthError::Restricted {
                user: user.sub.clone(),
                why,
            })?;
        if scope.is_some() && !user_is_bare(&user.nats) {
            return Err(AuthError::ScopedUserHasPermissions(user.sub.clone()));
        }
        let user_limits = match scope {
            Some(template) => UserLimits {
                subs: template.subs,
                payload: template.payload,
            },
            None => UserLimits {
                subs: user.nats.limits.subs,
                payload: user.nats.limits.payload,
            },
        };
        let permissions = match scope.map(|t| &t.permissions) {
            Some(template) => {
                let ctx = TemplateContext {
                    name: &user.name,
                    subject: &user.sub,
                    account_name: &account.name,
                    account_subject: &account.sub,
                    tags: &user.nats.tags,
                    account_tags: &account.nats.tags,
                };
                // The scoped key's template is the user's whole permission set.
                let expanded = expand(template, &ctx).map_err(AuthError::Template)?;
                Some(permissions_of(&expanded).unwrap_or_default())
            }
            None => permissions_of(&user.nats.permissions).or_else(|| {
                account
                    .nats
                    .default_permissions
                    .as_ref()
                    .and_then(permissions_of)
            }),
        };
        Ok(JwtIdentity {
            user: user.sub.clone(),
            name: user.name.clone(),
            account: account.sub.clone(),
            permissions,
            issued_at: user.iat,
            // nats-server also disconnects when the `times` window ends.
            expires_at: (user.exp > 0)
                .then_some(user.exp)
                .into_iter()
                .chain(window_end)
                .min(),
            user_limits,
            account_limits: account.nats.limits.clone(),
            bearer_token: user.nats.bearer_token,
        })
    }
}

/// The user's issuer must be the account or one of its signing keys; a
/// scoped key imposes its template's permissions.
fn issuer_scope<'a>(
    account: &'a Claims<AccountNats>,
    iss: &str,
) -> Result<Option<&'a ScopeTemplate>, AuthError> {
    if iss == account.sub {
        return Ok(None);
    }
    match account.nats.signing_keys.iter().find(|k| k.key() == iss) {
        Some(SigningKey::Plain(_)) => Ok(None),
        Some(SigningKey::Scoped { template, .. }) => Ok(Some(template)),
        None => Err(AuthError::UntrustedIssuer(iss.to_owned())),
    }
}

/// nats-server revokes users issued at or before the revocation time, by
/// key or for everyone (`*`).
fn is_revoked(revocations: &BTreeMap<String, i64>, user: &str, issued_at: i64) -> bool {
    [user, "*"]
        .iter()
        .any(|k| revocations.get(*k).is_some_and(|&at| issued_at <= at))
}

/// Only an operator (or its signing key) or an account may issue an
/// account JWT.
fn check_account_issuer(claims: &Claims<AccountNats>) -> Result<(), JwtError> {
    match nkey::role_of(&claims.iss) {
        Some(KeyRole::Operator | KeyRole::Account) => Ok(()),
        _ => Err(JwtError::UnexpectedIssuer("[account operator]")),
    }
}

fn permissions_of(p: &UserPermissionClaims) -> Option<Permissions> {
    let direction = |c: &jwt::PermissionClaim| {
        (c.allow.is_some() || c.deny.is_some()).then(|| SubjectPermission {
            allow: c.allow.clone().unwrap_or_default(),
            deny: c.deny.clone().unwrap_or_default(),
        })
    };
    let responses = p.resp.as_ref().map(|r| ResponsePermission::from_limits(r.max, r.ttl));
    let mut publish = direction(&p.publish);
    if responses.is_some() && publish.is_none() {
        // As with config permissions: allowing responses turns off the blanket publish allow.
        publish = Some(SubjectPermission::default());
    }
    let perms = Permissions {
        publish,
        subscribe: direction(&p.subscribe),
        allow_responses: responses,
    };
    (perms != Permissions::default()).then_some(perms)
}

/// The marker that keeps a private export closed until an activation token opens it.
const TOKEN_REQUIRED: &str = "";

fn kind_of(kind: &str) -> Option<ImportKind> {
    match kind.to_ascii_lowercase().as_str() {
        "stream" => Some(ImportKind::Stream),
        "service" => Some(ImportKind::Service),
        _ => None,
    }
}

fn config_of(account: &Claims<AccountNats>) -> AccountConfig {
    let exports = account.nats.exports.iter().filter_map(export_of).collect();
    AccountConfig {
        name: account.sub.clone(),
        exports,
        imports: Vec::new(),
        jetstream: account_jetstream(&account.nats.limits),
        mappings: mappings_of(account),
    }
}

/// The account's mappings; nats-server leaves out those it cannot add.
fn mappings_of(account: &Claims<AccountNats>) -> Vec<crate::account::mapping::MappingConfig> {
    use crate::account::mapping::{MapDest, Mapping, MappingConfig};
    account
        .nats
        .mappings
        .iter()
        .map(|(subject, dests)| MappingConfig {
            subject: subject.clone(),
            dests: dests
                .iter()
                .map(|d| MapDest {
                    subject: d.subject.clone(),
                    weight: if d.weight == 0 { 100 } else { d.weight },
                    cluster: d.cluster.clone(),
                })
                .collect(),
        })
        .filter(|m| Mapping::new(m).is_ok())
        .collect()
}

/// The JetStream limits an account JWT gives (`None`: JetStream is off for
/// it). One node serves the `R1` tier.
fn account_jetstream(limits: &jwt::AccountLimitClaims) -> Option<AccountLimits> {
    let js = &limits.jetstream;
    let claims = if js.mem_storage != 0 || js.disk_storage != 0 {
        js.clone()
    } else if limits.tiered_limits.is_empty() {
        return None;
    } else {
        // Tiers without one for a single replica allow nothing here.
        limits.tiered_limits.get("R1").cloned().unwrap_or_default()
    };
    let unlimited_unless_positive = |v: i64| if v > 0 { v } else { -1 };
    Some(AccountLimits {
        max_memory: claims.mem_storage,
        max_storage: claims.disk_storage,
        max_streams: claims.streams,
        max_consumers: claims.consumer,
        max_ack_pending: unlimited_unless_positive(claims.max_ack_pending),
        memory_max_stream_bytes: unlimited_unless_positive(claims.mem_max_stream_bytes),
        storage_max_stream_bytes: unlimited_unless_positive(claims.disk_max_stream_bytes),
        max_bytes_required: claims.max_bytes_required,
    })
}

fn export_of(e: &ExportClaim) -> Option<Export> {
    let response_type = match e.response_type.to_ascii_lowercase().as_str() {
        "stream" => ResponseType::Stream,
        "chunked" => ResponseType::Chunked,
        _ => ResponseType::Singleton,
    };
    let threshold = u64::try_from(e.response_threshold).ok().filter(|&n| n > 0);
    Some(Export {
        kind: kind_of(&e.kind)?,
        subject: e.subject.clone(),
        accounts: if e.token_req {
            vec![TOKEN_REQUIRED.to_owned()]
        } else {
            Vec::new()
        },
        response_type,
        response_threshold: threshold
            .map_or(DEFAULT_RESPONSE_THRESHOLD, std::time::Duration::from_nanos),
    })
}

fn import_of(i: &ImportClaim) -> Option<Import> {
    let kind = kind_of(&i.kind)?;
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let (to, prefix) = match kind {
        // A stream's `to` is the older prefix form; `local_subject` maps.
        ImportKind::Stream => (non_empty(&i.local_subject), non_empty(&i.to)),
        ImportKind::Service => (
            non_empty(&i.local_subject).or_else(|| non_empty(&i.to)),
            None,
        ),
    };
    Some(Import {
        kind,
        account: i.account.clone(),
        subject: i.subject.clone(),
        to,
        prefix,
    })
}

/// Checks an activation token at `now` (Unix seconds): issued by the
/// exporter (or a signing key of it) to `importer`, for a subject covering
/// the import, not expired, and not revoked by the export.
fn activation(
    accounts: &[&Claims<AccountNats>],
    imp: &ImportClaim,
    token: &Result<Claims<ActivationNats>, JwtError>,
    importer: &str,
    now: i64,
) -> Result<(), AuthError> {
    let token = token
        .as_ref()
        .map_err(|e| AuthError::AccountJwt(e.clone()))?;
    jwt::expect_type(&token.nats.kind, "activation").map_err(AuthError::AccountJwt)?;
    token.check_time(now).map_err(AuthError::AccountJwt)?;
    let exporter = accounts
        .iter()
        .find(|a| a.sub == imp.account)
        .ok_or_else(|| AuthError::UnknownAccount(imp.account.clone()))?;
    let issuer_ok = token.iss == exporter.sub
        || exporter
            .nats
            .signing_keys
            .iter()
            .any(|k| k.key() == token.iss);
    if !issuer_ok || token.sub != importer {
        return Err(AuthError::UntrustedIssuer(token.iss.clone()));
    }
    if !crate::subject::subject_is_subset(imp.subject.as_bytes(), token.nats.subject.as_bytes()) {
        return Err(AuthError::UntrustedIssuer(token.iss.clone()));
    }
    let revoked = exporter
        .nats
        .exports
        .iter()
        .filter(|e| crate::subject::subject_is_subset(imp.subject.as_bytes(), e.subject.as_bytes()))
        .flat_map(|e| [importer, "*"].map(|k| e.revocations.get(k)))
        .any(|at| at.is_some_and(|&at| token.iat <= at));
    if revoked {
        return Err(AuthError::ActivationRevoked(importer.to_owned()));
    }
    Ok(())
}

/// Opens the private export matching `import` to `importer`.
fn admit(configs: &mut [AccountConfig], import: &Import, importer: &str) {
    let Some(exporter) = configs.iter_mut().find(|c| c.name == import.account) else {
        return;
    };
    for e in &mut exporter.exports {
        if e.kind == import.kind
            && crate::subject::subject_is_subset(import.subject.as_bytes(), e.subject.as_bytes())
        {
            e.accounts.push(importer.to_owned());
        }
    }
}

/// True when a user JWT carries no permissions, limits or restrictions of
/// its own: what nats-server requires of users of a scoped signing key.
fn user_is_bare(user: &UserNats) -> bool {
    user.permissions == UserPermissionClaims::default()
        && user.limits == jwt::UserLimitClaims::default()
        && !user.bearer_token
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(json: &str) -> Option<AccountLimits> {
        account_jetstream(&serde_json::from_str(json).expect("limits parse"))
    }

    #[test]
    fn jetstream_is_on_when_a_jwt_gives_it_storage() {
        assert_eq!(limits(r#"{"subs":-1,"conn":-1}"#), None);
        let on = limits(r#"{"mem_storage":-1,"disk_storage":1000,"streams":5,"consumer":-1,"max_ack_pending":0,"mem_max_stream_bytes":10}"#)
            .expect("on");
        assert_eq!((on.max_memory, on.max_storage, on.max_streams, on.max_consumers), (-1, 1000, 5, -1));
        // Zero or less in the per-stream and ack limits means unlimited.
        assert_eq!((on.max_ack_pending, on.memory_max_stream_bytes, on.storage_max_stream_bytes), (-1, 10, -1));
    }

    #[test]
    fn one_node_uses_the_r1_tier() {
        let on = limits(r#"{"tiered_limits":{"R1":{"mem_storage":5,"disk_storage":6,"streams":7},"R3":{"disk_storage":99}}}"#);
        let on = on.expect("on");
        assert_eq!((on.max_memory, on.max_storage, on.max_streams), (5, 6, 7));
        let none = limits(r#"{"tiered_limits":{"R3":{"disk_storage":99}}}"#).expect("on, with nothing allowed");
        assert_eq!((none.max_memory, none.max_storage, none.max_streams), (0, 0, 0));
    }
}
