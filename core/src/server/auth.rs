//! Who a connecting client is: the configured users, or in operator mode a
//! user JWT checked against the trusted operators; and which account that
//! puts the client in.

use crate::auth::{self, AuthError, Identity, Trust};
use crate::log::Level;
use crate::protocol::ConnectInfo;
use crate::time::{Instant, UnixNanos};

use super::Account;
use super::client::JwtLimits;
use super::{Control, PlainAuth, Slot, Transport};
use std::sync::Arc;

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

    /// [`Control::auth_required`] for clients of `transport`, whose block
    /// may require credentials the server does not (nats-server's auth override).
    pub(crate) fn auth_required_via(&self, transport: Transport) -> bool {
        match &self.plain_auth {
            Some(by) => by[transport as usize].authorization.is_required(),
            None => self.auth_required(),
        }
    }

    /// How long a client of `transport` has to authenticate: its block's
    /// `authorization { timeout }` when set, else the server's.
    pub(crate) fn auth_timeout_via(&self, transport: Transport) -> std::time::Duration {
        let own = match transport {
            Transport::Tcp => None,
            Transport::Websocket => self.opts.websocket.auth_timeout,
            Transport::Mqtt => self.opts.mqtt.auth_timeout,
        };
        own.filter(|t| !t.is_zero()).unwrap_or(self.opts.auth_timeout)
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
        let transport = self.client(slot).map_or(Transport::Tcp, |c| c.transport);
        let Some(trust) = &self.trust else {
            let users = self.plain_auth.as_ref().map(|by| Arc::clone(&by[transport as usize]));
            let users = users.unwrap_or_else(|| Arc::new(PlainAuth::for_transport(&self.opts, transport)));
            return auth::authenticate_as(
                &users.authorization,
                users.no_auth_user.as_deref(),
                info,
                nonce.as_deref(),
                users.connection_type,
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
            transport.connection_type(),
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

impl PlainAuth {
    /// How clients of `transport` authenticate, as nats-server decides it:
    /// a `websocket {}` or `mqtt {}` block with its own user, token or
    /// `no_auth_user` replaces the server's single user, token and
    /// `no_auth_user` for its clients (the server's `users` stay: a block
    /// may only name one of them as its `no_auth_user`); without one, its
    /// clients authenticate as TCP clients do.
    pub(crate) fn for_transport(opts: &crate::config::ServerOptions, transport: Transport) -> PlainAuth {
        let mut authorization = opts.authorization.clone();
        let mut no_auth_user = opts.no_auth_user.clone();
        let (ws, m) = (&opts.websocket, &opts.mqtt);
        let own = match transport {
            Transport::Tcp => None,
            Transport::Websocket => ws.auth_override().then_some((&ws.username, &ws.password, &ws.token, &ws.no_auth_user)),
            Transport::Mqtt => m.auth_override().then_some((&m.username, &m.password, &m.token, &m.no_auth_user)),
        };
        if let Some((user, password, token, own_no_auth_user)) = own {
            authorization.user.clone_from(user);
            authorization.password.clone_from(password);
            authorization.token.clone_from(token);
            no_auth_user.clone_from(own_no_auth_user);
        }
        PlainAuth {
            authorization,
            no_auth_user,
            connection_type: transport.connection_type(),
        }
    }
}
