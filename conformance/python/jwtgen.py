"""Nkeys, operator/account/user JWTs and .creds files made at test time.

The one JWT generator of the Python suites: the nats-py auth tests and the
differential runner both import it. It is Python, not a Rust binary, because
both need ed25519 at run time anyway: nats-py signs the server's nonce with
the `nkeys` package (its `nkeys_seed` and `user_credentials` options import
it), and the differential runner must sign each server's fresh nonce in the
middle of a raw-socket scenario. Keys come from os.urandom; nothing is
fetched. The claims are laid out as `nsc` writes them, like the Rust helper
core/tests/auth_support/jwt.rs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os

import nkeys

_PREFIX = {
    "operator": nkeys.PREFIX_BYTE_OPERATOR,
    "account": nkeys.PREFIX_BYTE_ACCOUNT,
    "user": nkeys.PREFIX_BYTE_USER,
}
# A fixed issue time: JWTs made twice from the same keys are identical.
IAT = 1_700_000_000
# Far in the past: a JWT expiring then is expired for any server clock.
LONG_AGO = 1_600_000_000


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Key:
    """An nkey pair of one role, with its seed and public key as text."""

    def __init__(self, role: str):
        seed = nkeys.encode_seed(os.urandom(32), _PREFIX[role])
        self.seed = seed.decode()
        self._kp = nkeys.from_seed(bytearray(seed))
        self.public = self._kp.public_key.decode()

    def sign(self, data: bytes) -> bytes:
        return self._kp.sign(data)

    def __repr__(self) -> str:
        return f"Key({self.public})"


def operator_key() -> Key:
    return Key("operator")


def account_key() -> Key:
    return Key("account")


def user_key() -> Key:
    return Key("user")


def sign_nonce(key: Key, nonce: str) -> str:
    """The CONNECT `sig` for an INFO `nonce`: ed25519 over its bytes, base64url."""
    return b64url(key.sign(nonce.encode()))


def encode(issuer: Key, sub: str, name: str, nats: dict, extra: dict | None = None) -> str:
    """Signs claims (issuer `issuer`, subject `sub`) into a JWT."""
    header = b64url(b'{"typ":"JWT","alg":"ed25519-nkey"}')
    claims = {"iat": IAT, "iss": issuer.public, "name": name, "sub": sub, "nats": nats}
    claims.update(extra or {})
    # As nsc does: the id is a hash of the claims, so it differs per version.
    digest = hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()
    claims["jti"] = base64.b32encode(digest).decode().rstrip("=")
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{body}"
    return f"{signing_input}.{b64url(issuer.sign(signing_input.encode()))}"


def operator(op: Key, signing_keys: list[Key] = (), system_account: Key | None = None) -> str:
    """A self-signed operator JWT."""
    nats = {"type": "operator", "version": 2, "signing_keys": [k.public for k in signing_keys]}
    if system_account is not None:
        nats["system_account"] = system_account.public
    return encode(op, op.public, "OP", nats)


def account(signer: Key, acc: Key, name: str = "ACC", extra: dict | None = None,
            **nats_extra) -> str:
    """An account JWT signed by `signer` (the operator or one of its signing keys).

    `nats_extra` goes into the `nats` claims: exports, imports, signing_keys,
    revocations, limits...; `extra` adds top-level claims such as a later `iat`.
    """
    nats = {"type": "account", "version": 2,
            "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                       "wildcards": True, "conn": -1, "leaf": -1}}
    nats.update(nats_extra)
    return encode(signer, acc.public, name, nats, extra)


def user(signer: Key, acc: Key, usr: Key, name: str = "U", scoped: bool = False,
         extra: dict | None = None, **nats_extra) -> str:
    """A user JWT signed by `signer` (the account or one of its signing keys).

    A user of a scoped signing key carries no limits or permissions of its
    own (`scoped=True`); `extra` adds top-level claims such as `exp`.
    """
    if scoped:
        nats = {"type": "user", "version": 2}
    else:
        nats = {"type": "user", "version": 2, "subs": -1, "data": -1, "payload": -1}
    if signer.public != acc.public:
        nats["issuer_account"] = acc.public
    nats.update(nats_extra)
    return encode(signer, usr.public, name, nats, extra)


def activation(exporter: Key, importer: Key, subject: str, kind: str) -> str:
    """A token by which `exporter` lets `importer` import a private export."""
    nats = {"type": "activation", "version": 2, "subject": subject, "kind": kind}
    return encode(exporter, importer.public, "act", nats)


def scoped_key(key: Key, role: str, template: dict) -> dict:
    """A `signing_keys` entry of an account JWT: a key with a permission template."""
    return {"kind": "user_scope", "key": key.public, "role": role, "template": template}


def creds(jwt: str, usr: Key) -> str:
    """A .creds file as `nsc` writes it."""
    return ("-----BEGIN NATS USER JWT-----\n" + jwt + "\n------END NATS USER JWT------\n\n"
            "************************* IMPORTANT *************************\n"
            "NKEY Seed printed below can be used to sign and prove identity.\n"
            "NKEYs are sensitive and should be treated as secrets.\n\n"
            "-----BEGIN USER NKEY SEED-----\n" + usr.seed + "\n------END USER NKEY SEED------\n\n"
            "*************************************************************\n")


def operator_file(jwt: str) -> str:
    """An operator JWT file as `nsc` exports it (the server strips the armour)."""
    return f"-----BEGIN NATS OPERATOR JWT-----\n{jwt}\n------END NATS OPERATOR JWT------\n"


def tamper(jwt: str) -> str:
    """The same JWT with its signature's first byte changed: a bad signature."""
    head, body, sig = jwt.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[0] ^= 0xFF
    return f"{head}.{body}.{b64url(bytes(raw))}"
