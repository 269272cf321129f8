"""Differential scenarios for the system account's events and requests.

Events and replies carry the answering server's stamp (id, name, version,
time, sequence), event ids, client ids, timestamps, process figures and
subscription counts that legitimately differ (nats-server counts its own
internal subscriptions); those are masked, the rest is compared as data.
Documents built by monitoring requests (VARZ, JSZ...) are compared by shape.
Permission lists have one subject each: nats-server lists several in no
fixed order.
"""

_SYS_CONFIG = """
accounts {
  A {
    users = [
      {user: a, password: a}
      {user: p, password: p, permissions: {
        publish: ["$SYS.REQ.USER.INFO"]
        subscribe: {allow: ["_INBOX.>"], deny: ["bar"]}
        allow_responses: {max: 2, expires: "5s"}
      }}
    ]
  }
  SYS { users = [ {user: sys, password: sys} ] }
}
system_account: SYS
"""

# nats-server writes a server-published MSG with two spaces before the size
# (an empty reply); sizes differ with the stamp. The server id is in subjects.
_SYS_MASK = [
    (r"^(MSG \S+ \d+) +\d+$", r"\1 <size>"),
    (r"^MSG \$SYS\.SERVER\.N[A-Z0-9]{55}\.", "MSG $SYS.SERVER.<id>."),
]
_VOLATILE = ["server", "id", "timestamp", "start", "stop", "rtt", "num_subscriptions", "subscriptions",
             "mem", "cpu", "cores", "gomaxprocs", "now", "server_id", "server_name", "total_connections"]


def _login(conn, user, extra=b""):
    return [("open", conn),
            ("send", conn, b'CONNECT {"verbose":false,"headers":true,"user":"%s","pass":"%s"%s}\r\n'
             % (user.encode(), user.encode(), extra)),
            ("sync", conn)]


def _ask(conn, subject, body=b"", n=1):
    return [("send", conn, b"PUB %s _INBOX.s.%d %d\r\n%s\r\n" % (subject.encode(), n, len(body), body)),
            ("sleep", 0.3), ("sync", conn)]


SYS_SCENARIOS = [
    {
        "name": "sys_connect_disconnect_auth_events",
        "config": _SYS_CONFIG,
        "mask": _SYS_MASK,
        "json_volatile_keys": _VOLATILE,
        # A client's DISCONNECT and its account's SERVER.CONNS come from
        # separate places in nats-server, in either order.
        "events_unordered": True,
        # nats-server publishes the system user's own CONNECT event from its
        # send loop, after the CONNECT's PONG: wait it out before subscribing,
        # or whether the subscription sees it is a race.
        "steps": _login("sys", "sys") + [
            ("sleep", 0.3),
            ("send", "sys", b"SUB $SYS.ACCOUNT.> 1\r\nSUB $SYS.SERVER.*.CLIENT.AUTH.ERR 2\r\n"),
            ("sync", "sys"),
        ]
        + _login("a", "a", b',"name":"cli","lang":"python","version":"1.2.3","protocol":1')
        + [("send", "a", b"SUB foo 1\r\nPUB foo 5\r\nhello\r\n"), ("sync", "a"), ("sleep", 0.2),
           ("read", "sys"), ("close", "a"), ("sleep", 0.3), ("read", "sys"),
           ("open", "bad"), ("send", "bad", b'CONNECT {"verbose":false,"user":"a","pass":"no","name":"bad"}\r\n'),
           ("read", "bad"), ("sleep", 0.3), ("read", "sys")],
    },
    {
        "name": "sys_statsz_requests",
        "config": _SYS_CONFIG,
        "mask": _SYS_MASK,
        # Message and byte totals include the replies, whose stamps differ in size.
        "json_volatile_keys": _VOLATILE + ["sent", "sent_to_clients", "received", "received_from_clients"],
        "steps": _login("sys", "sys") + [("send", "sys", b"SUB _INBOX.s.* 1\r\n"), ("sync", "sys")]
        + _ask("sys", "$SYS.REQ.SERVER.PING", n=1)
        + _ask("sys", "$SYS.REQ.SERVER.PING.STATSZ", n=2)
        + _ask("sys", "$SYS.REQ.SERVER.PING.STATSZ", b'{"server_name":"nope"}', n=3)
        + _ask("sys", "$SYS.REQ.SERVER.PING.STATSZ", b"{bad", n=4)
        + _ask("sys", "$SYS.REQ.SERVER.PING.HEALTHZ", n=5)
        + _ask("sys", "$SYS.REQ.ACCOUNT.A.JSZ", n=6)
        + _ask("sys", "$SYS.REQ.SERVER.PING.NOPEZ", n=7)
        + _login("p", "p") + [("send", "p", b"SUB _INBOX.s.* 1\r\n"), ("sync", "p")]
        + _ask("p", "$SYS.REQ.USER.INFO", n=8)
        + _ask("sys", "$SYS.REQ.USER.INFO", n=9),
    },
    {
        "name": "sys_monitoring_request_shapes",
        "config": _SYS_CONFIG,
        "mask": _SYS_MASK,
        "json_shape": True,
        "steps": _login("sys", "sys") + [("send", "sys", b"SUB _INBOX.s.* 1\r\n"), ("sync", "sys")]
        + _ask("sys", "$SYS.REQ.SERVER.PING.VARZ", n=1)
        + _ask("sys", "$SYS.REQ.SERVER.PING.JSZ", n=2)
        + _ask("sys", "$SYS.REQ.SERVER.PING.ROUTEZ", n=3)
        + _ask("sys", "$SYS.REQ.SERVER.PING.GATEWAYZ", n=4)
        + _ask("sys", "$SYS.REQ.SERVER.PING.LEAFZ", n=5)
        + _ask("sys", "$SYS.REQ.ACCOUNT.A.LEAFZ", n=6),
    },
]
