//! Authentication of a client's CONNECT against the configured users.
//!
//! This covers the `authorization {}` block, the users of `accounts {}` and
//! the `--user/--pass/--auth` flags: a single user, a token, a list of users
//! with plain or bcrypt passwords, and nkey users who sign the server's
//! nonce. Permissions and accounts build on the [`Identity`] this returns.

pub mod bcrypt;
pub mod jwt;
pub mod nkey;
pub mod operator;
pub mod permissions;
pub mod restrictions;
pub mod template;

pub use operator::{JwtIdentity, Trust};
pub use permissions::ClientPermissions;

/// Checks the operator JWTs (and preloaded account JWTs) a config names,
/// as [`crate::config::load`] asks: each operator JWT self-signed by an
/// operator key.
pub fn verify_operators(
    operators: &[String],
    preload: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    Trust::new(operators, preload).map(drop).map_err(|e| e.to_string())
}

use crate::config::{Authorization, Permissions};
use crate::protocol::ConnectInfo;

/// Who a client turned out to be.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Identity {
    /// The user name, when there is one.
    pub user: Option<String>,
    /// The account the user belongs to; `None` is the global account `$G`.
    pub account: Option<String>,
    /// The user's permissions; `None` allows everything.
    pub permissions: Option<Permissions>,
    /// A JWT user's public key and `iat`, to apply later revocations.
    pub jwt_user: Option<(String, i64)>,
    /// When the credentials expire (a user JWT's `exp`), Unix seconds.
    pub expires_at: Option<i64>,
}

/// Why a CONNECT was refused. Clients only ever see
/// `-ERR 'Authorization Violation'`; the reason goes to the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials where some are required.
    #[error("no credentials provided")]
    MissingCredentials,
    /// The token did not match.
    #[error("invalid token")]
    BadToken,
    /// No such user, or the password did not match.
    #[error("user {0:?} failed to authenticate")]
    BadUserPassword(String),
    /// The nkey is not one of the configured nkey users.
    #[error("unknown nkey {0:?}")]
    UnknownNkey(String),
    /// The nkey user's signature of the nonce is missing or wrong.
    #[error("nkey {key:?} signature: {why}")]
    BadSignature {
        /// The nkey.
        key: String,
        /// What was wrong.
        why: nkey::NkeyError,
    },
    /// An nkey was given but the server sent no nonce to sign.
    #[error("nkey given without a nonce to sign")]
    NoNonce,
    /// The user JWT is malformed, badly signed or expired.
    #[error("user JWT: {0}")]
    UserJwt(jwt::JwtError),
    /// The account JWT is malformed, badly signed or expired.
    #[error("account JWT: {0}")]
    AccountJwt(jwt::JwtError),
    /// The resolver knows no such account.
    #[error("account {0:?} not found")]
    UnknownAccount(String),
    /// A JWT's issuer is not trusted for it.
    #[error("issuer {0:?} is not trusted")]
    UntrustedIssuer(String),
    /// A scoped signing key's template does not expand for this user.
    #[error("scoped signing key template: {0}")]
    Template(template::TemplateError),
    /// A user of a scoped signing key carries permissions or limits itself.
    #[error("user {0:?}: scoped users require no permissions or limits set")]
    ScopedUserHasPermissions(String),
    /// The user may not connect from this address, at this time or this way.
    #[error("user {user:?}: {why}")]
    Restricted {
        /// The user's public key.
        user: String,
        /// Which restriction.
        why: restrictions::RestrictionError,
    },
    /// The account revoked this user.
    #[error("user {0:?} has been revoked")]
    Revoked(String),
    /// A bearer user JWT in an account whose `limits.disallow_bearer` is set.
    #[error("account does not allow bearer tokens (user {0:?})")]
    BearerNotAllowed(String),
    /// An activation token issued before the exporter revoked it.
    #[error("activation token for {0:?} has been revoked")]
    ActivationRevoked(String),
}

/// Checks `connect` against `auth`. `no_auth_user` is the user a client
/// without credentials becomes, as nats-server's `no_auth_user`; `nonce`
/// is what the server sent in INFO for nkey users to sign.
pub fn authenticate(
    auth: &Authorization,
    no_auth_user: Option<&str>,
    connect: &ConnectInfo,
    nonce: Option<&str>,
) -> Result<Identity, AuthError> {
    authenticate_as(auth, no_auth_user, connect, nonce, restrictions::STANDARD)
}

/// [`authenticate`] for a client of `connection_type` (`STANDARD`,
/// `WEBSOCKET`, `MQTT`…), which a user's `allowed_connection_types` must allow.
pub fn authenticate_as(
    auth: &Authorization,
    no_auth_user: Option<&str>,
    connect: &ConnectInfo,
    nonce: Option<&str>,
    connection_type: &str,
) -> Result<Identity, AuthError> {
    if !auth.is_required() {
        return Ok(Identity::default());
    }
    if let Some(key) = connect.nkey.as_deref() {
        return authenticate_nkey(auth, key, connect.sig.as_deref(), nonce, connection_type);
    }
    if let Some(token) = &auth.token {
        return match connect.auth_token.as_deref() {
            Some(given) if secret_matches(token, given) => Ok(Identity {
                permissions: auth.default_permissions.clone(),
                ..Identity::default()
            }),
            Some(_) => Err(AuthError::BadToken),
            None => Err(AuthError::MissingCredentials),
        };
    }
    let given_user = match connect.user.as_deref() {
        Some(u) => u,
        None => match no_auth_user {
            Some(u) if connect.pass.is_none() && connect.auth_token.is_none() => {
                return lookup_no_auth_user(auth, u, connection_type)
            }
            _ => return Err(AuthError::MissingCredentials),
        },
    };
    authenticate_password(
        auth,
        given_user,
        connect.pass.as_deref().unwrap_or_default(),
        connection_type,
    )
}

/// True when nkey users are configured, so INFO must carry a nonce.
pub fn needs_nonce(auth: &Authorization) -> bool {
    auth.users.iter().any(|u| u.nkey.is_some())
}

fn authenticate_nkey(
    auth: &Authorization,
    key: &str,
    sig: Option<&str>,
    nonce: Option<&str>,
    connection_type: &str,
) -> Result<Identity, AuthError> {
    let user = auth
        .users
        .iter()
        .find(|u| u.nkey.as_deref() == Some(key))
        .ok_or_else(|| AuthError::UnknownNkey(key.to_owned()))?;
    let nonce = nonce.ok_or(AuthError::NoNonce)?;
    let bad = |why| AuthError::BadSignature {
        key: key.to_owned(),
        why,
    };
    let sig = nkey::decode_signature(sig.unwrap_or_default()).map_err(bad)?;
    nkey::verify(key, nkey::KeyRole::User, nonce.as_bytes(), &sig).map_err(bad)?;
    let mut identity = identity_of(auth, user, connection_type)?;
    identity.user = Some(key.to_owned());
    Ok(identity)
}

fn authenticate_password(
    auth: &Authorization,
    given_user: &str,
    given_pass: &str,
    connection_type: &str,
) -> Result<Identity, AuthError> {
    if let (Some(user), Some(pass)) = (&auth.user, &auth.password) {
        if user == given_user && secret_matches(pass, given_pass) {
            return Ok(Identity {
                user: Some(user.clone()),
                permissions: auth.default_permissions.clone(),
                ..Identity::default()
            });
        }
    }
    for u in &auth.users {
        if u.nkey.is_none()
            && u.user == given_user
            && u.password
                .as_deref()
                .is_some_and(|p| secret_matches(p, given_pass))
        {
            return identity_of(auth, u, connection_type);
        }
    }
    Err(AuthError::BadUserPassword(given_user.to_owned()))
}

/// The identity of configured user `u`, if it may connect as a client of `connection_type`.
fn identity_of(auth: &Authorization, u: &crate::config::User, connection_type: &str) -> Result<Identity, AuthError> {
    restrictions::check_connection_type(&u.allowed_connection_types, connection_type)
        .map_err(|why| AuthError::Restricted {
            user: u.nkey.clone().unwrap_or_else(|| u.user.clone()),
            why,
        })?;
    Ok(Identity {
        user: Some(u.user.clone()),
        account: u.account.clone(),
        // Top-level default permissions are not for users of `accounts {}`;
        // those took their account's defaults when the config was read.
        permissions: u.permissions.clone().or_else(|| {
            if u.account.is_some() {
                None
            } else {
                auth.default_permissions.clone()
            }
        }),
        jwt_user: None,
        expires_at: None,
    })
}

fn lookup_no_auth_user(auth: &Authorization, name: &str, connection_type: &str) -> Result<Identity, AuthError> {
    auth.users
        .iter()
        .find(|u| u.user == name)
        .ok_or(AuthError::MissingCredentials)
        .and_then(|u| identity_of(auth, u, connection_type))
}

/// Compares a configured secret (plain, or a bcrypt hash `$2a$…`) with a
/// given one, in time independent of where they differ.
fn secret_matches(configured: &str, given: &str) -> bool {
    if bcrypt::is_bcrypt(configured) {
        return bcrypt::verify(configured, given);
    }
    let (a, b) = (configured.as_bytes(), given.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::User;

    fn connect(user: Option<&str>, pass: Option<&str>, token: Option<&str>) -> ConnectInfo {
        ConnectInfo {
            user: user.map(str::to_owned),
            pass: pass.map(str::to_owned),
            auth_token: token.map(str::to_owned),
            ..ConnectInfo::default()
        }
    }

    #[test]
    fn open_server_accepts_anyone() {
        let auth = Authorization::default();
        assert!(authenticate(&auth, None, &connect(None, None, None), None).is_ok());
    }

    #[test]
    fn token_must_match() {
        let auth = Authorization {
            token: Some("s3cr3t".into()),
            ..Authorization::default()
        };
        assert!(authenticate(&auth, None, &connect(None, None, Some("s3cr3t")), None).is_ok());
        assert_eq!(
            authenticate(&auth, None, &connect(None, None, Some("nope")), None),
            Err(AuthError::BadToken)
        );
        assert_eq!(
            authenticate(&auth, None, &connect(None, None, None), None),
            Err(AuthError::MissingCredentials)
        );
    }

    #[test]
    fn single_user_and_user_list() {
        let auth = Authorization {
            user: Some("a".into()),
            password: Some("pa".into()),
            users: vec![User {
                user: "b".into(),
                password: Some("pb".into()),
                ..User::default()
            }],
            ..Authorization::default()
        };
        assert!(authenticate(&auth, None, &connect(Some("a"), Some("pa"), None), None).is_ok());
        let b = authenticate(&auth, None, &connect(Some("b"), Some("pb"), None), None).unwrap();
        assert_eq!(b.user.as_deref(), Some("b"));
        assert!(authenticate(&auth, None, &connect(Some("b"), Some("pa"), None), None).is_err());
        assert!(authenticate(&auth, None, &connect(Some("c"), Some("pc"), None), None).is_err());
        assert!(authenticate(&auth, Some("b"), &connect(None, None, None), None).is_ok());
        assert!(authenticate(&auth, Some("zz"), &connect(None, None, None), None).is_err());
    }
}
