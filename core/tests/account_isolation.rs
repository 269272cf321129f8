//! Property: nothing leaks across accounts. Random configs of two to four
//! accounts with random stream and service exports (public or restricted)
//! and imports (plain, with a `prefix`, or with `to` mapping), random users'
//! subscriptions and publishes, driven through the core `Server`'s wire
//! API; a model independent of the server computes which (account,
//! subject) every publish reaches. Every MSG a client gets must be owed by
//! the model, and every owed one must arrive.
//!
//! Imports never chain (an account that imports exports nothing anyone
//! imports): multi-hop routing is tested on its own. Service imports of one
//! account have disjoint local subjects, stream imports of one account from
//! one exporter disjoint sources, and each import is covered by one export:
//! where imports or exports overlap, nats-server's choice between them is
//! not what this property is about. The model was checked against
//! nats-server 2.15.1 by replaying a few hundred generated cases.

mod auth_support;

use auth_support::Node;
use proptest::prelude::*;
use proptest::sample::Index;

/// Subjects exported as streams; service exports use other first tokens,
/// so a service delivery never feeds a stream import.
const STREAM_EXPORTS: [&str; 5] = ["s.a", "s.*", "s.>", "t.b", "t.*"];
const SERVICE_EXPORTS: [&str; 4] = ["svc.a", "svc.*", "q.>", "q.b"];
/// What imports may narrow an export to.
const NARROWER: [&str; 10] = [
    "s.a", "s.b", "s.*", "s.a.b", "t.b", "svc.a", "svc.b", "q.b", "q.a.*", "q.*",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Stream,
    Service,
}

/// How an import renames subjects.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mapping {
    None,
    /// `prefix: p<n>` (streams only).
    Prefix(String),
    /// `to:` the subject with its first token replaced.
    To(String),
}

#[derive(Clone, Debug)]
struct Export {
    account: usize,
    kind: Kind,
    subject: &'static str,
    /// `None` is public; otherwise the accounts allowed to import.
    allowed: Option<Vec<usize>>,
}

#[derive(Clone, Debug)]
struct Import {
    importer: usize,
    exporter: usize,
    kind: Kind,
    subject: String,
    mapping: Mapping,
}

impl Import {
    /// The subject in the importer's namespace: where stream messages
    /// arrive, or where the importer publishes service requests.
    fn local(&self) -> String {
        match &self.mapping {
            Mapping::None => self.subject.clone(),
            Mapping::Prefix(p) => format!("{p}.{}", self.subject),
            Mapping::To(first) => replace_first(&self.subject, first),
        }
    }
}

/// One generated configuration.
#[derive(Clone, Debug)]
struct Plan {
    accounts: usize,
    exports: Vec<Export>,
    imports: Vec<Import>,
}

fn replace_first(subject: &str, first: &str) -> String {
    match subject.split_once('.') {
        Some((_, rest)) => format!("{first}.{rest}"),
        None => first.to_owned(),
    }
}

/// The model's own subject matcher: `pattern` matches literal `subject`.
fn matches(pattern: &str, subject: &str) -> bool {
    let (p, s): (Vec<&str>, Vec<&str>) =
        (pattern.split('.').collect(), subject.split('.').collect());
    for (i, t) in p.iter().enumerate() {
        match *t {
            ">" => return s.len() > i,
            "*" if i < s.len() => {}
            lit if s.get(i) == Some(&lit) => {}
            _ => return false,
        }
    }
    p.len() == s.len()
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

/// Raw choices, which `Plan::build` turns into a valid configuration.
type ExportChoice = (Index, bool, Index, bool);
type ImportChoice = (Index, Index, Index, u8);

impl Plan {
    fn build(accounts: usize, exports: &[ExportChoice], imports: &[ImportChoice]) -> Plan {
        let mut plan = Plan {
            accounts,
            exports: exports
                .iter()
                .map(|(acc, service, subject, restricted)| Export {
                    account: acc.index(accounts),
                    kind: if *service {
                        Kind::Service
                    } else {
                        Kind::Stream
                    },
                    subject: if *service {
                        SERVICE_EXPORTS[subject.index(SERVICE_EXPORTS.len())]
                    } else {
                        STREAM_EXPORTS[subject.index(STREAM_EXPORTS.len())]
                    },
                    allowed: restricted.then(Vec::new),
                })
                .collect(),
            imports: Vec::new(),
        };
        plan.exports
            .sort_by_key(|e| (e.account, e.kind == Kind::Service, e.subject));
        plan.exports
            .dedup_by_key(|e| (e.account, e.kind, e.subject));
        for (n, choice) in imports.iter().enumerate() {
            plan.try_import(n, choice);
        }
        plan.close_restrictions();
        plan
    }

    /// Adds the import `choice` describes when it keeps the plan valid.
    fn try_import(&mut self, n: usize, (importer, export, narrow, mapping): &ImportChoice) {
        if self.exports.is_empty() {
            return;
        }
        let e = export.index(self.exports.len());
        let (exporter, kind, export_subject) = (
            self.exports[e].account,
            self.exports[e].kind,
            self.exports[e].subject,
        );
        let importer = importer.index(self.accounts);
        let candidates: Vec<&str> = std::iter::once(export_subject)
            .chain(
                NARROWER
                    .iter()
                    .copied()
                    .filter(|s| is_subset(s, export_subject)),
            )
            .collect();
        let subject = narrow.get::<&str>(&candidates).to_string();
        let mapping = match (kind, mapping % 3) {
            (Kind::Stream, 1) => Mapping::Prefix(format!("p{n}")),
            (Kind::Stream, 2) => Mapping::To(format!("m{n}")),
            (Kind::Service, 1 | 2) => Mapping::To(format!("l{n}")),
            _ => Mapping::None,
        };
        // nats-server lets an export whose subject equals the import's
        // decide alone, and otherwise the first wildcard export it finds
        // (in random order): keep to imports that only one export covers.
        let covering = self
            .exports
            .iter()
            .filter(|x| x.account == exporter && x.kind == kind && is_subset(&subject, x.subject))
            .count();
        if covering != 1 {
            return;
        }
        let import = Import {
            importer,
            exporter,
            kind,
            subject,
            mapping,
        };
        if self.acceptable(&import) {
            if let Some(allowed) = &mut self.exports[e].allowed {
                allowed.push(importer);
            }
            self.imports.push(import);
        }
    }

    /// No self-imports, no chains, no overlapping choices (see the top).
    fn acceptable(&self, new: &Import) -> bool {
        let exports_imported = |acc: usize| self.imports.iter().any(|i| i.exporter == acc);
        let imports_some = |acc: usize| self.imports.iter().any(|i| i.importer == acc);
        if new.importer == new.exporter
            || imports_some(new.exporter)
            || exports_imported(new.importer)
        {
            return false;
        }
        !self.imports.iter().any(|i| {
            i.importer == new.importer
                && i.kind == new.kind
                && match new.kind {
                    Kind::Service => intersects(&i.local(), &new.local()),
                    Kind::Stream => {
                        i.exporter == new.exporter && intersects(&i.subject, &new.subject)
                    }
                }
        })
    }

    /// A restricted export nobody imports still names someone else.
    fn close_restrictions(&mut self) {
        let accounts = self.accounts;
        for e in &mut self.exports {
            if let Some(allowed) = &mut e.allowed {
                if allowed.is_empty() {
                    allowed.push((e.account + 1) % accounts);
                }
                allowed.sort_unstable();
                allowed.dedup();
            }
        }
    }

    fn render(&self) -> String {
        let mut out = String::from("accounts {\n");
        for a in 0..self.accounts {
            out += &format!(
                "  A{a}: {{\n    users: [ {{user: u{a}, password: p}} ]\n    exports: [\n"
            );
            for e in self.exports.iter().filter(|e| e.account == a) {
                let kind = if e.kind == Kind::Stream {
                    "stream"
                } else {
                    "service"
                };
                let allowed = e.allowed.as_ref().map_or(String::new(), |list| {
                    let names: Vec<String> = list.iter().map(|i| format!("A{i}")).collect();
                    format!(", accounts: [{}]", names.join(", "))
                });
                out += &format!("      {{{kind}: \"{}\"{allowed}}}\n", e.subject);
            }
            out += "    ]\n    imports: [\n";
            for i in self.imports.iter().filter(|i| i.importer == a) {
                let kind = if i.kind == Kind::Stream {
                    "stream"
                } else {
                    "service"
                };
                let mapping = match &i.mapping {
                    Mapping::None => String::new(),
                    Mapping::Prefix(p) => format!(", prefix: \"{p}\""),
                    Mapping::To(_) => format!(", to: \"{}\"", i.local()),
                };
                out += &format!(
                    "      {{{kind}: {{account: A{}, subject: \"{}\"}}{mapping}}}\n",
                    i.exporter, i.subject
                );
            }
            out += "    ]\n  }\n";
        }
        out + "}\n"
    }

    /// The model: where a publish of `subject` in `account` arrives, as
    /// (account, subject) pairs, one per delivery path.
    fn targets(&self, account: usize, subject: &str) -> Vec<(usize, String)> {
        let mut out = vec![(account, subject.to_owned())];
        for i in &self.imports {
            match i.kind {
                Kind::Stream if i.exporter == account && matches(&i.subject, subject) => {
                    out.push((i.importer, map_subject(&i.subject, &i.local(), subject)));
                }
                Kind::Service if i.importer == account && matches(&i.local(), subject) => {
                    out.push((i.exporter, map_subject(&i.local(), &i.subject, subject)));
                }
                _ => {}
            }
        }
        out
    }

    /// Literal subjects worth publishing: instances of every export and
    /// every import's local subject, plus some that match nothing.
    fn interesting_subjects(&self) -> Vec<String> {
        let mut out: Vec<String> = ["x.a", "s.c", "svc.b.c", "a"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let patterns = self.exports.iter().map(|e| e.subject.to_owned()).chain(
            self.imports
                .iter()
                .flat_map(|i| [i.subject.clone(), i.local()]),
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

/// `subject` (matched by `from`) rewritten into `to`: same-shaped patterns
/// that differ in the first token, or a prefix added in front.
fn map_subject(from: &str, to: &str, subject: &str) -> String {
    if from == to {
        return subject.to_owned();
    }
    if let Some(prefix) = to.strip_suffix(from).filter(|p| p.ends_with('.')) {
        return format!("{prefix}{subject}");
    }
    let first = to.split('.').next().unwrap_or_default();
    replace_first(subject, first)
}

/// A subscription pattern derived from a subject: itself, one token a `*`,
/// or a tail cut into `>`.
fn pattern_of(subject: &str, how: u8, at: u8) -> String {
    let mut tokens: Vec<&str> = subject.split('.').collect();
    let i = usize::from(at) % tokens.len();
    match how % 4 {
        1 => tokens[i] = "*",
        2 => {
            tokens.truncate(i);
            tokens.push(">");
        }
        3 if i == 0 => return ">".to_owned(),
        _ => {}
    }
    tokens.join(".")
}

/// `(sid, subject)` of every MSG in `text`, sorted.
fn received(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = text
        .split("\r\n")
        .filter(|l| l.starts_with("MSG "))
        .map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            (parts[2].to_owned(), parts[1].to_owned())
        })
        .collect();
    out.sort();
    out
}

/// A client: its account and its subscription patterns.
type Client = (usize, Vec<String>);

fn run(
    plan: &Plan,
    clients: &[Client],
    publishes: &[(usize, String)],
) -> Result<(), TestCaseError> {
    let mut node = Node::new(&plan.render());
    let mut conns = Vec::new();
    for (account, patterns) in clients {
        let conn = node.client(&format!(
            r#"{{"user":"u{account}","pass":"p","verbose":false}}"#
        ));
        let subs: String = patterns
            .iter()
            .enumerate()
            .map(|(sid, p)| format!("SUB {p} {sid}\r\n"))
            .collect();
        prop_assert_eq!(node.exchange(conn, &subs), "PONG\r\n");
        conns.push(conn);
    }
    let mut expected: Vec<Vec<(String, String)>> = vec![Vec::new(); clients.len()];
    for (from, subject) in publishes {
        node.send(conns[*from], &format!("PUB {subject} 1\r\nm\r\n"));
        for (account, delivered) in plan.targets(clients[*from].0, subject) {
            for (c, (acc, patterns)) in clients.iter().enumerate() {
                for (sid, p) in patterns.iter().enumerate() {
                    if *acc == account && matches(p, &delivered) {
                        expected[c].push((sid.to_string(), delivered.clone()));
                    }
                }
            }
        }
    }
    for (c, conn) in conns.iter().enumerate() {
        let got = received(&node.exchange(*conn, ""));
        let mut want = std::mem::take(&mut expected[c]);
        want.sort();
        prop_assert_eq!(
            got,
            want,
            "client {} in account A{}; config:\n{}",
            c,
            clients[c].0,
            plan.render()
        );
    }
    Ok(())
}

fn export_choice() -> impl Strategy<Value = ExportChoice> {
    (
        any::<Index>(),
        any::<bool>(),
        any::<Index>(),
        prop::bool::weighted(0.3),
    )
}

fn import_choice() -> impl Strategy<Value = ImportChoice> {
    (any::<Index>(), any::<Index>(), any::<Index>(), any::<u8>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn nothing_leaks_across_accounts(
        accounts in 2usize..=4,
        exports in prop::collection::vec(export_choice(), 1..7),
        imports in prop::collection::vec(import_choice(), 0..9),
        clients in prop::collection::vec(
            (any::<Index>(), prop::collection::vec((any::<Index>(), any::<u8>(), any::<u8>()), 0..4)),
            1..7,
        ),
        publishes in prop::collection::vec((any::<Index>(), any::<Index>()), 0..30),
    ) {
        let plan = Plan::build(accounts, &exports, &imports);
        let subjects = plan.interesting_subjects();
        let clients: Vec<Client> = clients
            .iter()
            .map(|(acc, subs)| {
                let patterns = subs.iter().map(|(s, how, at)| pattern_of(s.get::<String>(&subjects), *how, *at)).collect();
                (acc.index(accounts), patterns)
            })
            .collect();
        let publishes: Vec<(usize, String)> = publishes
            .iter()
            .map(|(who, s)| (who.index(clients.len()), s.get::<String>(&subjects).clone()))
            .collect();
        run(&plan, &clients, &publishes)?;
    }
}

#[test]
fn the_model_helpers_agree_with_nats_subjects() {
    assert!(matches("s.*", "s.a") && !matches("s.*", "s.a.b") && matches("s.>", "s.a.b"));
    assert!(!matches("s.>", "s") && matches(">", "a") && !matches("s.a", "s"));
    assert!(is_subset("s.a", "s.*") && is_subset("s.a.b", "s.>") && !is_subset("s.>", "s.*"));
    assert!(!is_subset("s.*", "s.a") && is_subset("q.a.*", "q.>") && !is_subset("q.*", "q.b"));
    assert!(intersects("s.*", "s.a") && intersects("s.>", "s.a.b") && !intersects("s.*", "s.a.b"));
    assert!(!intersects("l1.a", "l2.a") && intersects("*.a", "l2.*"));
    assert_eq!(map_subject("s.*", "p3.s.*", "s.x"), "p3.s.x");
    assert_eq!(map_subject("s.>", "m2.>", "s.x.y"), "m2.x.y");
    assert_eq!(map_subject("l1.*", "svc.*", "l1.b"), "svc.b");
    assert_eq!(pattern_of("a.b.c", 2, 4), "a.>");
    assert_eq!(pattern_of("a.b.c", 1, 2), "a.b.*");
}

/// A fixed plan with every kind of import, so a regression in one shows up
/// without waiting for the generator to find it.
#[test]
fn every_kind_of_import_routes_as_the_model_says() {
    let plan = Plan {
        accounts: 3,
        exports: vec![
            Export {
                account: 1,
                kind: Kind::Stream,
                subject: "s.*",
                allowed: None,
            },
            Export {
                account: 1,
                kind: Kind::Service,
                subject: "svc.*",
                allowed: Some(vec![0]),
            },
            Export {
                account: 2,
                kind: Kind::Stream,
                subject: "t.*",
                allowed: None,
            },
        ],
        imports: vec![
            Import {
                importer: 0,
                exporter: 1,
                kind: Kind::Stream,
                subject: "s.*".into(),
                mapping: Mapping::Prefix("p0".into()),
            },
            Import {
                importer: 0,
                exporter: 1,
                kind: Kind::Service,
                subject: "svc.*".into(),
                mapping: Mapping::To("l1".into()),
            },
            Import {
                importer: 0,
                exporter: 2,
                kind: Kind::Stream,
                subject: "t.b".into(),
                mapping: Mapping::To("m2".into()),
            },
        ],
    };
    let clients: Vec<Client> = vec![
        (
            0,
            vec!["p0.s.*".into(), "m2.b".into(), "l1.*".into(), "s.*".into()],
        ),
        (1, vec!["svc.*".into(), "s.*".into()]),
        (2, vec![">".into()]),
    ];
    let publishes: Vec<(usize, String)> = ["s.a", "t.b", "t.c", "l1.x", "svc.y", "s.b"]
        .iter()
        .enumerate()
        .map(|(n, s)| (n % 3, s.to_string()))
        .collect();
    assert_eq!(
        plan.targets(1, "s.a"),
        vec![(1, "s.a".to_owned()), (0, "p0.s.a".to_owned())]
    );
    assert_eq!(
        plan.targets(0, "l1.x"),
        vec![(0, "l1.x".to_owned()), (1, "svc.x".to_owned())]
    );
    assert_eq!(
        plan.targets(2, "t.b"),
        vec![(2, "t.b".to_owned()), (0, "m2.b".to_owned())]
    );
    run(&plan, &clients, &publishes).unwrap();
}
