//! The cross-account checks nats-server makes once every account is known:
//! an export's `accounts` list names defined accounts; every import names a
//! defined account, an export that admits the importer, valid subjects and
//! prefixes; and no import closes a cycle. Config files report refusals
//! (and do not start); JWT accounts leave the refused imports out.
//!
//! The checks run in nats-server's order: stream exports, service exports,
//! stream imports, service imports; an import is checked against the imports
//! accepted before it, so of two imports forming a cycle the later is refused.

use super::{find_export, AccountConfig, Import, ImportKind};
use crate::subject::map::{mapping_function, wildcard_number};
use crate::subject::{
    is_full_wildcard, is_literal, is_partial_wildcard, is_valid_subject, subject_is_subset, tokens,
};

/// How many accounts a cycle search visits before it gives up (nats-server's
/// `MaxAccountCycleSearchDepth`).
pub const CYCLE_SEARCH_DEPTH_MAX: usize = 1024;

/// An import that passed every check: `configs[importer].imports[import]`,
/// served by `configs[exporter]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportRef {
    /// Index of the importing account in the configs.
    pub importer: usize,
    /// Index of the import in the importer's `imports`.
    pub import: usize,
    /// Index of the exporting account in the configs.
    pub exporter: usize,
}

/// Why an export or import was refused, in nats-server's words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// An export's `accounts` list names an account that does not exist.
    #[error("\"{account}\" account not defined for {kind} export")]
    ExportAccountUndefined {
        /// The undefined account.
        account: String,
        /// `stream` or `service`.
        kind: &'static str,
    },
    /// An import names an account that does not exist.
    #[error("\"{account}\" account not defined for {kind} import")]
    AccountUndefined {
        /// The importing account.
        importer: String,
        /// The undefined account.
        account: String,
        /// `stream` or `service`.
        kind: &'static str,
    },
    /// The import names a defined account but cannot be added.
    #[error("Error adding {kind} import \"{subject}\": {reason}")]
    Refused {
        /// The importing account.
        importer: String,
        /// `stream` or `service`.
        kind: &'static str,
        /// The imported subject.
        subject: String,
        /// Why.
        reason: Refusal,
    },
}

impl ImportError {
    /// How nats-server logs (at debug level) an import it leaves out of an
    /// account JWT: `Error adding service import to account [NAME]: reason`.
    /// `None` for an export's problem, which JWTs cannot have.
    pub fn jwt_log_line(&self) -> Option<String> {
        match self {
            ImportError::ExportAccountUndefined { .. } => None,
            ImportError::AccountUndefined { importer, kind, .. } => Some(format!(
                "Error adding {kind} import to account [{importer}]: account missing"
            )),
            ImportError::Refused {
                importer,
                kind,
                reason,
                ..
            } => Some(format!(
                "Error adding {kind} import to account [{importer}]: {reason}"
            )),
        }
    }
}

/// Why an import naming a defined account is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No export of the account admits this importer and subject.
    #[error("{0} import not authorized")]
    NotAuthorized(&'static str),
    /// A service import's subject or `to` is not a valid subject.
    #[error("sublist: invalid subject")]
    InvalidSubject,
    /// A stream import's `prefix` holds a wildcard.
    #[error("stream import prefix can not contain wildcard tokens")]
    BadPrefix,
    /// The importer already imports this subject from this account.
    #[error("stream import already exists")]
    Duplicate,
    /// Messages would come back to the importer through other imports.
    #[error("import forms a cycle")]
    Cycle,
    /// The cycle search went deeper than [`CYCLE_SEARCH_DEPTH_MAX`].
    #[error("search cycle depth exhausted")]
    CycleSearchDepth,
    /// `to` cannot be a reversible mapping of the imported subject.
    #[error("failed to create mapping transform for {kind} import subject from \"{from}\" to \"{to}\": {why}")]
    Transform {
        /// `stream` or `service`.
        kind: &'static str,
        /// The source as nats-server names it.
        from: String,
        /// The destination as nats-server names it.
        to: String,
        /// What is wrong with the mapping.
        why: TransformError,
    },
}

/// Why a subject mapping of an import is refused, in nats-server's words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// A subject is invalid, or only one side has `>`, or the destination
    /// has a bare `*` left.
    #[error("invalid subject")]
    BadSubject,
    /// The destination names a wildcard the source does not have.
    #[error("invalid mapping destination: wildcard index out of range in {token}: [{index}]")]
    IndexOutOfRange {
        /// The destination token.
        token: String,
        /// The wildcard number it names.
        index: usize,
    },
    /// The destination leaves a wildcard of the source out, so the mapping
    /// cannot be reversed.
    #[error("invalid mapping destination: not using all of the token wildcard(s) in {0}")]
    NotUsingAllWildcards(String),
    /// The destination uses a mapping function other than `wildcard`.
    #[error("invalid mapping destination: the only mapping function allowed for import transforms is {{{{Wildcard()}}}} in {0}")]
    FunctionNotForImports(String),
}

/// What [`check_imports`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportCheck {
    /// The imports to route, streams first, each in account and config order.
    pub accepted: Vec<ImportRef>,
    /// The refused exports and imports, in nats-server's order.
    pub errors: Vec<ImportError>,
}

/// `stream` or `service`, as nats-server's messages name a kind.
pub fn kind_name(kind: ImportKind) -> &'static str {
    match kind {
        ImportKind::Stream => "stream",
        ImportKind::Service => "service",
    }
}

/// The subject a stream import delivers on in the importer: `prefix.subject`,
/// `to`, or the subject itself.
pub fn stream_import_to(i: &Import) -> String {
    match (&i.prefix, &i.to) {
        (Some(prefix), _) if prefix.ends_with('.') => format!("{prefix}{}", i.subject),
        (Some(prefix), _) => format!("{prefix}.{}", i.subject),
        (None, Some(to)) => to.clone(),
        (None, None) => i.subject.clone(),
    }
}

/// The subject a service import's requests are published on in the importer.
pub fn service_import_local(i: &Import) -> &str {
    i.to.as_deref().unwrap_or(&i.subject)
}

/// Checks every export and import of `configs`, as nats-server does when it
/// loads a config file or a set of account JWTs.
pub fn check_imports(configs: &[AccountConfig]) -> ImportCheck {
    let mut check = ImportCheck::default();
    for kind in [ImportKind::Stream, ImportKind::Service] {
        check_export_accounts(configs, kind, &mut check.errors);
    }
    for kind in [ImportKind::Stream, ImportKind::Service] {
        for (importer, config) in configs.iter().enumerate() {
            for (import, i) in config.imports.iter().enumerate() {
                if i.kind != kind {
                    continue;
                }
                match check_one(configs, &check.accepted, importer, i) {
                    Ok(exporter) => check.accepted.push(ImportRef {
                        importer,
                        import,
                        exporter,
                    }),
                    Err(e) => check.errors.push(e),
                }
            }
        }
    }
    check
}

fn check_export_accounts(
    configs: &[AccountConfig],
    kind: ImportKind,
    errors: &mut Vec<ImportError>,
) {
    for config in configs {
        for e in config.exports.iter().filter(|e| e.kind == kind) {
            for account in &e.accounts {
                if !configs.iter().any(|c| &c.name == account) {
                    errors.push(ImportError::ExportAccountUndefined {
                        account: account.clone(),
                        kind: kind_name(kind),
                    });
                }
            }
        }
    }
}

/// The exporter's index if import `i` of `configs[importer]` may be added.
// Runs once per import at load time: the error's size costs nothing.
#[allow(clippy::result_large_err)]
fn check_one(
    configs: &[AccountConfig],
    accepted: &[ImportRef],
    importer: usize,
    i: &Import,
) -> Result<usize, ImportError> {
    let kind = kind_name(i.kind);
    let importer_name = configs[importer].name.clone();
    let Some(exporter) = configs.iter().position(|c| c.name == i.account) else {
        return Err(ImportError::AccountUndefined {
            importer: importer_name,
            account: i.account.clone(),
            kind,
        });
    };
    let refused = |reason| ImportError::Refused {
        importer: importer_name,
        kind,
        subject: i.subject.clone(),
        reason,
    };
    let graph = Graph { configs, accepted };
    let reason = match i.kind {
        ImportKind::Stream => stream_refusal(&graph, importer, exporter, i),
        ImportKind::Service => service_refusal(&graph, importer, exporter, i),
    };
    match reason {
        Some(reason) => Err(refused(reason)),
        None => Ok(exporter),
    }
}

fn stream_refusal(
    graph: &Graph<'_>,
    importer: usize,
    exporter: usize,
    i: &Import,
) -> Option<Refusal> {
    let configs = graph.configs;
    if !is_valid_subject(i.subject.as_bytes())
        || find_export(&configs[exporter], i, &configs[importer].name).is_none()
    {
        return Some(Refusal::NotAuthorized("stream"));
    }
    if i.prefix.as_ref().is_some_and(|p| !is_literal(p.as_bytes())) {
        return Some(Refusal::BadPrefix);
    }
    let to = stream_import_to(i);
    for subject in [to.as_str(), i.subject.as_str()] {
        if let Err(reason) = graph.stream_cycle(importer, exporter, subject) {
            return Some(reason);
        }
    }
    if has_wildcard(&i.subject) && to != i.subject {
        if let Some(why) = transform_error(&i.subject, &number_wildcards(&to)) {
            let from = i.subject.clone();
            return Some(Refusal::Transform {
                kind: "stream",
                from,
                to,
                why,
            });
        }
    }
    let duplicate = graph.accepted.iter().any(|r| {
        let other = graph.import(r);
        r.importer == importer
            && r.exporter == exporter
            && other.kind == ImportKind::Stream
            && other.subject == i.subject
    });
    duplicate.then_some(Refusal::Duplicate)
}

fn service_refusal(
    graph: &Graph<'_>,
    importer: usize,
    exporter: usize,
    i: &Import,
) -> Option<Refusal> {
    let configs = graph.configs;
    let local = service_import_local(i);
    if !is_valid_subject(i.subject.as_bytes()) || !is_valid_subject(local.as_bytes()) {
        return Some(Refusal::InvalidSubject);
    }
    if find_export(&configs[exporter], i, &configs[importer].name).is_none() {
        return Some(Refusal::NotAuthorized("service"));
    }
    if let Err(reason) = graph.service_cycle(importer, exporter, local, &i.subject) {
        return Some(reason);
    }
    // nats-server builds the mapping backwards, from the exporter's subject
    // to the importer's, so that only the importer's side holds numbers.
    if has_wildcard(&i.subject) && local != i.subject {
        let remote = unnumber_wildcards(&i.subject);
        if let Some(why) = transform_error(&remote, &number_wildcards(local)) {
            let from = local.to_owned();
            return Some(Refusal::Transform {
                kind: "service",
                from,
                to: remote,
                why,
            });
        }
    }
    None
}

fn has_wildcard(subject: &str) -> bool {
    tokens(subject.as_bytes()).any(|t| is_partial_wildcard(t) || is_full_wildcard(t))
}

/// `subject` with its `*` tokens numbered `$1`, `$2`… in order.
pub(super) fn number_wildcards(subject: &str) -> String {
    let mut n = 0;
    let numbered: Vec<String> = subject
        .split('.')
        .map(|t| {
            if t == "*" {
                n += 1;
                format!("${n}")
            } else {
                t.to_owned()
            }
        })
        .collect();
    numbered.join(".")
}

/// `subject` with its numbered wildcards back to `*`.
fn unnumber_wildcards(subject: &str) -> String {
    let plain: Vec<&str> = subject
        .split('.')
        .map(|t| {
            let numbered = (t.len() > 1 && t.starts_with('$') && t.as_bytes()[1].is_ascii_digit())
                || (t.starts_with("{{") && wildcard_number(t.as_bytes()).is_some());
            if numbered {
                "*"
            } else {
                t
            }
        })
        .collect();
    plain.join(".")
}

/// Why `dest` is not a reversible mapping of `src` (nats-server's strict
/// import transforms: only wildcard references, every `*` of `src` used).
/// Only called with a `src` holding wildcards.
pub fn transform_error(src: &str, dest: &str) -> Option<TransformError> {
    let (src_ok, src_stars, src_rest) = subject_shape(src);
    let (dest_ok, dest_stars, dest_rest) = subject_shape(dest);
    if !src_ok || !dest_ok || dest_stars > 0 || src_rest != dest_rest {
        return Some(TransformError::BadSubject);
    }
    let mut used = 0;
    for token in dest.split('.') {
        if let Some(index) = wildcard_number(token.as_bytes()) {
            if index > src_stars {
                let token = token.to_owned();
                return Some(TransformError::IndexOutOfRange { token, index });
            }
            used += 1;
        } else if mapping_function(token.as_bytes()).is_some() {
            return Some(TransformError::FunctionNotForImports(token.to_owned()));
        }
    }
    (used < src_stars).then(|| TransformError::NotUsingAllWildcards(dest.to_owned()))
}

/// Whether `subject` is a valid pattern (no empty token, `>` last), its
/// number of `*` and whether it ends in `>`.
fn subject_shape(subject: &str) -> (bool, usize, bool) {
    let mut stars = 0;
    let mut rest = false;
    for t in subject.split('.') {
        if t.is_empty() || rest {
            return (false, 0, false);
        }
        match t {
            "*" => stars += 1,
            ">" => rest = true,
            _ => {}
        }
    }
    (true, stars, rest)
}

/// The accounts and the imports accepted so far, walked by the cycle searches.
struct Graph<'a> {
    configs: &'a [AccountConfig],
    accepted: &'a [ImportRef],
}

impl Graph<'_> {
    fn import(&self, r: &ImportRef) -> &Import {
        &self.configs[r.importer].imports[r.import]
    }

    /// The accepted imports of `kind` made by `account`, with their index
    /// among the accepted.
    fn imports_of(
        &self,
        account: usize,
        kind: ImportKind,
    ) -> impl Iterator<Item = (usize, &ImportRef, &Import)> {
        self.accepted
            .iter()
            .enumerate()
            .filter(move |(_, r)| r.importer == account)
            .map(|(n, r)| (n, r, self.import(r)))
            .filter(move |(_, _, i)| i.kind == kind)
    }

    /// Would requests published in `importer` on `local`, sent to `exporter`
    /// as `remote`, come back to `importer` on `local` through the service
    /// imports accepted so far? This follows where requests really go (each
    /// hop's local subject against the subject arriving), so, unlike
    /// nats-server's search, its answer does not depend on the order the
    /// accounts are listed in.
    fn service_cycle(
        &self,
        importer: usize,
        exporter: usize,
        local: &str,
        remote: &str,
    ) -> Result<(), Refusal> {
        let mut pending = vec![(exporter, remote.to_owned())];
        let mut seen: Vec<usize> = Vec::new();
        while let Some((account, subject)) = pending.pop() {
            for (n, r, i) in self.imports_of(account, ImportKind::Service) {
                let hop_local = service_import_local(i);
                if !subjects_collide(&subject, hop_local) {
                    continue;
                }
                let next = hop_subject(&subject, hop_local, &i.subject);
                if r.exporter == importer && subjects_collide(&next, local) {
                    return Err(Refusal::Cycle);
                }
                if seen.contains(&n) {
                    continue;
                }
                if seen.len() >= CYCLE_SEARCH_DEPTH_MAX {
                    return Err(Refusal::CycleSearchDepth);
                }
                seen.push(n);
                pending.push((r.exporter, next));
            }
        }
        Ok(())
    }

    /// nats-server's stream cycle search: from the exporter, follow the
    /// stream imports whose subject collides with `subject` while the
    /// account exports it; reaching an account already on the way is a cycle.
    fn stream_cycle(&self, importer: usize, exporter: usize, subject: &str) -> Result<(), Refusal> {
        let mut visited = vec![importer];
        self.stream_cycle_from(exporter, subject, &mut visited)
    }

    fn stream_cycle_from(
        &self,
        account: usize,
        subject: &str,
        visited: &mut Vec<usize>,
    ) -> Result<(), Refusal> {
        if visited.len() >= CYCLE_SEARCH_DEPTH_MAX {
            return Err(Refusal::CycleSearchDepth);
        }
        let exports = &self.configs[account].exports;
        let exported = exports.iter().any(|e| {
            e.kind == ImportKind::Stream
                && subject_is_subset(subject.as_bytes(), e.subject.as_bytes())
        });
        if !exported {
            return Ok(());
        }
        for (_, r, i) in self.imports_of(account, ImportKind::Stream) {
            let to = stream_import_to(i);
            if !subjects_collide(subject, &to) {
                continue;
            }
            if visited.contains(&r.exporter) {
                return Err(Refusal::Cycle);
            }
            if !visited.contains(&account) {
                visited.push(account);
            }
            let narrower = if subject_is_subset(to.as_bytes(), subject.as_bytes()) {
                to.as_str()
            } else {
                subject
            };
            self.stream_cycle_from(r.exporter, narrower, visited)?;
        }
        Ok(())
    }
}

/// The subject a request on `subject` (colliding with the hop's local
/// subject) arrives on in the hop's exporter. Exact when the hop does not
/// rename; otherwise the hop's remote subject, which covers every subject
/// the request could arrive on.
fn hop_subject(subject: &str, hop_local: &str, hop_remote: &str) -> String {
    if hop_local != hop_remote {
        return hop_remote.to_owned();
    }
    if subject_is_subset(hop_local.as_bytes(), subject.as_bytes()) {
        hop_local.to_owned()
    } else {
        subject.to_owned()
    }
}

/// Could one published subject match both patterns?
pub fn subjects_collide(a: &str, b: &str) -> bool {
    let mut a_tokens = tokens(a.as_bytes());
    let mut b_tokens = tokens(b.as_bytes());
    loop {
        match (a_tokens.next(), b_tokens.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) => {
                if is_full_wildcard(x) || is_full_wildcard(y) {
                    return true;
                }
                if x != y && !is_partial_wildcard(x) && !is_partial_wildcard(y) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collisions() {
        assert!(subjects_collide("a.b", "a.b"));
        assert!(subjects_collide("a.*", "a.b"));
        assert!(subjects_collide("a.>", "a.b.c"));
        assert!(subjects_collide("*.b", "a.*"));
        assert!(!subjects_collide("a.b", "a.c"));
        assert!(!subjects_collide("a.*", "a.b.c"));
        assert!(!subjects_collide("a", "a.>"));
    }

    #[test]
    fn prefixes_join_with_one_dot() {
        let mut i = Import {
            kind: ImportKind::Stream,
            account: "A".into(),
            subject: "s".into(),
            to: None,
            prefix: Some("p".into()),
        };
        assert_eq!(stream_import_to(&i), "p.s");
        i.prefix = Some("p.".into());
        assert_eq!(stream_import_to(&i), "p.s");
        i.prefix = None;
        i.to = Some("t".into());
        assert_eq!(stream_import_to(&i), "t");
    }
}
