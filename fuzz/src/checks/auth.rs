//! Operator-mode authentication: JWT decoding and signatures, the trusted
//! operators and account JWTs, user JWTs with their `src`, `times`,
//! `times_location`, connection types and limits, scoped signing key
//! templates, activation tokens and the import checks run on JWT accounts.
//!
//! The JWTs are well-formed skeletons signed with fixed test keys, so the
//! fuzzer gets past the signature and reaches every claim; their claims are
//! mutated field by field, replaced by raw JSON (still signed), or the
//! signed text itself is damaged.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine;
use natrix_core::auth::jwt::{self, ActivationNats, OperatorNats, UserNats};
use natrix_core::auth::restrictions;
use natrix_core::auth::template::{expand_subject, TemplateContext};
use natrix_core::auth::Trust;
use natrix_core::account::checks::check_imports;
use natrix_core::protocol::ConnectInfo;
use nkeys::{KeyPair, KeyPairType};
use serde_json::{json, Map, Value};

/// The wall clock the interesting times sit around: 2023-11-14T22:13:20Z.
pub(crate) const NOW_UNIX: i64 = 1_700_000_000;

/// How many subjects one template may stand for before the check calls
/// the expansion runaway (a user carries a few dozen tags at most).
const EXPANSION_MAX: usize = 4096;

/// The fixed keys every JWT is signed with: operators, accounts, users.
pub(crate) struct Keys {
    pub(crate) all: Vec<KeyPair>,
}

/// Key indexes in [`Keys::all`].
pub(crate) const OPERATOR: usize = 0;
/// The operator's signing key.
pub(crate) const OPERATOR_SIGNER: usize = 1;
/// The system account.
pub(crate) const SYS: usize = 2;
/// An account.
pub(crate) const ACC_A: usize = 3;
/// A signing key of account A (plain or scoped, as the JWT says).
pub(crate) const ACC_SIGNER: usize = 5;
/// A user (the next key is another user; then an operator nobody trusts
/// and a server key).
pub(crate) const USER_U: usize = 6;

pub(crate) fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let kinds = [
            KeyPairType::Operator,
            KeyPairType::Operator,
            KeyPairType::Account,
            KeyPairType::Account,
            KeyPairType::Account,
            KeyPairType::Account,
            KeyPairType::User,
            KeyPairType::User,
            KeyPairType::Operator,
            KeyPairType::Server,
        ];
        let all = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| KeyPair::new_from_raw(kind.clone(), [i as u8 + 1; 32]).expect("a key"))
            .collect();
        Keys { all }
    })
}

impl Keys {
    pub(crate) fn key(&self, i: u8) -> &KeyPair {
        &self.all[usize::from(i) % self.all.len()]
    }

    pub(crate) fn public(&self, i: usize) -> String {
        self.all[i].public_key()
    }
}

/// Signs `claims` as `signer` into `header.claims.signature`.
pub(crate) fn sign(signer: &KeyPair, claims: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let input = format!("{header}.{}", b64.encode(claims));
    let sig = signer.sign(input.as_bytes()).expect("signing works");
    format!("{input}.{}", b64.encode(sig))
}

/// A string drawn from plausible values, or arbitrary text.
#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum Text {
    Pick(u8),
    /// The public key of a test key.
    Key(u8),
    Any(String),
}

const WORDS: &[&str] = &[
    "",
    "a",
    "a.b",
    "a.*",
    "a.>",
    ">",
    "*",
    "foo.bar",
    "$SYS.REQ.>",
    "_INBOX.>",
    "{{name()}}",
    "{{subject()}}",
    "{{account-name()}}",
    "{{account-subject()}}",
    "{{tag(t)}}",
    "{{account-tag(t)}}",
    "x.{{tag(t)}}.{{tag(t)}}",
    "{{tag(t)}}.{{tag(t)}}.{{tag(t)}}.{{tag(t)}}",
    "{{name()",
    "{{nope()}}",
    "t:{{name()}}",
    "t:a",
    "t:b",
    "T: c ",
    "account",
    "user",
    "operator",
    "activation",
    "stream",
    "service",
    "Stream",
    "Chunked",
    "STANDARD",
    "WEBSOCKET",
    "MQTT",
    "UTC",
    "Local",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "utc",
    "../../etc/passwd",
    "00:00:00",
    "23:59:59",
    "12:00:00",
    "9:30:00",
    "02:30:00",
    "11:59:59.999",
    "24:00:00",
    "10.0.0.0/8",
    "127.0.0.1",
    "127.0.0.0/33",
    "::1/128",
    "::ffff:0:0/96",
    "0.0.0.0/0",
    "1.2.3.4/-1",
];

impl Text {
    pub(crate) fn get(&self) -> String {
        match self {
            Text::Pick(i) => WORDS[usize::from(*i) % WORDS.len()].to_owned(),
            Text::Key(i) => keys().key(*i).public_key(),
            Text::Any(s) => s.chars().take(256).collect(),
        }
    }
}

/// A JSON value for a mutated field: mostly the right type, sometimes not.
#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Small(i8),
    Float(f64),
    Str(Text),
    List(Vec<Text>),
    /// `[{"start": …, "end": …}]`, `times` as user JWTs carry them.
    Windows(Vec<(Text, Text)>),
    Object(Vec<(Text, Text)>),
}

impl Json {
    pub(crate) fn get(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => json!(b),
            Json::Int(n) => json!(n),
            Json::Small(n) => json!(n),
            Json::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Json::Str(t) => json!(t.get()),
            Json::List(l) => l.iter().take(64).map(Text::get).collect(),
            Json::Windows(w) => w
                .iter()
                .take(16)
                .map(|(s, e)| json!({"start": s.get(), "end": e.get()}))
                .collect(),
            Json::Object(o) => Value::Object(
                o.iter()
                    .take(16)
                    .map(|(k, v)| (k.get(), json!(v.get())))
                    .collect(),
            ),
        }
    }
}

/// Where in the claims a mutated value goes.
const FIELDS: &[&str] = &[
    "iat",
    "exp",
    "nbf",
    "name",
    "iss",
    "sub",
    "jti",
    "nats",
    "nats.type",
    "nats.version",
    "nats.signing_keys",
    "nats.system_account",
    "nats.issuer_account",
    "nats.bearer_token",
    "nats.tags",
    "nats.src",
    "nats.times",
    "nats.times_location",
    "nats.allowed_connection_types",
    "nats.subs",
    "nats.payload",
    "nats.data",
    "nats.pub",
    "nats.pub.allow",
    "nats.pub.deny",
    "nats.sub.allow",
    "nats.sub.deny",
    "nats.resp",
    "nats.resp.max",
    "nats.resp.ttl",
    "nats.revocations",
    "nats.default_permissions",
    "nats.limits",
    "nats.limits.subs",
    "nats.limits.payload",
    "nats.limits.imports",
    "nats.limits.exports",
    "nats.limits.wildcards",
    "nats.limits.conn",
    "nats.limits.disallow_bearer",
    "nats.exports",
    "nats.imports",
    "nats.subject",
    "nats.accounts",
];

/// One JWT: who signs it, for whom, its claims and how it is damaged.
#[derive(Arbitrary, Debug, Clone)]
pub(crate) struct JwtSpec {
    pub(crate) signer: u8,
    pub(crate) subject: u8,
    pub(crate) kind: u8,
    pub(crate) exp: Time,
    pub(crate) shape: Shape,
    pub(crate) fields: Vec<(u8, Json)>,
    pub(crate) damage: Damage,
}

/// A time claim: none, near [`NOW_UNIX`], or anything.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub(crate) enum Time {
    None,
    Near(i16),
    Any(i64),
}

impl Time {
    pub(crate) fn get(self) -> i64 {
        match self {
            Time::None => 0,
            Time::Near(d) => NOW_UNIX + i64::from(d) * 60,
            Time::Any(t) => t,
        }
    }
}

/// An import: subject, exporting key, service or stream, local subject,
/// and maybe an activation token.
pub(crate) type ImportSpec = (Text, u8, bool, Text, Option<Box<JwtSpec>>);

/// The structured part of the claims, by kind.
#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum Shape {
    Plain,
    /// An account with exports, imports (activation tokens included),
    /// signing keys (maybe scoped) and limits.
    Account {
        exports: Vec<(Text, bool, bool)>,
        imports: Vec<ImportSpec>,
        scoped: Option<(Vec<Text>, Vec<Text>)>,
        limited: bool,
        tags: Vec<Text>,
    },
    /// A user with permissions, tags and restrictions.
    User {
        pub_allow: Option<Vec<Text>>,
        sub_deny: Option<Vec<Text>>,
        tags: Vec<Text>,
        bearer: bool,
        windows: Vec<(Text, Text)>,
        zone: Text,
        src: Vec<Text>,
    },
}

impl Shape {
    /// Fills the `nats` of an account JWT: exports, imports (with nested
    /// activation tokens down to `depth` 2), signing keys, limits, tags.
    fn account_claims(&self, nats: &mut Value, depth: u8) {
        let Shape::Account {
            exports,
            imports,
            scoped,
            limited,
            tags,
        } = self
        else {
            return;
        };
        let k = keys();
        nats["exports"] = exports
            .iter()
            .take(8)
            .map(|(s, service, token)| {
                let kind = if *service { "service" } else { "stream" };
                json!({"subject": s.get(), "type": kind, "token_req": token})
            })
            .collect();
        nats["imports"] = imports
            .iter()
            .take(8)
            .map(|(s, acc, service, local, token)| {
                let kind = if *service { "service" } else { "stream" };
                let mut i = json!({"subject": s.get(), "account": k.key(*acc).public_key(),
                                   "type": kind, "local_subject": local.get()});
                if let Some(t) = token.as_ref().filter(|_| depth < 2) {
                    i["token"] = json!(t.encode_at(depth + 1));
                }
                i
            })
            .collect();
        let signer = k.public(ACC_SIGNER);
        nats["signing_keys"] = match scoped {
            None => json!([signer]),
            Some((allow, deny)) => json!([{"kind": "user_scope", "key": signer, "role": "r",
                "template": {"pub": {"allow": texts(allow)}, "sub": {"deny": texts(deny)}}}]),
        };
        if !limited {
            nats["limits"] = json!({"subs": -1, "data": -1, "payload": -1, "imports": -1,
                "exports": -1, "wildcards": true, "conn": -1, "leaf": -1});
        }
        nats["tags"] = json!(texts(tags));
    }

    /// Fills the `nats` of a user JWT: permissions, tags, bearer, `times`
    /// in a zone, `src` networks.
    fn user_claims(&self, nats: &mut Value) {
        let Shape::User {
            pub_allow,
            sub_deny,
            tags,
            bearer,
            windows,
            zone,
            src,
        } = self
        else {
            return;
        };
        nats["pub"] = json!({"allow": pub_allow.as_deref().map(texts)});
        nats["sub"] = json!({"deny": sub_deny.as_deref().map(texts)});
        nats["tags"] = json!(texts(tags));
        nats["bearer_token"] = json!(bearer);
        nats["times"] = windows
            .iter()
            .take(8)
            .map(|(s, e)| json!({"start": s.get(), "end": e.get()}))
            .collect();
        nats["times_location"] = json!(zone.get());
        nats["src"] = json!(texts(src));
        nats["subs"] = json!(-1);
        nats["payload"] = json!(-1);
    }
}

/// How the signed text is spoiled after signing, if at all.
#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum Damage {
    None,
    /// XOR one byte of the text.
    Flip(u16, u8),
    Truncate(u16),
    /// Claims that are these raw bytes, still properly signed.
    RawClaims(Vec<u8>),
    /// Not a JWT at all.
    Text(String),
}

const KINDS: &[&str] = &[
    "operator",
    "account",
    "user",
    "activation",
    "server",
    "generic",
];

impl JwtSpec {
    /// The claims as JSON, before the mutated fields.
    fn skeleton(&self, depth: u8) -> Value {
        let k = keys();
        let kind = KINDS[usize::from(self.kind) % KINDS.len()];
        let mut nats = json!({"type": kind, "version": 2});
        match &self.shape {
            Shape::Plain => {}
            Shape::Account { .. } => self.shape.account_claims(&mut nats, depth),
            Shape::User { .. } => self.shape.user_claims(&mut nats),
        }
        json!({
            "jti": format!("J{}", self.kind),
            "iat": NOW_UNIX - 3600,
            "iss": k.key(self.signer).public_key(),
            "sub": k.key(self.subject).public_key(),
            "name": "N",
            "exp": self.exp.get(),
            "nats": nats,
        })
    }

    /// The claims with every mutated field set.
    pub(crate) fn claims(&self, depth: u8) -> Value {
        let mut claims = self.skeleton(depth);
        for (field, value) in self.fields.iter().take(8) {
            let path = FIELDS[usize::from(*field) % FIELDS.len()];
            set(&mut claims, path, value.get());
        }
        claims
    }

    /// The JWT text, and whether it is exactly what the signer signed.
    pub(crate) fn encode_checked(&self, depth: u8) -> (String, bool) {
        let signer = keys().key(self.signer);
        let claims = self.claims(depth).to_string();
        match &self.damage {
            Damage::None => {
                // Mutated fields may break the claims' types or the issuer.
                let typed = serde_json::from_str::<jwt::Claims<Value>>(&claims);
                let intact = typed.is_ok_and(|c| c.iss == signer.public_key());
                (sign(signer, claims.as_bytes()), intact)
            }
            Damage::Flip(at, x) => {
                let mut text = sign(signer, claims.as_bytes()).into_bytes();
                let at = usize::from(*at) % text.len();
                text[at] ^= x | 1;
                (String::from_utf8_lossy(&text).into_owned(), false)
            }
            Damage::Truncate(n) => {
                let text = sign(signer, claims.as_bytes());
                let n = usize::from(*n) % text.len();
                (text[..n].to_owned(), false)
            }
            Damage::RawClaims(raw) => (sign(signer, raw), false),
            Damage::Text(t) => (t.clone(), false),
        }
    }

    pub(crate) fn encode_at(&self, depth: u8) -> String {
        self.encode_checked(depth).0
    }

    pub(crate) fn encode(&self) -> String {
        self.encode_at(0)
    }
}

fn texts(l: &[Text]) -> Vec<String> {
    l.iter().take(32).map(Text::get).collect()
}

/// Sets a dotted path in `v`, making objects on the way.
fn set(v: &mut Value, path: &str, value: Value) {
    let mut at = v;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let obj = at.as_object_mut().expect("just made an object");
        if parts.peek().is_none() {
            obj.insert(part.to_owned(), value);
            return;
        }
        at = obj.entry(part.to_owned()).or_insert(Value::Null);
    }
}

/// Everything one `jwt_auth` input does.
#[derive(Arbitrary, Debug)]
struct AuthInput {
    operators: Vec<JwtSpec>,
    preload: Vec<(u8, JwtSpec)>,
    updates: Vec<JwtSpec>,
    user: JwtSpec,
    sig: Sig,
    now: Time,
    peer: Peer,
    connection_type: Text,
    raw: String,
    template: (Text, Vec<Text>, Vec<Text>, Text),
}

/// The CONNECT signature of the nonce.
#[derive(Arbitrary, Debug)]
enum Sig {
    None,
    /// Signed by a test key, base64url or standard base64.
    By(u8, bool),
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Peer {
    V4([u8; 4]),
    V6([u8; 16]),
}

const NONCE: &str = "fuzz-nonce";

/// Input: an `arbitrary` set of operator JWTs, preloaded account JWTs,
/// claim updates, a user JWT with its nonce signature, a time, a peer, and
/// a template with its context.
///
/// Never panics, never hangs. A JWT exactly as signed decodes; a damaged
/// one does not. Authentication is deterministic, and a user it admits
/// belongs to a trusted account and expires after `now`. The next expiry
/// of the trust lies after `now`. Template expansion is finite.
pub fn jwt_auth(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(input) = AuthInput::arbitrary(&mut u) else {
        return;
    };
    let now = input.now.get();
    check_decode(&input.user);
    let _ = jwt::decode::<Value>(&input.raw);
    let _ = jwt::extract(&input.raw);
    let operators: Vec<String> = input
        .operators
        .iter()
        .take(3)
        .map(JwtSpec::encode)
        .collect();
    let preload: BTreeMap<String, String> = input
        .preload
        .iter()
        .take(4)
        .map(|(key, spec)| (keys().key(*key).public_key(), spec.encode()))
        .collect();
    let Ok(mut trust) = Trust::new(&operators, &preload) else {
        return;
    };
    for update in input.updates.iter().take(4) {
        check_decode(update);
        let _ = trust.update_account(&update.encode());
    }
    check_trust(&trust, now);
    let connect = connect_info(&input.user, &input.sig);
    let peer = match input.peer {
        Peer::V4(b) => IpAddr::from(b),
        Peer::V6(b) => IpAddr::from(b),
    };
    let conn_type = input.connection_type.get();
    let first = trust.authenticate(&connect, Some(NONCE), now, peer, &conn_type);
    let again = trust.authenticate(&connect, Some(NONCE), now, peer, &conn_type);
    assert_eq!(first, again, "authentication is not deterministic");
    if let Ok(id) = first {
        assert!(
            trust.account(&id.account, now).is_ok(),
            "admitted into an account that does not verify: {id:?}"
        );
        assert!(
            id.expires_at.is_none_or(|at| at > now),
            "admitted already expired at {now}: {id:?}"
        );
    }
    let user: Result<jwt::Claims<UserNats>, _> = jwt::decode(&input.user.encode());
    if let Ok(user) = user {
        let _ = restrictions::check(&user.nats.limits, peer, now, &conn_type);
    }
    check_template(&input.template);
}

/// A JWT exactly as signed decodes; any change to the text fails.
fn check_decode(spec: &JwtSpec) {
    let (text, intact) = spec.encode_checked(0);
    let decoded = jwt::decode::<Value>(&text);
    if intact {
        assert!(decoded.is_ok(), "a signed JWT does not decode: {decoded:?}");
    }
    if let Damage::Flip(..) | Damage::Truncate(_) = spec.damage {
        let pristine = sign(
            keys().key(spec.signer),
            spec.claims(0).to_string().as_bytes(),
        );
        if text.trim() != pristine {
            assert!(
                decoded.is_err(),
                "damaged JWT decoded: {text}, pristine {pristine}"
            );
        }
    }
    // Typed decodes reach every claim struct.
    let _ = jwt::decode::<OperatorNats>(&text);
    let _ = jwt::decode::<ActivationNats>(&text);
    if let Ok(account) = Trust::decode_account(&text) {
        let _ = account.nats.validate();
    }
}

/// The trust's derived views agree with `now`.
fn check_trust(trust: &Trust, now: i64) {
    let (configs, _problems) = trust.account_configs(now);
    let checked = check_imports(&configs);
    for r in &checked.accepted {
        assert!(r.importer < configs.len() && r.exporter < configs.len());
        assert!(r.import < configs[r.importer].imports.len());
    }
    if let Some(next) = trust.next_expiry(now) {
        assert!(next > now, "next expiry {next} not after {now}");
    }
    let _ = trust.expired_between(now.saturating_sub(86_400), now);
    for key in trust.account_keys() {
        if let Some(revoked) = trust.revocations(key, now) {
            let _ = revoked("U", now);
        }
    }
}

fn connect_info(user: &JwtSpec, sig: &Sig) -> ConnectInfo {
    let sig = match sig {
        Sig::None => None,
        Sig::By(key, url) => {
            let raw = keys()
                .key(*key)
                .sign(NONCE.as_bytes())
                .expect("signing works");
            Some(if *url {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
            } else {
                base64::engine::general_purpose::STANDARD.encode(raw)
            })
        }
        Sig::Any(s) => Some(s.clone()),
    };
    let json = json!({"jwt": user.encode(), "sig": sig, "verbose": false});
    ConnectInfo::parse(json.to_string().as_bytes()).expect("a CONNECT the check made")
}

/// Expanding a template terminates with a bounded number of subjects.
fn check_template((subject, tags, account_tags, name): &(Text, Vec<Text>, Vec<Text>, Text)) {
    let tags = texts(tags);
    let account_tags = texts(account_tags);
    let name = name.get();
    let ctx = TemplateContext {
        name: &name,
        subject: "UKEY",
        account_name: &name,
        account_subject: "AKEY",
        tags: &tags,
        account_tags: &account_tags,
    };
    if let Ok(out) = expand_subject(&subject.get(), &ctx) {
        assert!(out.len() <= EXPANSION_MAX, "{} subjects", out.len());
    }
}
