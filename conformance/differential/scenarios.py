"""Differential scenarios, written once as data and replayed on each server.

A scenario is a dict:

    name     unique id, used in reports and in allowlist.json
    args     extra command-line flags for the server (optional)
    config   config file body, passed with -c (optional)
    steps    a list of tuples, run in order:
             ("open", conn)          open a TCP connection, record the INFO it sends
             ("send", conn, bytes)   write raw bytes
             ("sync", conn)          send PING, record everything up to PONG (or close)
             ("read", conn)          record whatever arrives until 300 ms of silence or close
             ("sleep", seconds)      wait
             ("close", conn)         close the connection (its slot may be reused)
             ("reload", config)      rewrite the config file, send SIGHUP, record
                                     the outcome ("reloaded" or the refusal)
             ("lame_duck",)          send SIGUSR2: lame duck mode
             ("send_fn", conn, fn)   write fn(connection): bytes made from its first
                                     INFO (`conn.info`, e.g. the nonce to sign) or
                                     the lines it received so far (`conn.seen`)
    mask     [(regex, replacement)] applied to every non-INFO line (optional),
             for values that are random on both servers
    json_payload_keys
             payload lines that are JSON objects are compared as data (key
             order free), the listed keys by JSON type only (optional)
    json_volatile_keys
             the same for JSON payloads, but the listed keys are masked at
             any depth (JetStream responses: timestamps, leader) (optional)
    json_shape
             JSON payloads are compared by shape only: keys and value types
             (documents of monitoring requests) (optional)

System account events and requests are in sys_scenarios.py.

Monitoring scenarios have ``"monitor": [paths]`` instead of (or after)
steps: the server is started with ``-m``, the steps run, then each path is
fetched over HTTP and the JSON's shape (keys and value types) is recorded.
"""

CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\n'
USERS_CONFIG = """
authorization {
  users = [
    { user: alice, password: "wonder land" }
    { user: bob, password: b0bpass }
  ]
}
"""


def connected(conn="a", connect=CONNECT):
    """Steps that open `conn`, send CONNECT and wait for the server to take it."""
    return [("open", conn), ("send", conn, connect), ("sync", conn)]


SCENARIOS = [
    {
        # Lame duck mode: a client that announced protocol 1 gets an INFO
        # with "ldm": true; one that did not gets nothing. The grace period
        # keeps both connected for the length of the scenario.
        "name": "lame_duck_info",
        "config": "lame_duck_grace_period: 30s\nlame_duck_duration: 60s\n",
        "steps": connected("a") + connected(
            "b", b'CONNECT {"verbose":false,"pedantic":false,"protocol":0}\r\n'
        ) + [("lame_duck",), ("sleep", 0.5), ("read", "a"), ("read", "b"), ("sync", "a"), ("sync", "b")],
    },
    {
        "name": "info_fields",
        "steps": [("open", "a")],
    },
    {
        "name": "connect_verbose_ok",
        "steps": connected("a", b'CONNECT {"verbose":true}\r\n')
        + [("send", "a", b"SUB foo 1\r\nPUB foo 2\r\nhi\r\nUNSUB 1\r\n"), ("sync", "a")],
    },
    {
        "name": "pedantic_invalid_subjects",
        "steps": connected("a", b'CONNECT {"verbose":true,"pedantic":true}\r\n')
        + [
            ("send", "a", b"PUB foo..bar 2\r\nhi\r\n"),
            ("sync", "a"),
            ("send", "a", b"PUB foo.* 2\r\nhi\r\nPUB foo.> 2\r\nhi\r\n"),
            ("sync", "a"),
            ("send", "a", b"SUB foo..x 1\r\nSUB .foo 2\r\nSUB foo. 3\r\n"),
            ("sync", "a"),
        ],
    },
    {
        "name": "ping_pong",
        "steps": [("open", "a"), ("send", "a", b"PING\r\n"), ("read", "a"),
                  ("send", "a", CONNECT), ("send", "a", b"PING\r\nPING\r\n"), ("read", "a"),
                  ("send", "a", b"PONG\r\n"), ("sync", "a")],
    },
    {
        "name": "pub_sub_unsub_max",
        "steps": connected("a") + connected("b") + [
            ("send", "a", b"SUB foo.* 1\r\nSUB foo.> 2\r\nSUB foo.bar 3\r\nUNSUB 3 2\r\n"),
            ("sync", "a"),
            ("send", "b", b"PUB foo.bar 5\r\nhello\r\nPUB foo.bar reply.to 1\r\nx\r\n"
                          b"PUB foo.bar.baz 0\r\n\r\nPUB foo.bar 3\r\nend\r\n"),
            ("sync", "b"),
            ("sync", "a"),
            ("send", "a", b"UNSUB 1\r\nUNSUB 99\r\n"),
            ("sync", "a"),
            ("send", "b", b"PUB foo.x 1\r\n1\r\n"),
            ("sync", "b"),
            ("sync", "a"),
        ],
    },
    {
        "name": "hpub_hmsg",
        "steps": connected("a") + [
            ("send", "a", b"SUB h 1\r\n"),
            ("send", "a", b"HPUB h 22 24\r\nNATS/1.0\r\nA: b\r\nC: d\r\n\r\nhi\r\n"),
            ("send", "a", b"HPUB h rep 12 12\r\nNATS/1.0\r\n\r\n\r\n"),
            ("send", "a", b"HPUB h 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"),
            ("sync", "a"),
        ],
    },
    {
        "name": "queue_subscription",
        "steps": connected("a") + connected("b") + [
            ("send", "a", b"SUB work workers 1\r\nSUB work workers 2\r\nSUB work 3\r\n"),
            ("sync", "a"),
            ("send", "b", b"PUB work 3\r\none\r\n"),
            ("sync", "b"),
            ("sleep", 0.1),
            ("sync", "a"),
        ],
        # Which member gets the message is random; the message count is not.
        "normalise_sids": {"a": ["1", "2"]},
    },
    {
        "name": "unknown_operation",
        "steps": connected("a") + [("send", "a", b"FOO bar\r\n"), ("read", "a")],
    },
    {
        "name": "max_payload_violation",
        "config": "max_payload: 100\n",
        "steps": connected("a") + [
            ("send", "a", b"PUB ok 100\r\n" + b"x" * 100 + b"\r\n"),
            ("sync", "a"),
            ("send", "a", b"PUB big 101\r\n"),
            ("read", "a"),
        ],
    },
    {
        "name": "max_control_line_violation",
        "config": "max_control_line: 64\n",
        "steps": connected("a") + [
            ("send", "a", b"SUB " + b"a" * 100 + b" 1\r\n"),
            ("read", "a"),
        ],
    },
    {
        "name": "invalid_subject_non_pedantic",
        "steps": connected("a") + [
            ("send", "a", b"SUB foo..bar 1\r\nSUB foo bar baz qux\r\n"),
            ("sync", "a"),
            ("send", "a", b"PUB foo bar baz 1\r\n"),
            ("read", "a"),
        ],
    },
    {
        "name": "auth_userpass_failures",
        "args": ["--user", "derek", "--pass", "s3cr3t"],
        "steps": [
            ("open", "good"), ("send", "good", b'CONNECT {"user":"derek","pass":"s3cr3t"}\r\n'),
            ("sync", "good"),
            ("open", "bad"), ("send", "bad", b'CONNECT {"user":"derek","pass":"nope"}\r\n'),
            ("read", "bad"),
            ("open", "none"), ("send", "none", b"CONNECT {}\r\n"), ("read", "none"),
        ],
    },
    {
        "name": "auth_token_failures",
        "args": ["--auth", "t0ken"],
        "steps": [
            ("open", "good"), ("send", "good", b'CONNECT {"auth_token":"t0ken"}\r\n'),
            ("sync", "good"),
            ("open", "bad"), ("send", "bad", b'CONNECT {"auth_token":"other"}\r\n'),
            ("read", "bad"),
            ("open", "userpass"), ("send", "userpass", b'CONNECT {"user":"t0ken","pass":"x"}\r\n'),
            ("read", "userpass"),
        ],
    },
    {
        "name": "auth_users_config_failures",
        "config": USERS_CONFIG,
        "steps": [
            ("open", "alice"), ("send", "alice", b'CONNECT {"user":"alice","pass":"wonder land"}\r\n'),
            ("sync", "alice"),
            ("open", "wrong"), ("send", "wrong", b'CONNECT {"user":"alice","pass":"b0bpass"}\r\n'),
            ("read", "wrong"),
            ("open", "nobody"), ("send", "nobody", b'CONNECT {"user":"carol","pass":"x"}\r\n'),
            ("read", "nobody"),
            ("open", "ping_first"), ("send", "ping_first", b"PING\r\n"), ("read", "ping_first"),
        ],
    },
    {
        "name": "headers_disabled",
        "steps": connected("a", b'CONNECT {"verbose":false,"headers":false}\r\n') + [
            ("send", "a", b"SUB h 1\r\n"),
            ("sync", "a"),
            ("send", "a", b"HPUB h 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
            ("read", "a"),
        ],
    },
    {
        "name": "headers_delivery_to_non_header_client",
        "steps": connected("old", b'CONNECT {"verbose":false,"headers":false}\r\n')
        + connected("new") + [
            ("send", "old", b"SUB h 1\r\n"),
            ("sync", "old"),
            ("send", "new", b"HPUB h 22 24\r\nNATS/1.0\r\nA: b\r\nC: d\r\n\r\nhi\r\n"),
            ("sync", "new"),
            ("sync", "old"),
        ],
    },
    {
        "name": "no_responders",
        "steps": connected("a", b'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\n') + [
            ("send", "a", b"SUB _INBOX.x 1\r\nPUB nobody _INBOX.x 0\r\n\r\n"),
            ("sync", "a"),
            ("send", "a", b"HPUB nobody _INBOX.x 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
            ("sync", "a"),
        ],
    },
    {
        "name": "monitoring_shapes",
        "steps": connected("a") + [("send", "a", b"SUB foo 1\r\nSUB bar q 2\r\n"), ("sync", "a")],
        "monitor": ["/varz", "/connz", "/connz?subs=1", "/subsz", "/healthz"],
    },
]


# --- auth: nkeys, user JWTs, permissions, imports and exports ----------------
# The nkeys and JWTs are made once per run by jwtgen (conformance/python), so
# both servers get the same config and the same JWTs. A "send_fn" step builds
# its bytes from the connection: its INFO nonce (to sign) or the lines it has
# received so far (to answer a request on its mapped reply subject).

import json as _json  # noqa: E402

import jwtgen as _jg  # noqa: E402


def _connect_signed(nkey=None, jwt=None, sign_with=None, sig=None, nonce=None, headers=True):
    """A send_fn body: CONNECT with `nkey`/`jwt` and the nonce signed by `sign_with`."""

    def build(conn):
        body = {"verbose": False, "pedantic": False, "headers": headers, "protocol": 1}
        if nkey is not None:
            body["nkey"] = nkey
        if jwt is not None:
            body["jwt"] = jwt
        if sign_with is not None:
            body["sig"] = _jg.sign_nonce(sign_with, nonce or conn.info.get("nonce", ""))
        if sig is not None:
            body["sig"] = sig
        return b"CONNECT " + _json.dumps(body).encode() + b"\r\n"

    return build


def _reply_to_last_request(payload: bytes):
    """A send_fn body: publishes `payload` to the reply subject of the last MSG received."""

    def build(conn):
        msgs = [l for l in conn.seen if l.startswith(("MSG ", "HMSG "))]
        reply = msgs[-1].split(" ")[3] if msgs and len(msgs[-1].split(" ")) > 4 else "_no_reply_"
        return b"PUB %s %d\r\n%s\r\n" % (reply.encode(), len(payload), payload)

    return build


def _signed(conn, **kw):
    """Steps that open `conn` and send a signed CONNECT."""
    return [("open", conn), ("send_fn", conn, _connect_signed(**kw))]


# Service import requests reach the exporter on a reply subject of the form
# _R_.<account prefix>.<random>: random on both servers.
# nats-server adds a Nats-Request-Info header whose rtt is the requester's
# measured round trip time, so its digits (and the HMSG sizes) vary.
_MASK_MAPPED_REPLY = [
    (r"\b_R_\.[A-Za-z0-9]+\.[A-Za-z0-9]+", "_R_.<mapped>"),
    (r'"rtt":\d+', '"rtt":<rtt>'),
    (r"^(HMSG \S+ \S+ _R_\.<mapped>) \d+ \d+$", r"\1 <hdr size> <size>"),
]

_NKEY_USER, _NKEY_OTHER = _jg.user_key(), _jg.user_key()
_OP, _ACC, _OTHER_ACC, _STRANGER = _jg.operator_key(), _jg.account_key(), _jg.account_key(), _jg.account_key()
_U1, _U2, _U3 = _jg.user_key(), _jg.user_key(), _jg.user_key()
_ACTIVATION = _jg.activation(_ACC, _OTHER_ACC, "private.svc", "service")
_ACC_JWT = _jg.account(_OP, _ACC, "ACC", exports=[
    {"name": "news", "subject": "news.>", "type": "stream"},
    {"name": "svc", "subject": "svc.echo", "type": "service"},
    {"name": "private", "subject": "private.svc", "type": "service", "token_req": True},
])
_OTHER_JWT = _jg.account(_OP, _OTHER_ACC, "OTHER", imports=[
    {"name": "news", "subject": "news.>", "account": _ACC.public, "type": "stream",
     "local_subject": "ext.news.>"},
    {"name": "svc", "subject": "svc.echo", "account": _ACC.public, "type": "service",
     "local_subject": "echo"},
    {"name": "private", "subject": "private.svc", "account": _ACC.public, "type": "service",
     "token": _ACTIVATION},
])
_OPERATOR_CONFIG = (
    f"operator: {_jg.operator(_OP)}\nresolver: MEMORY\n"
    f"resolver_preload: {{\n  {_ACC.public}: {_ACC_JWT}\n  {_OTHER_ACC.public}: {_OTHER_JWT}\n}}\n"
)
_GOOD_JWT = _jg.user(_ACC, _ACC, _U1)
_PERMS_JWT = _jg.user(_ACC, _ACC, _U3, **{"pub": {"allow": ["ok.>"]}, "sub": {"allow": ["ok.>"], "deny": ["ok.secret"]}})
_ACCOUNTS_CONFIG = """
accounts {
  A: {
    users: [ {user: a, password: a} ]
    exports: [
      {stream: "news.>"}
      {service: "svc.echo"}
      {stream: "private.>", accounts: [C]}
    ]
  }
  B: {
    users: [ {user: b, password: b} ]
    imports: [
      {stream: {account: A, subject: "news.>"}, prefix: "a"}
      {service: {account: A, subject: "svc.echo"}, to: "echo"}
    ]
  }
  C: {
    users: [ {user: c, password: c} ]
    imports: [ {stream: {account: A, subject: "private.>"}} ]
  }
}
"""
_PERMISSIONS_CONFIG = """
authorization {
  users = [
    { user: p, password: p, permissions: {
        publish: { allow: ["pub.>", "rpc"], deny: ["pub.secret"] }
        subscribe: { allow: ["sub.>", "q.> workers"], deny: ["sub.secret"] }
    } }
    { user: r, password: r, permissions: {
        publish: { deny: ">" }
        subscribe: { allow: ["rpc"] }
        allow_responses: { max: 1 }
    } }
    { user: free, password: free }
  ]
}
"""


def _login(conn, user, headers=True):
    return connected(conn, b'CONNECT {"verbose":false,"headers":%s,"user":"%s","pass":"%s"}\r\n'
                     % (b"true" if headers else b"false", user.encode(), user.encode()))


SCENARIOS += [
    {
        "name": "auth_nkey_signed_nonce",
        "config": "authorization { users: [ { nkey: %s } ] }\n" % _NKEY_USER.public,
        "steps": _signed("good", nkey=_NKEY_USER.public, sign_with=_NKEY_USER) + [
            ("sync", "good"),
            ("send", "good", b"SUB x 1\r\nPUB x 2\r\nhi\r\n"), ("sync", "good"),
        ]
        + _signed("forged", nkey=_NKEY_USER.public, sign_with=_NKEY_OTHER) + [("read", "forged")]
        + _signed("unsigned", nkey=_NKEY_USER.public) + [("read", "unsigned")]
        + _signed("garbage", nkey=_NKEY_USER.public, sig="not base64!") + [("read", "garbage")]
        + _signed("old_nonce", nkey=_NKEY_USER.public, sign_with=_NKEY_USER, nonce="replayed")
        + [("read", "old_nonce")]
        + _signed("stranger", nkey=_NKEY_OTHER.public, sign_with=_NKEY_OTHER) + [("read", "stranger")]
        + _signed("not_a_user_key", nkey=_ACC.public, sign_with=_ACC) + [("read", "not_a_user_key")],
    },
    {
        "name": "auth_jwt_operator_mode",
        "config": _OPERATOR_CONFIG,
        "steps": _signed("good", jwt=_GOOD_JWT, sign_with=_U1) + [
            ("sync", "good"),
            ("send", "good", b"SUB x 1\r\nPUB x 2\r\nhi\r\n"), ("sync", "good"),
        ]
        + _signed("bad_signature", jwt=_jg.tamper(_jg.user(_ACC, _ACC, _U2)), sign_with=_U2)
        + [("read", "bad_signature")]
        + _signed("expired", jwt=_jg.user(_ACC, _ACC, _U2, extra={"exp": _jg.LONG_AGO}), sign_with=_U2)
        + [("read", "expired")]
        + _signed("wrong_issuer", jwt=_jg.user(_STRANGER, _ACC, _U2), sign_with=_U2)
        + [("read", "wrong_issuer")]
        + _signed("unknown_account", jwt=_jg.user(_STRANGER, _STRANGER, _U2), sign_with=_U2)
        + [("read", "unknown_account")]
        + _signed("seed_of_another_user", jwt=_GOOD_JWT, sign_with=_U2) + [("read", "seed_of_another_user")]
        + _signed("no_sig", jwt=_GOOD_JWT) + [("read", "no_sig")]
        + _signed("malformed", jwt="e30.e30.e30", sign_with=_U2) + [("read", "malformed")]
        + _signed("no_jwt") + [("read", "no_jwt")]
        + _signed("perms", jwt=_PERMS_JWT, sign_with=_U3) + [
            ("sync", "perms"),
            ("send", "perms", b"SUB ok.> 1\r\nPUB ok.1 1\r\na\r\nPUB denied 1\r\nb\r\n"),
            ("sync", "perms"),
            ("send", "perms", b"SUB nope 2\r\nSUB ok.secret 3\r\n"),
            ("sync", "perms"),
        ],
    },
    {
        "name": "auth_permission_violation_texts",
        "config": _PERMISSIONS_CONFIG,
        "steps": _login("p", "p") + _login("r", "r") + _login("free", "free") + [
            ("send", "p", b"PUB pub.ok 1\r\na\r\nPUB nope 1\r\nb\r\nPUB pub.secret 1\r\nc\r\n"),
            ("sync", "p"),
            ("send", "p", b"SUB sub.x 1\r\nSUB other 2\r\nSUB sub.secret 3\r\n"),
            ("sync", "p"),
            ("send", "p", b"SUB q.a workers 4\r\nSUB q.a others 5\r\nSUB q.a 6\r\n"),
            ("sync", "p"),
            # allow_responses { max: 1 }: one reply to each request received, nothing else.
            ("send", "r", b"SUB rpc 1\r\n"), ("sync", "r"),
            ("send", "free", b"SUB reply.> 1\r\nPUB rpc reply.1 3\r\nreq\r\n"), ("sync", "free"),
            ("read", "r"),
            ("send", "r", b"PUB reply.1 3\r\none\r\nPUB reply.1 3\r\ntwo\r\nPUB reply.2 1\r\nx\r\n"),
            ("sync", "r"),
            ("read", "free"),
        ],
    },
    {
        "name": "auth_imports_exports_delivery",
        "config": _ACCOUNTS_CONFIG,
        "mask": _MASK_MAPPED_REPLY,
        # The exporter takes no headers: nats-server's Nats-Request-Info header
        # on service requests is compared in service_import_request_info_header.
        "steps": _login("a", "a", headers=False) + _login("b", "b") + _login("c", "c") + [
            ("send", "b", b"SUB a.news.> 1\r\nSUB news.> 2\r\nSUB private.> 3\r\n"), ("sync", "b"),
            ("send", "c", b"SUB private.> 1\r\nSUB news.> 2\r\n"), ("sync", "c"),
            ("send", "a", b"SUB news.> 6\r\nPUB news.today 1\r\nn\r\nPUB private.memo 1\r\np\r\n"),
            ("sync", "a"), ("sleep", 0.05), ("sync", "b"), ("sync", "c"),
            # Nothing flows back from importer to exporter.
            ("send", "b", b"PUB news.back 1\r\nx\r\n"), ("sync", "b"), ("sync", "a"),
            # A service request crosses with a mapped reply, and its answer comes back.
            ("send", "a", b"SUB svc.echo 5\r\n"), ("sync", "a"),
            ("send", "b", b"SUB _INBOX.b.> 9\r\nPUB echo _INBOX.b.1 4\r\nping\r\n"), ("sync", "b"),
            ("read", "a"),
            ("send_fn", "a", _reply_to_last_request(b"pong")), ("sync", "a"),
            ("read", "b"),
            ("send", "b", b"PUB svc.echo _INBOX.b.2 1\r\nx\r\n"), ("sync", "b"), ("sync", "a"),
        ],
    },
    {
        "name": "auth_jwt_imports_exports_delivery",
        "config": _OPERATOR_CONFIG,
        "mask": _MASK_MAPPED_REPLY,
        "steps": _signed("exp", jwt=_GOOD_JWT, sign_with=_U1, headers=False)
        + _signed("imp", jwt=_jg.user(_OTHER_ACC, _OTHER_ACC, _U2), sign_with=_U2) + [
            ("sync", "exp"), ("sync", "imp"),
            ("send", "imp", b"SUB ext.news.> 1\r\nSUB news.> 2\r\n"), ("sync", "imp"),
            ("send", "exp", b"PUB news.a 1\r\nn\r\n"), ("sync", "exp"), ("sleep", 0.05),
            ("sync", "imp"),
            ("send", "exp", b"SUB svc.echo 1\r\nSUB private.svc 2\r\n"), ("sync", "exp"),
            ("send", "imp", b"SUB _INBOX.i.> 9\r\nPUB echo _INBOX.i.1 4\r\nping\r\n"), ("sync", "imp"),
            ("read", "exp"),
            ("send_fn", "exp", _reply_to_last_request(b"pong")), ("sync", "exp"),
            ("read", "imp"),
            ("send", "imp", b"PUB private.svc _INBOX.i.2 6\r\nsecret\r\n"), ("sync", "imp"),
            ("read", "exp"),
            ("send_fn", "exp", _reply_to_last_request(b"granted")), ("sync", "exp"),
            ("read", "imp"),
        ],
    },
]

SCENARIOS += [
    {
        # nats-server tells a header-capable exporter who asked: a
        # Nats-Request-Info header with the requesting account and its rtt.
        "name": "service_import_request_info_header",
        "config": _ACCOUNTS_CONFIG,
        "mask": _MASK_MAPPED_REPLY,
        "steps": _login("a", "a") + _login("b", "b") + [
            ("send", "a", b"SUB svc.echo 5\r\n"), ("sync", "a"),
            ("send", "b", b"SUB _INBOX.b.> 9\r\nPUB echo _INBOX.b.1 4\r\nping\r\n"), ("sync", "b"),
            ("read", "a"),
            ("send_fn", "a", _reply_to_last_request(b"pong")), ("sync", "a"),
            ("read", "b"),
        ],
    },
]

# The NATS resolver taking claim updates from a system account user at runtime.
# The resolver dir is relative: each server runs in its own fresh directory.
_SYS, _LATE, _UPD = _jg.account_key(), _jg.account_key(), _jg.account_key()
_SYS_USER, _LATE_USER, _VICTIM = _jg.user_key(), _jg.user_key(), _jg.user_key()
_LATE_JWT = _jg.account(_OP, _LATE, "LATE")
_REVOKING_JWT = _jg.account(_OP, _UPD, "UPD", extra={"iat": _jg.IAT + 1},
                            revocations={_VICTIM.public: _jg.IAT + 100})
_RESOLVER_CONFIG = (
    f"operator: {_jg.operator(_OP, system_account=_SYS)}\nsystem_account: {_SYS.public}\n"
    # A short fetch timeout: a lone server asks no one for an unknown account.
    'resolver: { type: full, dir: "jwt", timeout: "200ms" }\n'
    f"resolver_preload: {{\n  {_SYS.public}: {_jg.account(_OP, _SYS, 'SYS')}\n"
    f"  {_UPD.public}: {_jg.account(_OP, _UPD, 'UPD')}\n}}\n"
)


def _pub(subject: str, reply: str, payload: bytes) -> bytes:
    return b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), reply.encode(), len(payload), payload)


SCENARIOS += [
    {
        "name": "auth_resolver_claim_update",
        "config": _RESOLVER_CONFIG,
        # A system reply carries the answering server's id, name, version and
        # time: its "server" object is compared by type, so the MSG size is
        # masked; the "data"/"error" object is compared. nats-server writes
        # these MSG lines with two spaces before the size (an empty reply
        # field); clients split on runs of spaces, so that is masked too.
        "json_payload_keys": ["server"],
        "mask": [(r"^(MSG _INBOX\.s\.[0-9] 1) +\d+$", r"\1 <size>")],
        "steps": _signed("sys", jwt=_jg.user(_SYS, _SYS, _SYS_USER), sign_with=_SYS_USER) + [
            ("send", "sys", b"SUB _INBOX.s.* 1\r\n"), ("sync", "sys"),
        ]
        + _signed("victim", jwt=_jg.user(_UPD, _UPD, _VICTIM), sign_with=_VICTIM) + [("sync", "victim")]
        + _signed("late_before", jwt=_jg.user(_LATE, _LATE, _LATE_USER), sign_with=_LATE_USER)
        # nats-server asks other servers for an unknown account first, until
        # the resolver's timeout.
        + [("sleep", 0.3), ("read", "late_before")] + [
            ("send", "sys", _pub("$SYS.REQ.CLAIMS.UPDATE", "_INBOX.s.1", _LATE_JWT.encode())),
            ("sleep", 0.3), ("sync", "sys"),
        ]
        + _signed("late_after", jwt=_jg.user(_LATE, _LATE, _LATE_USER), sign_with=_LATE_USER)
        + [("sync", "late_after")] + [
            ("send", "sys", _pub(f"$SYS.REQ.ACCOUNT.{_LATE.public}.CLAIMS.LOOKUP", "_INBOX.s.2", b"")),
            ("sleep", 0.3), ("sync", "sys"),
            ("send", "sys", _pub("$SYS.REQ.CLAIMS.UPDATE", "_INBOX.s.3", b"not a jwt")),
            ("sleep", 0.3), ("sync", "sys"),
            ("send", "sys", _pub(f"$SYS.REQ.ACCOUNT.{_UPD.public}.CLAIMS.UPDATE", "_INBOX.s.4",
                                 _REVOKING_JWT.encode())),
            ("sleep", 0.3), ("sync", "sys"),
            ("read", "victim"),
        ],
    },
]

# A scoped signing key: its users get the key's template, expanded per user.
_SCOPED, _SCOPE_KEY = _jg.account_key(), _jg.account_key()
_SCOPED_USER, _BARE_USER, _GREEDY_USER = _jg.user_key(), _jg.user_key(), _jg.user_key()
_TEMPLATE = {
    "pub": {"allow": ["{{account-name()}}.{{name()}}.>", "dept.{{tag(dept)}}"]},
    "sub": {"allow": ["{{account-subject()}}.>", "dept.>", "_INBOX.{{subject()}}.>"]},
}
_SCOPED_CONFIG = (
    f"operator: {_jg.operator(_OP)}\nresolver: MEMORY\n"
    f"resolver_preload: {{\n  {_SCOPED.public}: "
    f"{_jg.account(_OP, _SCOPED, 'SCOPED', signing_keys=[_jg.scoped_key(_SCOPE_KEY, 'dev', _TEMPLATE)])}\n}}\n"
)

SCENARIOS += [
    {
        "name": "auth_scoped_signing_key_templates",
        "config": _SCOPED_CONFIG,
        "steps": _signed("dev", jwt=_jg.user(_SCOPE_KEY, _SCOPED, _SCOPED_USER, name="ann", scoped=True,
                                             tags=["dept:eng"]), sign_with=_SCOPED_USER) + [
            ("sync", "dev"),
            ("send", "dev", b"SUB dept.> 1\r\nSUB %s.x 2\r\nSUB _INBOX.%s.r 3\r\nSUB other 4\r\n"
             % (_SCOPED.public.encode(), _SCOPED_USER.public.encode())),
            ("sync", "dev"),
            ("send", "dev", b"PUB SCOPED.ann.x 1\r\na\r\nPUB dept.eng 1\r\nb\r\nPUB dept.hr 1\r\nc\r\n"
             b"PUB %s.x 1\r\nd\r\n" % _SCOPED.public.encode()),
            ("sync", "dev"),
        ]
        # A template naming a tag the user lacks drops that entry.
        + _signed("bare", jwt=_jg.user(_SCOPE_KEY, _SCOPED, _BARE_USER, name="bo", scoped=True),
                  sign_with=_BARE_USER) + [
            ("sync", "bare"),
            ("send", "bare", b"PUB dept.eng 1\r\nx\r\nPUB SCOPED.bo.y 1\r\ny\r\n"), ("sync", "bare"),
        ]
        # A user of a scoped key may not bring permissions of its own.
        + _signed("greedy", jwt=_jg.user(_SCOPE_KEY, _SCOPED, _GREEDY_USER, scoped=True,
                                         **{"pub": {"allow": [">"]}}), sign_with=_GREEDY_USER)
        + [("read", "greedy")],
    },
]

# Service imports chained through accounts: A imports q from B, which imports
# it (renamed) from C. Each hop maps the reply subject; the response comes
# back hop by hop (B's own subscriptions see it pass). Requests do not feed
# B's stream export to D, and C's stream is not re-exported by B to D.
_CHAIN_CONFIG = """
accounts {
  A: { users: [ {user: a, password: a} ], imports: [ {service: {account: B, subject: "q"}} ] }
  B: {
    users: [ {user: b, password: b} ]
    exports: [ {service: "q"}, {stream: "q"}, {stream: "s"} ]
    imports: [ {service: {account: C, subject: "c.q"}, to: "q"}, {stream: {account: C, subject: "s"}} ]
  }
  C: { users: [ {user: c, password: c} ], exports: [ {service: "c.q"}, {stream: "s"} ] }
  D: { users: [ {user: d, password: d} ], imports: [ {stream: {account: B, subject: "q"}}, {stream: {account: B, subject: "s"}} ] }
}
"""

SCENARIOS += [
    {
        "name": "service_import_chain",
        "config": _CHAIN_CONFIG,
        # The rtt in the header varies in length: so do the sizes.
        "mask": _MASK_MAPPED_REPLY + [(r"^(HMSG c\.q 1) \d+ \d+$", r"\1 <hdr size> <size>")],
        # C takes headers: its request carries Nats-Request-Info naming A and,
        # at this second hop, B ("svc"). B takes none: a plain MSG.
        "steps": connected("a", b'CONNECT {"verbose":false,"headers":true,"no_responders":true,'
                                b'"user":"a","pass":"a"}\r\n')
        + _login("b", "b", headers=False) + _login("c", "c") + _login("d", "d") + [
            ("send", "c", b"SUB c.q 1\r\n"), ("sync", "c"),
            ("send", "b", b"SUB q 1\r\nSUB _R_.> 2\r\nSUB s 3\r\n"), ("sync", "b"),
            ("send", "d", b"SUB q 1\r\nSUB s 2\r\nSUB _R_.> 3\r\n"), ("sync", "d"),
            ("send", "a", b"SUB _INBOX.a.> 9\r\nPUB q _INBOX.a.1 4\r\nping\r\n"), ("sync", "a"),
            ("read", "b"), ("read", "c"),
            ("send_fn", "c", _reply_to_last_request(b"pong")), ("sync", "c"),
            ("read", "a"), ("read", "b"),
            ("send", "a", b"PUB q 5\r\nplain\r\n"), ("sync", "a"),
            ("read", "c"),
            ("send", "c", b"PUB s 6\r\nstream\r\n"), ("sync", "c"),
            ("read", "b"), ("read", "d"),
            # Nobody answers once C's responder is gone: a 503 through both hops.
            ("send", "c", b"UNSUB 1\r\n"), ("sync", "c"), ("sync", "b"),
            ("send", "b", b"UNSUB 1\r\n"), ("sync", "b"),
            ("send", "a", b"PUB q _INBOX.a.2 0\r\n\r\n"), ("sync", "a"),
        ],
    },
]

# /accountz with config accounts: the list, each account's detail, the
# system account and an unknown account's plain-text 400. Shapes compare a
# list by its first entry and nats-server lists exports in map order, so
# each account here exports one kind only (A services, C streams).
_ACCOUNTZ_CONFIG = """
accounts {
  A {
    users = [ {user: a, password: a} ]
    exports = [ {service: "a.svc", response_type: stream}, {service: "a.other"} ]
  }
  C { exports = [ {stream: "c.news.>"} ] }
  B {
    users = [ {user: b, password: b} ]
    imports = [
      {stream: {account: C, subject: "c.news.>"}, prefix: "fromC"}
      {service: {account: A, subject: "a.svc"}, to: "svc.a"}
    ]
  }
  SYS { users = [ {user: sys, password: sys} ] }
}
system_account: SYS
"""

SCENARIOS += [
    {
        "name": "accountz_shapes",
        "config": _ACCOUNTZ_CONFIG,
        "steps": connected("a", b'CONNECT {"verbose":false,"user":"a","pass":"a"}\r\n')
        + connected("b", b'CONNECT {"verbose":false,"user":"b","pass":"b"}\r\n')
        + [("send", "a", b"SUB a.svc 1\r\n"), ("sync", "a")],
        "monitor": ["/accountz", "/accountz?acc=A", "/accountz?acc=B", "/accountz?acc=C",
                    "/accountz?acc=SYS", "/accountz?acc=%24G", "/accountz?acc=NOPE"],
    },
]

# A CONNECT after the first on the same connection: nats-server drops the
# connection's subscriptions, reads the JSON over the options it had, and
# checks the credentials again. The connection that moved to B and closed
# must leave nothing behind that the next connection (in B) could receive.
_TENANTS_CONFIG = """
accounts {
  A: { users: [ {user: a, password: a} ] }
  B: { users: [ {user: b, password: b},
                {user: r, password: r, permissions: { publish: "r.>", subscribe: "r.>" }} ] }
}
"""


def _reconnect(conn, user):
    return [("send", conn, b'CONNECT {"verbose":false,"user":"%s","pass":"%s"}\r\n'
             % (user.encode(), user.encode())), ("sync", conn)]


SCENARIOS += [
    {
        "name": "second_connect_other_account_after_close",
        "config": _TENANTS_CONFIG,
        "steps": _login("c1", "a") + [("send", "c1", b"SUB foo 1\r\n"), ("sync", "c1")]
        + _reconnect("c1", "b") + [("close", "c1"), ("sleep", 0.2)]
        + _login("c2", "b") + [("send", "c2", b"SUB bar 1\r\n"), ("sync", "c2")]
        + _login("c3", "a") + [("send", "c3", b"PUB foo 6\r\nsecret\r\n"), ("sync", "c3"),
                               ("read", "c2")],
    },
    {
        "name": "second_connect_drops_subscriptions",
        "config": _TENANTS_CONFIG,
        "steps": _login("c1", "a")
        + [("send", "c1", b"SUB foo 1\r\nSUB baz 5\r\nUNSUB 5 3\r\n"), ("sync", "c1")]
        + _reconnect("c1", "a") + _login("p", "a")
        + [("send", "p", b"PUB foo 1\r\nx\r\nPUB baz 1\r\ny\r\n"), ("sync", "p"), ("read", "c1"),
           ("send", "c1", b"SUB foo 1\r\n"), ("sync", "c1"),
           ("send", "p", b"PUB foo 1\r\nz\r\n"), ("sync", "p"), ("read", "c1")]
        + _reconnect("c1", "b") + _login("q", "b")
        + [("send", "c1", b"SUB bar 2\r\n"), ("sync", "c1"),
           ("send", "p", b"PUB bar 1\r\na\r\nPUB foo 1\r\nb\r\n"), ("sync", "p"),
           ("send", "q", b"PUB bar 1\r\nc\r\n"), ("sync", "q"), ("read", "c1")],
    },
    {
        "name": "second_connect_permissions_and_options",
        "config": _TENANTS_CONFIG,
        "steps": _login("c1", "b") + _reconnect("c1", "r")
        + [("send", "c1", b"SUB x 1\r\nPUB x 1\r\nm\r\n"), ("sync", "c1")]
        + _reconnect("c1", "b")
        + [("send", "c1", b"SUB x 1\r\nPUB x 1\r\nm\r\n"), ("sync", "c1")]
        # Fields left out keep their values: echo stays off, the credentials stay.
        + connected("e", b'CONNECT {"verbose":false,"echo":false,"user":"a","pass":"a"}\r\n')
        + [("send", "e", b"CONNECT {}\r\nSUB x 1\r\nPUB x 1\r\nm\r\n"), ("sync", "e")]
        # Another user with the first one's password: refused and closed.
        + _login("f", "a") + [("send", "f", b'CONNECT {"user":"b"}\r\n'), ("read", "f")]
        + connected("g", b'CONNECT {"verbose":false,"headers":true,"no_responders":true,'
                         b'"user":"a","pass":"a"}\r\n')
        + [("send", "g", b'CONNECT {"headers":false}\r\n'), ("read", "g")],
    },
    {
        "name": "connect_invalid_protocol",
        "config": _TENANTS_CONFIG,
        "steps": [("open", "a"),
                  ("send", "a", b'CONNECT {"verbose":false,"user":"a","pass":"a","protocol":2}\r\n'),
                  ("read", "a")]
        + _login("b", "a") + [("send", "b", b'CONNECT {"protocol":-1}\r\n'), ("read", "b")],
    },
]

# Queue groups in permissions, and response permissions over time.
_QUEUE_PERMS_CONFIG = """
authorization {
  users = [
    { user: a, password: a, permissions: { subscribe: { allow: ["foo", "foo workers", "bar.*"] } } }
    { user: b, password: b, permissions: { subscribe: { deny: ["foo.> grp"] } } }
    { user: r, password: r, permissions: {
        publish: "nothing", subscribe: "svc", allow_responses: { max: -1, expires: "1s" } } }
    { user: q, password: q }
  ]
}
"""

SCENARIOS += [
    {
        "name": "permissions_queue_groups",
        "config": _QUEUE_PERMS_CONFIG,
        "steps": _login("a", "a") + _login("b", "b") + _login("q", "q")
        + [("send", "a", b"SUB foo 1\r\nSUB foo workers 2\r\nSUB foo billing 3\r\n"
                         b"SUB bar.x any 4\r\n"), ("sync", "a"),
           ("send", "b", b"SUB > grp 1\r\nSUB > other 2\r\nSUB foo.> 3\r\n"), ("sync", "b"),
           ("send", "q", b"PUB foo.x 1\r\nm\r\nPUB bar.y 1\r\nn\r\n"), ("sync", "q"),
           ("read", "b")],
    },
    {
        "name": "permissions_responses_expire",
        "config": _QUEUE_PERMS_CONFIG,
        "steps": _login("r", "r") + _login("q", "q")
        + [("send", "r", b"SUB svc 1\r\n"), ("sync", "r"),
           ("send", "q", b"SUB inbox.> 1\r\nPUB svc inbox.1 3\r\nreq\r\nPUB svc inbox.2 3\r\nreq\r\n"),
           ("sync", "q"), ("read", "r"),
           # max -1: any number of responses while the grant lasts.
           ("send", "r", b"PUB inbox.1 1\r\na\r\nPUB inbox.1 1\r\nb\r\n"), ("sync", "r"),
           ("read", "q"),
           ("sleep", 1.5),
           ("send", "r", b"PUB inbox.2 1\r\nc\r\n"), ("sync", "r"), ("read", "q")],
    },
]


def _requests(conn_reply_prefix: str, count: int) -> bytes:
    return b"".join(b"PUB svc %s.%d 1\r\nr\r\n" % (conn_reply_prefix.encode(), i) for i in range(count))


def _answer_prefix(prefix: str, payload: bytes):
    """Answers every request received so far whose reply starts with `prefix`."""
    def build(conn):
        out = b""
        for line in conn.seen:
            parts = line.split(" ")
            if parts[0] == "MSG" and len(parts) == 5 and parts[3].startswith(prefix):
                out += b"PUB %s %d\r\n%s\r\n" % (parts[3].encode(), len(payload), payload)
        return out
    return build


# One requester's flood must not take another's answers: neither through a
# service import's response routes nor through a responder's grants.
_FLOOD_CONFIG = """
accounts {
  A: { users: [ {user: a, password: a} ], exports: [ {service: svc} ] }
  B: { users: [ {user: b, password: b} ], imports: [ {service: {account: A, subject: svc}} ] }
  C: { users: [ {user: c, password: c} ], imports: [ {service: {account: A, subject: svc}} ] }
}
"""
_GRANTS_FLOOD_CONFIG = """
authorization {
  users = [
    { user: r, password: r, permissions: {
        publish: "nothing", subscribe: "svc", allow_responses: { max: 1, expires: "1m" } } }
    { user: q, password: q }
  ]
}
"""


def _count_msgs(subject_prefix: str):
    return [(r"^MSG %s\.\d+ 1 1$" % subject_prefix, "MSG %s.N 1 1" % subject_prefix)]


SCENARIOS += [
    {
        "name": "service_import_flood_keeps_other_requesters_answers",
        "config": _FLOOD_CONFIG,
        "mask": _count_msgs("cin") + [(r"^MSG svc 1 _R_\.\S+ 1$", "MSG svc 1 <reply> 1")],
        "steps": _login("a", "a", headers=False) + _login("b", "b", headers=False)
        + _login("c", "c", headers=False)
        + [("send", "a", b"SUB svc 1\r\n"), ("sync", "a"),
           ("send", "c", b"SUB cin.> 1\r\n" + _requests("cin", 100)), ("sync", "c"),
           ("send", "b", _requests("bin", 40000)), ("sync", "b"), ("sync", "a"),
           # A answers C's requests only: the first 100 it received.
           ("send_fn", "a", lambda conn: b"".join(
               b"PUB %s 1\r\nk\r\n" % line.split(" ")[3].encode()
               for line in [l for l in conn.seen if l.startswith("MSG svc 1 ")][:100])),
           ("sync", "a"), ("read", "c")],
    },
    {
        "name": "response_grants_flood_keeps_other_requesters_answers",
        "config": _GRANTS_FLOOD_CONFIG,
        "mask": _count_msgs("cin") + [(r"^MSG svc 1 (cin|zin)\.\d+ 1$", r"MSG svc 1 \1.N 1")],
        "steps": _login("r", "r") + _login("q", "q") + _login("z", "q")
        + [("send", "r", b"SUB svc 1\r\n"), ("sync", "r"),
           ("send", "q", b"SUB cin.> 1\r\n" + _requests("cin", 100)), ("sync", "q"),
           ("send", "z", _requests("zin", 6000)), ("sync", "z"), ("sync", "r"),
           ("send_fn", "r", _answer_prefix("cin.", b"k")), ("sync", "r"), ("read", "q")],
    },
]

# The JetStream stream API (js_scenarios.py).
from js_scenarios import JS_SCENARIOS  # noqa: E402

SCENARIOS += JS_SCENARIOS

# Subject mapping (`mappings {}`): every function, partitions of many
# subjects with nats-server's hash, a dropped share, the remainder kept, a
# literal source with a partition, account mappings, and mapping before
# the publish permissions are checked.
_MAPPINGS_CONFIG = """
mappings {
  "sw.*.*": "swapped.{{wildcard(2)}}.$1"
  "part.*.*": "parts.{{partition(7,1,2)}}.$1.$2"
  "whole.*.*": "wholes.{{partition(5)}}.$1.$2"
  "lit.part": "litparts.{{partition(10)}}"
  "sp.*": "split.{{split(1,-)}}"
  "sl.*": "sfl.{{splitFromLeft(1,2)}}.sfr.{{SplitFromRight(1,2)}}"
  "sc.*": "scl.{{sliceFromLeft(1,3)}}.scr.{{sliceFromRight(1,3)}}"
  "gone.>": [ {destination: "gone.>", weight: 0%} ]
  "kept.*": [ {destination: "elsewhere.$1", weight: 0} ]
  "rest.>": "moved.>"
}
"""
_ACCOUNT_MAPPINGS_CONFIG = """
accounts {
  A: {
    users: [ {user: a, password: a, permissions: {publish: "dst.>", subscribe: ">"}} ]
    mappings { "src.*": "dst.$1", "denied.*": "nope.$1" }
  }
}
"""


def _many_pubs(prefix: str, count: int) -> bytes:
    return b"".join(b"PUB %s.k%d.v%d 1\r\nx\r\n" % (prefix.encode(), i, i * 7) for i in range(count))


SCENARIOS += [
    {
        "name": "mappings_functions_and_partitions",
        "config": _MAPPINGS_CONFIG,
        "steps": connected("a") + connected("b") + [
            ("send", "a", b"SUB > 1\r\n"), ("sync", "a"),
            ("send", "b", b"PUB sw.x.y 1\r\n1\r\nPUB lit.part 1\r\n2\r\n"
                          b"PUB sp.-ab-cd--e- 1\r\n3\r\nPUB sl.abcde 1\r\n4\r\nPUB sc.abcdefgh 1\r\n5\r\n"
                          b"PUB gone.a.b 1\r\n6\r\nPUB kept.q 1\r\n7\r\nPUB rest.a.b.c 1\r\n8\r\n"
                          b"PUB sl.a 1\r\n9\r\n"),
            ("sync", "b"), ("read", "a"),
            ("send", "b", _many_pubs("part", 120)), ("sync", "b"), ("read", "a"),
            ("send", "b", _many_pubs("whole", 120)), ("sync", "b"), ("read", "a"),
        ],
    },
    {
        "name": "mappings_in_an_account_before_permissions",
        "config": _ACCOUNT_MAPPINGS_CONFIG,
        "steps": _login("a", "a") + _login("b", "a") + [
            ("send", "a", b"SUB > 1\r\n"), ("sync", "a"),
            ("send", "b", b"PUB src.1 1\r\nx\r\nPUB dst.2 1\r\ny\r\nPUB denied.3 1\r\nz\r\nPUB sw.x.y 1\r\nw\r\n"),
            ("sync", "b"), ("read", "a"),
        ],
    },
]

# Routes, gateways and leaf nodes do not exist yet: their endpoints answer
# in nats-server's shapes for a server without any.
SCENARIOS += [
    {
        "name": "monitoring_unclustered_shapes",
        "steps": connected("a"),
        "monitor": ["/routez", "/gatewayz", "/leafz"],
    },
]


def _reload_users(*entries: str) -> str:
    return "authorization {\n  users = [\n" + "\n".join(entries) + "\n  ]\n}\n"


# Passwords are the user names, as `_login` sends them.
_RL_ALICE = '{ user: alice, password: alice }'
_RL_BOB_ALL = '{ user: bob, password: bob, permissions: { publish: ">", subscribe: ">" } }'
_RL_BOB_BAR = '{ user: bob, password: bob, permissions: { publish: "bar.>", subscribe: "bar.>" } }'
_RL_TOM = '{ user: tom, password: tom }'
_RL_CAROL = '{ user: carol, password: carol }'

# Config reload (C8): who is closed and with what, which subscriptions are
# removed (and how the client is told), what later publishes and
# subscriptions meet, and the refusal of what cannot be reloaded.
SCENARIOS += [
    {
        "name": "reload_users_and_permissions",
        "config": _reload_users(_RL_ALICE, _RL_BOB_ALL, _RL_TOM),
        "steps": _login("a", "alice") + _login("b", "bob") + _login("t", "tom") + [
            # One subscription to lose: nats-server reports several in map order.
            ("send", "b", b"SUB foo.1 1\r\nSUB bar.1 2\r\n"),
            ("sync", "b"),
            ("reload", _reload_users('{ user: alice, password: changed }', _RL_BOB_BAR, _RL_CAROL)),
            ("read", "a"),
            ("read", "t"),
            ("read", "b"),
        ] + _login("c", "carol") + [
            ("send", "c", b"PUB foo.1 1\r\nx\r\nPUB bar.1 1\r\ny\r\n"), ("sync", "c"),
            ("sync", "b"),
            ("send", "b", b"PUB foo.2 1\r\nz\r\nSUB foo.3 4\r\n"),
            ("sync", "b"),
        ],
    },
    {
        "name": "reload_refused_keeps_the_old_config",
        "config": _reload_users(_RL_ALICE),
        "steps": _login("a", "alice") + [
            ("reload", "max_pending: 2000000\n" + _reload_users(_RL_CAROL)),
            ("reload", "server_name: other\n" + _reload_users(_RL_CAROL)),
            ("reload", "max_pending: 1000\n"),
            ("sync", "a"),
        ] + _login("c", "carol") + _login("d", "alice"),
    },
    {
        "name": "reload_limits",
        "config": "max_payload: 1000\n",
        # (max_connections is left out: nats-server closes the excess at random.)
        "steps": connected("a") + [
            ("reload", "max_payload: 10\n"),
            ("send", "a", b"PUB x 5\r\nhello\r\n"), ("sync", "a"),
            ("send", "a", b"PUB x 11\r\nhello world\r\n"), ("read", "a"),
            ("reload", "max_payload: 20\n"),
            ("open", "c"),
        ],
    },
]
