//! Operator, account and user JWTs made the way `nsc` makes them, signed
//! with nkeys generated in the test (nothing is fetched).

use base64::Engine;
use nkeys::KeyPair;
use serde_json::{json, Value};

/// Signs `claims` (issuer `iss`, subject `sub`) into a JWT.
pub fn encode(issuer: &KeyPair, sub: &str, name: &str, nats: Value, extra: Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let mut claims = json!({
        "iat": 1_700_000_000i64,
        "iss": issuer.public_key(),
        "name": name,
        "sub": sub,
        "nats": nats,
    });
    if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    // Like nsc, the `jti` is a hash of the claims, so two different JWTs of
    // one account (a claim update) never share it.
    if claims.get("jti").is_none() {
        claims["jti"] = Value::from(format!("JTI{:016X}", fnv1a(claims.to_string().as_bytes())));
    }
    let body = b64.encode(claims.to_string());
    let signing_input = format!("{header}.{body}");
    let sig = b64.encode(issuer.sign(signing_input.as_bytes()).unwrap());
    format!("{signing_input}.{sig}")
}

/// FNV-1a, 64 bits: enough to tell test JWTs apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A self-signed operator JWT.
pub fn operator(op: &KeyPair, signing_keys: &[String]) -> String {
    encode(
        op,
        &op.public_key(),
        "OP",
        json!({"type": "operator", "version": 2, "signing_keys": signing_keys}),
        json!({}),
    )
}

/// An account JWT signed by `signer` (the operator or one of its signing keys).
pub fn account(signer: &KeyPair, acc: &KeyPair, nats_extra: Value) -> String {
    let mut nats = json!({
        "type": "account", "version": 2,
        "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1}
    });
    if let (Some(n), Some(e)) = (nats.as_object_mut(), nats_extra.as_object()) {
        for (k, v) in e {
            n.insert(k.clone(), v.clone());
        }
    }
    encode(signer, &acc.public_key(), "ACC", nats, json!({}))
}

/// A user JWT signed by `signer` (the account or a signing key of `acc`).
pub fn user(
    signer: &KeyPair,
    acc: &KeyPair,
    user: &KeyPair,
    nats_extra: Value,
    extra: Value,
) -> String {
    let mut nats = json!({"type": "user", "version": 2, "subs": -1, "data": -1, "payload": -1});
    if signer.public_key() != acc.public_key() {
        nats["issuer_account"] = json!(acc.public_key());
    }
    if nats_extra.get("scoped").is_some() {
        // Users of a scoped signing key carry no limits of their own.
        nats = json!({"type": "user", "version": 2, "issuer_account": acc.public_key()});
    }
    if let (Some(n), Some(e)) = (nats.as_object_mut(), nats_extra.as_object()) {
        for (k, v) in e.iter().filter(|(k, _)| *k != "scoped") {
            n.insert(k.clone(), v.clone());
        }
    }
    encode(signer, &user.public_key(), "U", nats, extra)
}

/// A `.creds` file as `nsc` writes it.
pub fn creds(jwt: &str, user: &KeyPair) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n",
        user.seed().unwrap()
    )
}

/// A config trusting `op` under the NATS resolver (`resolver_extra` goes
/// inside its block), with `sys` as the system account and `preload`'s
/// account JWTs preloaded after the system account's own.
pub fn resolver_config(
    op: &KeyPair,
    sys: &KeyPair,
    resolver_extra: &str,
    preload: &[(&KeyPair, String)],
) -> String {
    let mut config = format!(
        "operator: {}\nsystem_account: {}\nresolver: {{ type: full, dir: \"./jwt\" {resolver_extra} }}\nresolver_preload: {{\n {}: {}\n",
        operator(op, &[]),
        sys.public_key(),
        sys.public_key(),
        account(op, sys, json!({})),
    );
    for (acc, jwt) in preload {
        config.push_str(&format!(" {}: {}\n", acc.public_key(), jwt));
    }
    config.push_str("}\n");
    config
}

/// A version-1 JWT, as `nsc` wrote them before 2020: header
/// `{"typ":"jwt","alg":"ed25519"}`, the type at the top level of the claims.
pub fn encode_v1(issuer: &KeyPair, sub: &str, kind: &str, nats: Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"typ":"jwt","alg":"ed25519"}"#);
    let mut claims = json!({
        "iat": 1_553_840_337i64,
        "iss": issuer.public_key(),
        "name": kind,
        "sub": sub,
        "type": kind,
    });
    if nats.as_object().is_some_and(|n| !n.is_empty()) {
        claims["nats"] = nats;
    }
    claims["jti"] = Value::from(format!("JTI{:016X}", fnv1a(claims.to_string().as_bytes())));
    let body = b64.encode(claims.to_string());
    // Version 1 signs the encoded claims alone.
    let sig = b64.encode(issuer.sign(body.as_bytes()).unwrap());
    format!("{header}.{body}.{sig}")
}
