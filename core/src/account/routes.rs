//! The routes an account's imports resolve into: built from the accounts
//! of a config file or of JWTs, each kept on the account whose publishes
//! it carries (so delivery looks only at the publisher's account).

use bytes::{Bytes, BytesMut};
use rand_core::RngCore;

use crate::subject::SubjectMap;

use super::mapping::{Mapping, MappingConfig, Mappings};

use super::checks::{check_imports, service_import_local, stream_import_to, ImportError};
use super::state::{Account, ServiceRoute, StreamRoute};
use super::{find_export, AccountConfig, ImportKind};

/// The global account every client without one belongs to.
pub(crate) const GLOBAL_ACCOUNT: &str = "$G";
/// The system account's name when `system_account` names none.
pub(crate) const SYSTEM_ACCOUNT: &str = "$SYS";

/// `$G` first (index 0 is the default account), then the configured
/// accounts, then `$SYS` unless `system_account` names a configured one.
///
/// `system` is the system account's name (`None` with `no_system_account`);
/// `cache` whether the indexes cache their matches.
pub(crate) fn build_accounts<T: Clone + Ord>(
    configs: &[AccountConfig],
    global_mappings: &[MappingConfig],
    system: Option<&str>,
    cache: bool,
    rng: &mut impl RngCore,
) -> Vec<Account<T>> {
    let mut names: Vec<&str> = vec![GLOBAL_ACCOUNT];
    names.extend(configs.iter().map(|a| a.name.as_str()).filter(|n| *n != GLOBAL_ACCOUNT));
    if let Some(system) = system.filter(|s| !names.contains(s)) {
        names.push(system);
    }
    let mut accounts: Vec<Account<T>> = names
        .iter()
        .map(|n| Account::new(n, cache, rng.next_u64()))
        .collect();
    for account in &mut accounts {
        account.reply_prefix = reply_prefix(rng);
    }
    add_routes(configs, &mut accounts);
    share_mappings(configs, &accounts);
    if !global_mappings.is_empty() {
        // Checked at config load: a refused one cannot get here.
        if let (Some(global), Ok(m)) = (accounts.first(), Mappings::new(global_mappings)) {
            global.shared.share_mappings(m);
        }
    }
    accounts
}

/// Gives each account of `configs` its mappings (those that compile: a
/// JWT's refused mappings are left out, as nats-server does).
pub(crate) fn share_mappings<T: Clone + Ord>(configs: &[AccountConfig], accounts: &[Account<T>]) {
    for c in configs {
        let Some(account) = accounts.iter().find(|a| a.name == c.name) else { continue };
        let compiled: Vec<MappingConfig> = c.mappings.iter().filter(|m| Mapping::new(m).is_ok()).cloned().collect();
        if let Ok(m) = Mappings::new(&compiled) {
            account.shared.share_mappings(m);
        }
    }
}

/// Resolves every import that passes nats-server's checks (see
/// [`check_imports`]) into a route on the account whose publishes it
/// carries. Returns the refused ones: config files refuse to start on them
/// already, JWT accounts leave them out as nats-server does.
pub(crate) fn add_routes<T>(configs: &[AccountConfig], accounts: &mut [Account<T>]) -> Vec<ImportError> {
    let check = check_imports(configs);
    let index = |accounts: &[Account<T>], name: &str| accounts.iter().position(|a| a.name == name);
    for r in &check.accepted {
        let (importer_cfg, exporter_cfg) = (&configs[r.importer], &configs[r.exporter]);
        let i = &importer_cfg.imports[r.import];
        let (Some(importer), Some(exporter)) = (
            index(accounts, &importer_cfg.name),
            index(accounts, &exporter_cfg.name),
        ) else {
            continue;
        };
        let Some(export) = find_export(exporter_cfg, i, &importer_cfg.name) else {
            continue;
        };
        let subject = Bytes::copy_from_slice(i.subject.as_bytes());
        match i.kind {
            ImportKind::Stream => {
                let to = Bytes::from(stream_import_to(i));
                let map = SubjectMap::stream(subject, to);
                accounts[exporter]
                    .stream_routes
                    .push(StreamRoute { importer, map });
            }
            ImportKind::Service => {
                let local = Bytes::copy_from_slice(service_import_local(i).as_bytes());
                let export_index = exporter_cfg
                    .exports
                    .iter()
                    .position(|e| std::ptr::eq(e, export))
                    .unwrap_or(usize::MAX);
                accounts[importer].service_routes.push(ServiceRoute {
                    exporter,
                    export: export_index,
                    map: SubjectMap::new(local, subject),
                    response_type: export.response_type,
                    response_threshold: export.response_threshold,
                });
            }
        }
    }
    check.errors
}

/// `_R_.` and six random characters, like nats-server's reply prefixes.
pub(crate) fn reply_prefix(rng: &mut impl RngCore) -> Bytes {
    let mut out = BytesMut::with_capacity(11);
    out.extend_from_slice(b"_R_.");
    push_random_token(rng, &mut out);
    out.extend_from_slice(b".");
    out.freeze()
}

pub(crate) fn push_random_token(rng: &mut impl RngCore, out: &mut BytesMut) {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for _ in 0..6 {
        out.extend_from_slice(&[ALPHABET[(rng.next_u32() % 62) as usize]]);
    }
}
