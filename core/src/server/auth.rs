//! Who a connecting client is: the configured users, or in operator mode a
//! user JWT checked against the trusted operators; and which account that
//! puts the client in.

use crate::auth::{self, AuthError, Identity, Trust};
use crate::log::Level;
use crate::protocol::ConnectInfo;
use crate::time::{Instant, UnixNanos};

use super::Account;
use super::client::JwtLimits;
use super::{Control, Slot};

impl Control {
    /// Operator mode trusts the configured operator JWTs and materialises
    /// every preloaded account that verifies, with its JWT imports and
    /// exports. Config loading refuses operator JWTs that do not verify;
    /// should one get here anyway, the server trusts nothing rather than
    /// falling back to no auth.
    pub(crate) fn enter_operator_mode(&mut self, wall: UnixNanos) {
        if self.opts.operators.is_empty() {
            return;
        }
        let accounts = self.resolver_accounts();
        let trust =
            Trust::new(&self.opts.operators, &accounts).unwrap_or_else(|e| {
                self.log(Level::Error, format!("operator JWT refused: {e}"));
                Trust::default()
            });
        let (configs, problems) = trust.account_configs(wall.0.div_euclid(1_000_000_000));
        self.trust = Some(trust);
        for problem in problems {
            self.log(Level::Error, problem);
        }
        for config in &configs {
            self.account_index(Some(&config.name));
        }
        crate::account::routes::add_routes(&configs, &mut self.accounts);
        crate::account::routes::share_mappings(&configs, &self.accounts);
        if matches!(
            self.opts.resolver,
            Some(crate::config::Resolver::Nats { .. })
        ) {
            let system = self.opts.system_account.clone();
            let system = system
                .as_deref()
                .or(self.trust.as_ref().and_then(Trust::system_account))
                .map(str::to_owned);
            let index = self.account_index(Some(
                system.as_deref().unwrap_or(crate::account::routes::SYSTEM_ACCOUNT),
            ));
            self.accounts[index].system_services = true;
            self.accounts[index].share_routes();
        }
    }

    /// True when clients must authenticate before anything else.
    pub(crate) fn auth_required(&self) -> bool {
        self.trust.is_some() || self.opts.authorization.is_required()
    }

    /// True when INFO must carry a nonce for the client to sign.
    pub(crate) fn needs_nonce(&self) -> bool {
        self.trust.is_some() || auth::needs_nonce(&self.opts.authorization)
    }

    /// Authenticates a CONNECT from the client in `slot`.
    pub(crate) fn authenticate(
        &mut self,
        now: Instant,
        slot: Slot,
        info: &ConnectInfo,
    ) -> Result<Identity, AuthError> {
        let nonce = self.client(slot).and_then(|c| c.nonce.clone());
        let Some(trust) = &self.trust else {
            return auth::authenticate(
                &self.opts.authorization,
                self.opts.no_auth_user.as_deref(),
                info,
                nonce.as_deref(),
            );
        };
        let unix_secs = self.wall_at(now).0.div_euclid(1_000_000_000);
        let peer = self
            .client(slot)
            .map_or(core::net::IpAddr::from([0, 0, 0, 0]), |c| c.peer.ip());
        let user = trust.authenticate(
            info,
            nonce.as_deref(),
            unix_secs,
            peer,
            auth::restrictions::STANDARD,
        )?;
        if let Some(c) = self.client_mut(slot) {
            // Kept on the client: applied once its account is known, and again
            // whenever the account's claims change.
            c.jwt_limits = Some(Box::new(JwtLimits {
                user: user.user_limits,
                account: user.account_limits.clone(),
                bearer: user.bearer_token,
            }));
        }
        let jwt_user = Some((user.user.clone(), user.issued_at));
        let expires_at = user.expires_at;
        Ok(Identity {
            user: Some(if user.name.is_empty() {
                user.user
            } else {
                user.name
            }),
            account: Some(user.account),
            permissions: user.permissions,
            jwt_user,
            expires_at,
        })
    }

    /// The index of account `name` (`None` is `$G`). In operator mode an
    /// account is created when its first user connects.
    pub(crate) fn account_index(&mut self, name: Option<&str>) -> usize {
        let Some(name) = name else { return 0 };
        if let Some(i) = self.accounts.iter().position(|a| a.name == name) {
            return i;
        }
        if self.trust.is_none() {
            return 0;
        }
        let cache = !self.opts.disable_sublist_cache;
        let mut account = Account::new(name, cache, rand_core::RngCore::next_u64(&mut self.rng));
        account.reply_prefix = crate::account::routes::reply_prefix(&mut self.rng);
        account.system_services = self.system_services_on();
        account.share_routes();
        if let Some(js) = &self.jetstream {
            account.shared.share_stream_subjects(js.subjects(name));
        }
        self.accounts.push(account);
        self.accounts.len() - 1
    }
}
