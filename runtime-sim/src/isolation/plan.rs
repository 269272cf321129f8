//! The accounts of an isolation run, drawn from its seed, rendered as a
//! config file for the nodes, and the model of where a publish must go.
//!
//! The model is written from the NATS documentation, not from the core:
//! a publish reaches its own account, the importers of a matching stream
//! export (renamed by `prefix` or `to`), and the exporter of a matching
//! service import (renamed back from the importer's local subject).
//! Imports never chain and never overlap, so every delivery path is
//! unambiguous (multi-hop routing has tests of its own in the core).

use crate::rng::SimRng;
use crate::subject::matches;

/// Stream exports; service exports use other first tokens so that a
/// service delivery never feeds a stream import.
const STREAM_EXPORTS: [&str; 5] = ["s.a", "s.*", "s.>", "t.b", "t.*"];
const SERVICE_EXPORTS: [&str; 4] = ["svc.a", "svc.*", "q.>", "q.b"];
/// What an import may narrow an export to.
const NARROWER: [&str; 8] = [
    "s.a", "s.b", "s.a.b", "t.b", "svc.a", "svc.b", "q.b", "q.a.*",
];

/// A stream or a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Messages flow from the exporter to every importer.
    Stream,
    /// Requests flow from the importer to the exporter.
    Service,
}

/// One export.
#[derive(Clone, Debug)]
pub struct Export {
    /// The exporting account.
    pub account: usize,
    /// Stream or service.
    pub kind: Kind,
    /// The exported subject (may hold wildcards).
    pub subject: &'static str,
    /// `None`: public; otherwise the accounts allowed to import.
    pub allowed: Option<Vec<usize>>,
}

/// One import.
#[derive(Clone, Debug)]
pub struct Import {
    /// The importing account.
    pub importer: usize,
    /// The exporting account.
    pub exporter: usize,
    /// Stream or service.
    pub kind: Kind,
    /// The subject in the exporter's namespace.
    pub subject: String,
    /// The subject in the importer's namespace.
    pub local: String,
    /// True when `local` came from a `prefix`, not a `to`.
    pub prefixed: bool,
}

/// The accounts of a run: `A0`…, each with users `u<account>_<n>`.
#[derive(Clone, Debug)]
pub struct Plan {
    /// How many accounts.
    pub accounts: usize,
    /// Users per account.
    pub users_per_account: usize,
    /// Exports of every account.
    pub exports: Vec<Export>,
    /// Imports of every account.
    pub imports: Vec<Import>,
}

impl Plan {
    /// Two to four accounts with random exports and imports.
    pub fn random(rng: &mut SimRng) -> Plan {
        let accounts = rng.range(2, 4) as usize;
        let mut plan = Plan {
            accounts,
            users_per_account: rng.range(1, 2) as usize,
            exports: Vec::new(),
            imports: Vec::new(),
        };
        for _ in 0..rng.range(1, 6) {
            plan.add_export(rng);
        }
        for n in 0..rng.range(0, 8) as usize {
            plan.try_import(rng, n);
        }
        plan.close_restrictions(rng);
        plan
    }

    fn add_export(&mut self, rng: &mut SimRng) {
        let service = rng.ratio(1, 2);
        let subject = if service {
            SERVICE_EXPORTS[rng.index(SERVICE_EXPORTS.len())]
        } else {
            STREAM_EXPORTS[rng.index(STREAM_EXPORTS.len())]
        };
        let account = rng.index(self.accounts);
        let kind = if service { Kind::Service } else { Kind::Stream };
        if self
            .exports
            .iter()
            .any(|e| e.account == account && e.subject == subject)
        {
            return;
        }
        let allowed = rng.ratio(1, 3).then(Vec::new);
        self.exports.push(Export {
            account,
            kind,
            subject,
            allowed,
        });
    }

    fn try_import(&mut self, rng: &mut SimRng, n: usize) {
        if self.exports.is_empty() {
            return;
        }
        let e = rng.index(self.exports.len());
        let export = self.exports[e].clone();
        let mut candidates = vec![export.subject];
        candidates.extend(NARROWER.iter().filter(|s| is_subset(s, export.subject)));
        let subject = candidates[rng.index(candidates.len())].to_owned();
        let (local, prefixed) = match (export.kind, rng.below(3)) {
            (Kind::Stream, 1) => (format!("p{n}.{subject}"), true),
            (Kind::Stream, 2) => (replace_first(&subject, &format!("m{n}")), false),
            (Kind::Service, 1 | 2) => (replace_first(&subject, &format!("l{n}")), false),
            _ => (subject.clone(), false),
        };
        let importer = rng.index(self.accounts);
        let import = Import {
            importer,
            exporter: export.account,
            kind: export.kind,
            subject,
            local,
            prefixed,
        };
        if self.acceptable(&import) {
            if let Some(allowed) = &mut self.exports[e].allowed {
                allowed.push(importer);
            }
            self.imports.push(import);
        }
    }

    /// No self-imports, no chains, nothing overlapping, one export covering
    /// each import (nats-server picks among overlapping exports at random).
    fn acceptable(&self, new: &Import) -> bool {
        let imports_some = |acc: usize| self.imports.iter().any(|i| i.importer == acc);
        let exports_imported = |acc: usize| self.imports.iter().any(|i| i.exporter == acc);
        let covering = self
            .exports
            .iter()
            .filter(|x| x.account == new.exporter && x.kind == new.kind)
            .filter(|x| is_subset(&new.subject, x.subject))
            .count();
        let overlaps = self.imports.iter().any(|i| {
            i.importer == new.importer
                && i.kind == new.kind
                && match new.kind {
                    Kind::Service => intersects(&i.local, &new.local),
                    Kind::Stream => {
                        i.exporter == new.exporter && intersects(&i.subject, &new.subject)
                    }
                }
        });
        new.importer != new.exporter
            && !imports_some(new.exporter)
            && !exports_imported(new.importer)
            && covering == 1
            && !overlaps
    }

    fn close_restrictions(&mut self, rng: &mut SimRng) {
        let accounts = self.accounts;
        for e in &mut self.exports {
            if let Some(allowed) = &mut e.allowed {
                if allowed.is_empty() {
                    allowed.push((e.account + 1 + rng.index(accounts - 1)) % accounts);
                }
                allowed.sort_unstable();
                allowed.dedup();
            }
        }
    }

    /// The user name of user `n` of `account`; its password is `p`.
    pub fn user(account: usize, n: usize) -> String {
        format!("u{account}_{n}")
    }

    /// The `accounts {}` block of the nodes' config file.
    pub fn render(&self) -> String {
        let mut out = String::from("accounts {\n");
        for a in 0..self.accounts {
            let users: Vec<String> = (0..self.users_per_account)
                .map(|n| format!("{{user: {}, password: p}}", Plan::user(a, n)))
                .collect();
            out += &format!("  A{a}: {{\n    users: [{}]\n", users.join(", "));
            out += "    exports: [\n";
            for e in self.exports.iter().filter(|e| e.account == a) {
                out += &format!("      {}\n", render_export(e));
            }
            out += "    ]\n    imports: [\n";
            for i in self.imports.iter().filter(|i| i.importer == a) {
                out += &format!("      {}\n", render_import(i));
            }
            out += "    ]\n  }\n";
        }
        out + "}\n"
    }

    /// Where a publish of `subject` in `account` arrives: (account,
    /// subject) once per delivery path.
    pub fn targets(&self, account: usize, subject: &str) -> Vec<(usize, String)> {
        let mut out = vec![(account, subject.to_owned())];
        for i in &self.imports {
            match i.kind {
                Kind::Stream if i.exporter == account && matches(&i.subject, subject) => {
                    out.push((i.importer, i.rename_in(subject)));
                }
                Kind::Service if i.importer == account && matches(&i.local, subject) => {
                    out.push((i.exporter, i.rename_out(subject)));
                }
                _ => {}
            }
        }
        out
    }

    /// True when a publish of `subject` in `importer` reaches `exporter`
    /// through a service import.
    pub fn serves(&self, importer: usize, exporter: usize, subject: &str) -> bool {
        self.imports.iter().any(|i| {
            i.kind == Kind::Service
                && i.importer == importer
                && i.exporter == exporter
                && matches(&i.local, subject)
        })
    }

    /// Literal subjects worth publishing or subscribing to: instances of
    /// every export and import subject, and a few that match nothing.
    pub fn subjects(&self) -> Vec<String> {
        let mut out: Vec<String> = ["x.a", "s.c", "svc.b.c", "a"].map(String::from).to_vec();
        let patterns = self.exports.iter().map(|e| e.subject.to_owned()).chain(
            self.imports
                .iter()
                .flat_map(|i| [i.subject.clone(), i.local.clone()]),
        );
        for p in patterns {
            out.push(p.replace('*', "a").replace('>', "b"));
            out.push(p.replace('*', "b").replace('>', "a.c"));
        }
        out.sort();
        out.dedup();
        out
    }
}

impl Import {
    /// A stream message's subject in the importer.
    fn rename_in(&self, subject: &str) -> String {
        if self.prefixed {
            let prefix = self.local.strip_suffix(&self.subject).unwrap_or_default();
            return format!("{prefix}{subject}");
        }
        if self.local == self.subject {
            return subject.to_owned();
        }
        replace_first(subject, self.local.split('.').next().unwrap_or_default())
    }

    /// A service request's subject in the exporter.
    fn rename_out(&self, subject: &str) -> String {
        if self.local == self.subject {
            return subject.to_owned();
        }
        replace_first(subject, self.subject.split('.').next().unwrap_or_default())
    }
}

fn render_export(e: &Export) -> String {
    let kind = if e.kind == Kind::Stream {
        "stream"
    } else {
        "service"
    };
    let allowed = e.allowed.as_ref().map_or(String::new(), |list| {
        let names: Vec<String> = list.iter().map(|a| format!("A{a}")).collect();
        format!(", accounts: [{}]", names.join(", "))
    });
    format!("{{{kind}: \"{}\"{allowed}}}", e.subject)
}

fn render_import(i: &Import) -> String {
    let kind = if i.kind == Kind::Stream {
        "stream"
    } else {
        "service"
    };
    let mapping = if i.prefixed {
        let prefix = i.local.strip_suffix(&i.subject).unwrap_or_default();
        format!(", prefix: \"{}\"", prefix.trim_end_matches('.'))
    } else if i.local != i.subject {
        format!(", to: \"{}\"", i.local)
    } else {
        String::new()
    };
    format!(
        "{{{kind}: {{account: A{}, subject: \"{}\"}}{mapping}}}",
        i.exporter, i.subject
    )
}

fn replace_first(subject: &str, first: &str) -> String {
    match subject.split_once('.') {
        Some((_, rest)) => format!("{first}.{rest}"),
        None => first.to_owned(),
    }
}

/// Every subject `inner` matches, `outer` matches too.
fn is_subset(inner: &str, outer: &str) -> bool {
    let (i, o): (Vec<&str>, Vec<&str>) = (inner.split('.').collect(), outer.split('.').collect());
    for (n, t) in o.iter().enumerate() {
        match (*t, i.get(n).copied()) {
            (">", Some(_)) => return true,
            ("*", Some(x)) if x != ">" => {}
            (lit, Some(x)) if lit == x => {}
            _ => return false,
        }
    }
    i.len() == o.len()
}

/// Some subject matches both patterns.
fn intersects(a: &str, b: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    for n in 0..a.len().max(b.len()) {
        match (a.get(n).copied(), b.get(n).copied()) {
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some(x), Some(y)) if x == y || x == "*" || y == "*" => {}
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_follow_prefix_and_to() {
        let stream = |local: &str, prefixed| Import {
            importer: 0,
            exporter: 1,
            kind: Kind::Stream,
            subject: "s.*".into(),
            local: local.into(),
            prefixed,
        };
        assert_eq!(stream("p1.s.*", true).rename_in("s.x"), "p1.s.x");
        assert_eq!(stream("m2.*", false).rename_in("s.x"), "m2.x");
        assert_eq!(stream("s.*", false).rename_in("s.x"), "s.x");
        let service = Import {
            kind: Kind::Service,
            subject: "svc.*".into(),
            local: "l3.*".into(),
            ..stream("", false)
        };
        assert_eq!(service.rename_out("l3.y"), "svc.y");
        assert_eq!(
            render_import(&stream("p1.s.*", true)),
            r#"{stream: {account: A1, subject: "s.*"}, prefix: "p1"}"#
        );
        assert_eq!(
            render_import(&service),
            r#"{service: {account: A1, subject: "svc.*"}, to: "l3.*"}"#
        );
    }

    #[test]
    fn subsets_and_intersections() {
        assert!(is_subset("s.a", "s.*") && is_subset("s.a.b", "s.>") && !is_subset("s.>", "s.*"));
        assert!(
            intersects("s.*", "s.a") && !intersects("s.*", "s.a.b") && !intersects("l1.a", "l2.a")
        );
    }

    #[test]
    fn random_plans_never_chain() {
        let mut rng = SimRng::new(7);
        for _ in 0..200 {
            let plan = Plan::random(&mut rng);
            for i in &plan.imports {
                assert!(!plan.imports.iter().any(|j| j.importer == i.exporter));
            }
        }
    }
}
