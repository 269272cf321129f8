//! Checking a password or token against a configured bcrypt hash
//! (`$2a$11$…`, as `nats server passwd` and `htpasswd -B` write them).
//!
//! Only verification lives here: it is pure computation over the salt in
//! the hash, so no randomness is needed.

use base64::Engine;

/// True when a configured secret is a bcrypt hash rather than plain text.
/// nats-server decides the same way, by the `$2` version prefix.
pub fn is_bcrypt(secret: &str) -> bool {
    let b = secret.as_bytes();
    b.len() > 4 && b.starts_with(b"$2") && matches!(b[2], b'a' | b'b' | b'x' | b'y') && b[3] == b'$'
}

/// Checks `given` against the bcrypt `hash`. A malformed hash matches nothing.
pub fn verify(hash: &str, given: &str) -> bool {
    let Some((cost, salt, expected)) = split(hash) else {
        return false;
    };
    // bcrypt hashes the NUL-terminated password, cut at 72 bytes.
    let mut pass = [0u8; 72];
    let n = given.len().min(72);
    pass[..n].copy_from_slice(&given.as_bytes()[..n]);
    let used = (n + 1).min(72);
    let out = bcrypt::bcrypt(cost, salt, &pass[..used]);
    out[..23]
        .iter()
        .zip(expected.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// `$2a$CC$` + 22 characters of salt + 31 characters of hash.
fn split(hash: &str) -> Option<(u32, [u8; 16], [u8; 23])> {
    if hash.len() != 60 || !is_bcrypt(hash) || hash.as_bytes()[6] != b'$' {
        return None;
    }
    let cost: u32 = hash.get(4..6)?.parse().ok()?;
    if !(4..=31).contains(&cost) {
        return None;
    }
    let mut salt = [0u8; 18];
    let mut sum = [0u8; 24];
    let salt_len = bcrypt::BASE_64
        .decode_slice(hash.get(7..29)?, &mut salt)
        .ok()?;
    let sum_len = bcrypt::BASE_64
        .decode_slice(hash.get(29..60)?, &mut sum)
        .ok()?;
    if salt_len != 16 || sum_len != 23 {
        return None;
    }
    let mut s = [0u8; 16];
    s.copy_from_slice(&salt[..16]);
    let mut h = [0u8; 23];
    h.copy_from_slice(&sum[..23]);
    Some((cost, s, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    // OpenBSD's published bcrypt test vectors.
    const VECTORS: &[(&str, &str)] = &[
        (
            "U*U",
            "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        ),
        (
            "U*U*",
            "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK",
        ),
        (
            "U*U*U",
            "$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a",
        ),
    ];

    #[test]
    fn verifies_known_vectors() {
        for (pass, hash) in VECTORS {
            assert!(verify(hash, pass), "{pass}");
            assert!(!verify(hash, "U*U*U*"), "{pass}");
        }
    }

    #[test]
    fn recognises_hashes() {
        assert!(is_bcrypt(VECTORS[0].1));
        assert!(is_bcrypt("$2b$10$abc"));
        assert!(!is_bcrypt("plain"));
        assert!(!is_bcrypt("$2q$10$abc"));
    }

    #[test]
    fn malformed_hash_matches_nothing() {
        assert!(!verify("$2a$04$short", "x"));
        assert!(!verify(
            "$2a$99$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
            "x"
        ));
    }
}
