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
