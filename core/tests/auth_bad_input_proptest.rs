//! Property: no credential a client can send makes authentication panic,
//! and none but the genuine one gets in. Random bytes, random JWT-shaped
//! text and single-character mutations of a valid user JWT are refused.

mod auth_support;

use std::collections::BTreeMap;

use auth_support::jwt;
use base64::Engine;
use natrix_core::auth::Trust;
use natrix_core::protocol::ConnectInfo;
use nkeys::KeyPair;
use proptest::prelude::*;
use serde_json::json;

struct Fixture {
    trust: Trust,
    user: KeyPair,
    good: String,
}

fn fixture() -> Fixture {
    let (op, acc, user) = (
        KeyPair::new_operator(),
        KeyPair::new_account(),
        KeyPair::new_user(),
    );
    let mut preload = BTreeMap::new();
    preload.insert(acc.public_key(), jwt::account(&op, &acc, json!({})));
    let trust = Trust::new(&[jwt::operator(&op, &[])], &preload).unwrap();
    let good = jwt::user(&acc, &acc, &user, json!({}), json!({}));
    Fixture { trust, user, good }
}

fn connect(jwt: &str, sig: &str) -> ConnectInfo {
    ConnectInfo {
        jwt: Some(jwt.to_owned()),
        sig: Some(sig.to_owned()),
        ..ConnectInfo::default()
    }
}

const NONCE: &str = "abcdefghijklmno";
const NOW: i64 = 1_750_000_000;

fn sign(kp: &KeyPair) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(kp.sign(NONCE.as_bytes()).unwrap())
}

fn auth(f: &Fixture, jwt: &str, sig: &str) -> bool {
    f.trust
        .authenticate(
            &connect(jwt, sig),
            Some(NONCE),
            NOW,
            "127.0.0.1".parse().unwrap(),
            "STANDARD",
        )
        .is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn garbage_is_refused(jwt in ".{0,300}", sig in ".{0,100}") {
        let f = fixture();
        prop_assert!(!auth(&f, &jwt, &sig));
    }

    #[test]
    fn jwt_shaped_garbage_is_refused(parts in prop::collection::vec("[A-Za-z0-9_-]{0,120}", 1..5)) {
        let f = fixture();
        let sig = sign(&f.user);
        prop_assert!(!auth(&f, &parts.join("."), &sig));
    }

    #[test]
    fn any_mutation_of_a_valid_jwt_is_refused(at in any::<prop::sample::Index>(), with in "[A-Za-z0-9_.-]") {
        let f = fixture();
        let sig = sign(&f.user);
        prop_assert!(auth(&f, &f.good, &sig), "the genuine credential gets in");
        let i = at.index(f.good.len());
        let mut bad = f.good.clone();
        bad.replace_range(i..=i, &with);
        // A base64 character whose dropped low bits do not change the bytes
        // decodes to the same JWT; only a real change must be refused.
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let same = bad.split('.').zip(f.good.split('.')).all(|(x, y)| b64.decode(x).ok() == b64.decode(y).ok() && b64.decode(y).is_ok())
            && bad.split('.').count() == 3;
        if bad != f.good && !same {
            prop_assert!(!auth(&f, &bad, &sig), "mutated at {i}: {bad}");
        }
    }
}
