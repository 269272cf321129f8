//! Operator mode (decentralized auth): the server trusts operator JWTs,
//! finds account JWTs through a resolver (`MEMORY` with
//! `resolver_preload`), and a client proves itself with a user JWT signed
//! by its account (or one of the account's signing keys) plus a signature
//! of the server's nonce by the user's nkey.

use std::collections::BTreeMap;

use super::jwt::{
    self, AccountNats, Claims, JwtError, OperatorNats, SigningKey, UserNats, UserPermissionClaims,
};
use super::nkey::{self, KeyRole};
use super::AuthError;
use crate::config::{Permissions, ResponsePermission, SubjectPermission};
use crate::protocol::ConnectInfo;

/// What the server trusts in operator mode.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    /// Operator identity and signing keys: issuers accounts may have.
    operator_keys: Vec<String>,
    /// The system account named by an operator JWT, if any.
    system_account: Option<String>,
    /// Account public key → account JWT (`resolver_preload`).
    accounts: BTreeMap<String, String>,
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
}

impl Trust {
    /// Trusts these operator JWTs (each verified as self-signed by an
    /// operator key) and knows these account JWTs.
    pub fn new(
        operator_jwts: &[String],
        preload: &BTreeMap<String, String>,
    ) -> Result<Trust, JwtError> {
        let mut trust = Trust {
            accounts: preload.clone(),
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

    /// The system account an operator JWT names.
    pub fn system_account(&self) -> Option<&str> {
        self.system_account.as_deref()
    }

    /// The verified claims of account `key` at `now` (Unix seconds).
    pub fn account(&self, key: &str, now: i64) -> Result<Claims<AccountNats>, AuthError> {
        let text = self
            .accounts
            .get(key)
            .ok_or_else(|| AuthError::UnknownAccount(key.to_owned()))?;
        let claims: Claims<AccountNats> = jwt::decode(text).map_err(AuthError::AccountJwt)?;
        jwt::expect_type(&claims.nats.kind, "account").map_err(AuthError::AccountJwt)?;
        claims.check_time(now).map_err(AuthError::AccountJwt)?;
        if claims.sub != key {
            return Err(AuthError::UnknownAccount(key.to_owned()));
        }
        if !self.operator_keys.contains(&claims.iss) {
            return Err(AuthError::UntrustedIssuer(claims.iss));
        }
        Ok(claims)
    }

    /// Authenticates a CONNECT carrying a user JWT at `now` (Unix seconds).
    pub fn authenticate(
        &self,
        connect: &ConnectInfo,
        nonce: Option<&str>,
        now: i64,
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
        let account = self.account(account_key, now)?;
        let scope = issuer_scope(&account, &user.iss)?;
        if is_revoked(&account.nats, &user.sub, user.iat) {
            return Err(AuthError::Revoked(user.sub.clone()));
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
        let claims = scope.unwrap_or(&user.nats.permissions);
        let permissions = permissions_of(claims).or_else(|| {
            account
                .nats
                .default_permissions
                .as_ref()
                .and_then(permissions_of)
        });
        Ok(JwtIdentity {
            user: user.sub.clone(),
            name: user.name.clone(),
            account: account.sub.clone(),
            permissions,
        })
    }
}

/// The user's issuer must be the account or one of its signing keys; a
/// scoped key imposes its template's permissions.
fn issuer_scope<'a>(
    account: &'a Claims<AccountNats>,
    iss: &str,
) -> Result<Option<&'a UserPermissionClaims>, AuthError> {
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
fn is_revoked(account: &AccountNats, user: &str, issued_at: i64) -> bool {
    [user, "*"].iter().any(|k| {
        account
            .revocations
            .get(*k)
            .is_some_and(|&at| issued_at <= at)
    })
}

fn permissions_of(p: &UserPermissionClaims) -> Option<Permissions> {
    let direction = |c: &jwt::PermissionClaim| {
        (c.allow.is_some() || c.deny.is_some()).then(|| SubjectPermission {
            allow: c.allow.clone().unwrap_or_default(),
            deny: c.deny.clone().unwrap_or_default(),
        })
    };
    let responses = p.resp.as_ref().map(|r| ResponsePermission {
        max_msgs: u32::try_from(r.max).ok().filter(|&m| m > 0).unwrap_or(1),
        expires: std::time::Duration::from_nanos(u64::try_from(r.ttl).unwrap_or(0)),
    });
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
