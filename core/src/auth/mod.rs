//! Authentication of a client's CONNECT against the configured users.
//!
//! This covers the `authorization {}` block and the `--user/--pass/--auth`
//! flags: a single user, a token, or a list of users. Permissions, accounts,
//! nkeys and JWTs build on the [`Identity`] this returns.

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
}

/// Checks `connect` against `auth`. `no_auth_user` is the user a client
/// without credentials becomes, as nats-server's `no_auth_user`.
pub fn authenticate(
    auth: &Authorization,
    no_auth_user: Option<&str>,
    connect: &ConnectInfo,
) -> Result<Identity, AuthError> {
    if !auth.is_required() {
        return Ok(Identity::default());
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
                return lookup_no_auth_user(auth, u)
            }
            _ => return Err(AuthError::MissingCredentials),
        },
    };
    let given_pass = connect.pass.as_deref().unwrap_or_default();
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
        if u.user == given_user && u.password.as_deref().is_some_and(|p| secret_matches(p, given_pass)) {
            return Ok(identity_of(auth, u));
        }
    }
    Err(AuthError::BadUserPassword(given_user.to_owned()))
}

fn identity_of(auth: &Authorization, u: &crate::config::User) -> Identity {
    Identity {
        user: Some(u.user.clone()),
        account: u.account.clone(),
        permissions: u.permissions.clone().or_else(|| auth.default_permissions.clone()),
    }
}

fn lookup_no_auth_user(auth: &Authorization, name: &str) -> Result<Identity, AuthError> {
    auth.users
        .iter()
        .find(|u| u.user == name)
        .map(|u| identity_of(auth, u))
        .ok_or(AuthError::MissingCredentials)
}

/// Compares a configured secret with a given one in time independent of
/// where they differ. Bcrypt hashes (`$2a$…`) are verified by the
/// accounts/users layer; a hash configured here never matches plain text.
fn secret_matches(configured: &str, given: &str) -> bool {
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
        assert!(authenticate(&auth, None, &connect(None, None, None)).is_ok());
    }

    #[test]
    fn token_must_match() {
        let auth = Authorization { token: Some("s3cr3t".into()), ..Authorization::default() };
        assert!(authenticate(&auth, None, &connect(None, None, Some("s3cr3t"))).is_ok());
        assert_eq!(authenticate(&auth, None, &connect(None, None, Some("nope"))), Err(AuthError::BadToken));
        assert_eq!(authenticate(&auth, None, &connect(None, None, None)), Err(AuthError::MissingCredentials));
    }

    #[test]
    fn single_user_and_user_list() {
        let auth = Authorization {
            user: Some("a".into()),
            password: Some("pa".into()),
            users: vec![User { user: "b".into(), password: Some("pb".into()), ..User::default() }],
            ..Authorization::default()
        };
        assert!(authenticate(&auth, None, &connect(Some("a"), Some("pa"), None)).is_ok());
        let b = authenticate(&auth, None, &connect(Some("b"), Some("pb"), None)).unwrap();
        assert_eq!(b.user.as_deref(), Some("b"));
        assert!(authenticate(&auth, None, &connect(Some("b"), Some("pa"), None)).is_err());
        assert!(authenticate(&auth, None, &connect(Some("c"), Some("pc"), None)).is_err());
        assert!(authenticate(&auth, Some("b"), &connect(None, None, None)).is_ok());
        assert!(authenticate(&auth, Some("zz"), &connect(None, None, None)).is_err());
    }
}
