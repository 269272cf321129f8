//! NATS nkeys: ed25519 public keys written as base32 text with a one-byte
//! role prefix and a CRC-16 checksum (`U…` users, `A…` accounts, `O…`
//! operators). The server only verifies signatures; it never signs, so no
//! key generation (and no OS randomness) lives here.

use ed25519_dalek::{Signature, Verifier, VerifyingKey};

/// The role a public nkey is for: its first character.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRole {
    /// `O`: an operator.
    Operator,
    /// `A`: an account.
    Account,
    /// `U`: a user.
    User,
    /// `N`: a server.
    Server,
}

impl KeyRole {
    fn prefix_byte(self) -> u8 {
        match self {
            KeyRole::Operator => 14 << 3,
            KeyRole::Account => 0,
            KeyRole::User => 20 << 3,
            KeyRole::Server => 13 << 3,
        }
    }
}

/// Why a public nkey or a signature was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NkeyError {
    /// Not base32, or the wrong length.
    #[error("malformed nkey")]
    Malformed,
    /// The checksum does not match.
    #[error("nkey checksum mismatch")]
    Checksum,
    /// A key of another role (e.g. an account key where a user key belongs).
    #[error("nkey has the wrong role")]
    WrongRole,
    /// The bytes are not an ed25519 point.
    #[error("nkey is not a valid ed25519 key")]
    BadKey,
    /// The signature is not base64, or does not verify.
    #[error("signature does not verify")]
    BadSignature,
}

/// Length of an encoded public nkey: base32 of 1 + 32 + 2 bytes.
pub const PUBLIC_KEY_LEN: usize = 56;

/// Decodes a public nkey of `role` into its 32 ed25519 key bytes.
pub fn decode_public(key: &str, role: KeyRole) -> Result<[u8; 32], NkeyError> {
    if key.len() != PUBLIC_KEY_LEN {
        return Err(NkeyError::Malformed);
    }
    let mut raw = [0u8; 35];
    base32_decode(key.as_bytes(), &mut raw)?;
    let (body, sum) = raw.split_at(33);
    if crc16(body) != u16::from_le_bytes([sum[0], sum[1]]) {
        return Err(NkeyError::Checksum);
    }
    if body[0] != role.prefix_byte() {
        return Err(NkeyError::WrongRole);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&body[1..]);
    Ok(out)
}

/// The role of a public nkey, without checking anything else.
pub fn role_of(key: &str) -> Option<KeyRole> {
    match key.as_bytes().first()? {
        b'O' => Some(KeyRole::Operator),
        b'A' => Some(KeyRole::Account),
        b'U' => Some(KeyRole::User),
        b'N' => Some(KeyRole::Server),
        _ => None,
    }
}

/// Verifies that `signature` (raw bytes) signs `message` under public nkey `key`.
pub fn verify(key: &str, role: KeyRole, message: &[u8], signature: &[u8]) -> Result<(), NkeyError> {
    let bytes = decode_public(key, role)?;
    let vk = VerifyingKey::from_bytes(&bytes).map_err(|_| NkeyError::BadKey)?;
    let sig = Signature::from_slice(signature).map_err(|_| NkeyError::BadSignature)?;
    vk.verify(message, &sig)
        .map_err(|_| NkeyError::BadSignature)
}

/// Decodes a signature as clients send it: base64url without padding, or
/// (as nats-server also accepts) standard base64.
pub fn decode_signature(sig: &str) -> Result<Vec<u8>, NkeyError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(sig))
        .map_err(|_| NkeyError::BadSignature)
}

/// RFC 4648 base32 without padding; `out` must be exactly the decoded length.
fn base32_decode(text: &[u8], out: &mut [u8]) -> Result<(), NkeyError> {
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return Err(NkeyError::Malformed),
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            let slot = out.get_mut(n).ok_or(NkeyError::Malformed)?;
            *slot = (acc >> bits) as u8;
            n += 1;
        }
    }
    if n == out.len() {
        Ok(())
    } else {
        Err(NkeyError::Malformed)
    }
}

/// CRC-16/XMODEM, the checksum nkeys carry.
fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_real_user_key_and_rejects_damage() {
        let key = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4";
        assert!(decode_public(key, KeyRole::User).is_ok());
        assert_eq!(
            decode_public(key, KeyRole::Account),
            Err(NkeyError::WrongRole)
        );
        let damaged = key.replacen('X', "Y", 1);
        assert_eq!(
            decode_public(&damaged, KeyRole::User),
            Err(NkeyError::Checksum)
        );
        assert_eq!(
            decode_public("U1", KeyRole::User),
            Err(NkeyError::Malformed)
        );
        let lower = key.to_ascii_lowercase();
        assert_eq!(
            decode_public(&lower, KeyRole::User),
            Err(NkeyError::Malformed)
        );
    }
}
