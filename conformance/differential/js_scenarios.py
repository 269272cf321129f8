"""Differential scenarios for the JetStream stream API ($JS.API.STREAM.*,
$JS.API.INFO, direct get) and the publish path into streams.

Each request is a raw PUB with a reply subject the connection subscribed
to; the response is read until the server is idle (a PubAck or a response
to a write waits for natrix's fsync, so a PING/PONG sync could overtake it).
Responses are compared as JSON, with the values that legitimately differ
masked by type wherever they appear: timestamps (`created`, `ts`,
`first_ts`, `last_ts`, `time`) and the leader's name. Error responses are
compared in full (code, err_code, description).

Every server gets the same flags; `-sd js` is relative to the fresh
directory each server runs in.
"""

import json

JS_ARGS = ["-js", "-sd", "js"]
CONNECT_JS = (b'CONNECT {"verbose":false,"pedantic":false,"headers":true,'
              b'"no_responders":true,"protocol":1}\r\n')
VOLATILE = ["created", "ts", "first_ts", "last_ts", "time", "leader", "server_name"]
MASK = [
    # A MSG's size includes timestamps whose length varies (Go trims
    # trailing zeros of the nanoseconds).
    (r"^(MSG _INBOX\.\S+ 1) \d+$", r"\1 <size>"),
    (r"^(HMSG _INBOX\.\S+ 1) \d+ \d+$", r"\1 <sizes>"),
    (r"^Nats-Time-Stamp: .*$", "Nats-Time-Stamp: <time>"),
]


def _body(doc) -> bytes:
    if doc is None:
        return b""
    if isinstance(doc, (bytes, str)):
        return doc.encode() if isinstance(doc, str) else doc
    return json.dumps(doc, separators=(",", ":")).encode()


def pub(subject: str, doc=None, reply: str = "_INBOX.r") -> bytes:
    body = _body(doc)
    return b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), reply.encode(), len(body), body)


def hpub(subject: str, headers: dict, payload: bytes = b"x", reply: str = "_INBOX.r") -> bytes:
    hdr = b"NATS/1.0\r\n" + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in headers.items()) + b"\r\n"
    return b"HPUB %s %s %d %d\r\n%s%s\r\n" % (subject.encode(), reply.encode(), len(hdr), len(hdr) + len(payload),
                                              hdr, payload)


def ask(*frames: bytes) -> list:
    """Steps sending `frames` on connection a and recording what comes back."""
    return [s for f in frames for s in (("send", "a", f), ("read", "a"))]


def park(*frames: bytes) -> list:
    """Steps sending requests that wait (pull requests with an expiry) with
    no read of their own: a read lasts until the line has been quiet for a
    while, and on a busy machine that can outlast the expiry, so what they
    get is read by the next step that reads, after a sleep."""
    return [("send", "a", f) for f in frames]


def js_scenario(name: str, steps: list, args=None) -> dict:
    return {
        "name": name,
        "args": list(JS_ARGS if args is None else args),
        "mask": MASK,
        "json_volatile_keys": VOLATILE,
        "steps": [("open", "a"), ("send", "a", CONNECT_JS), ("sync", "a"),
                  ("send", "a", b"SUB _INBOX.> 1\r\n"), ("sync", "a")] + steps,
    }


def create(name: str, **config) -> bytes:
    return pub(f"$JS.API.STREAM.CREATE.{name}", {"name": name, **config})


ORDERS = {"subjects": ["orders.*"], "storage": "file"}
MEM = {"subjects": ["m.>"], "storage": "memory"}

JS_SCENARIOS = [
    js_scenario("js_account_info", ask(
        pub("$JS.API.INFO"),
        create("S", **ORDERS),
        pub("orders.a", "one"),
        pub("$JS.API.INFO"),
    )),
    js_scenario("js_not_enabled", ask(
        pub("$JS.API.INFO"),
        create("S", **ORDERS),
        pub("$JS.API.STREAM.NAMES"),
    ), args=[]),
    js_scenario("js_stream_create", ask(
        create("S", **ORDERS),
        # The same config again returns the stream; another is an error.
        create("S", **ORDERS),
        create("S", subjects=["orders.*"], storage="file", max_msgs=10),
        # The name in the subject and the body disagree.
        pub("$JS.API.STREAM.CREATE.T", {"name": "U", "subjects": ["t"]}),
        # No body, not JSON, a name that is not a token.
        pub("$JS.API.STREAM.CREATE.V"),
        pub("$JS.API.STREAM.CREATE.E", {"subjects": ["e"]}),
        pub("$JS.API.STREAM.CREATE.V", "{not json"),
        pub("$JS.API.STREAM.CREATE.W", {"name": "W", "subjects": ["w"], "unknown_field": 1}),
        # Overlapping subjects, more replicas than servers, a bad subject.
        create("O", subjects=["orders.>"]),
        create("R", subjects=["r"], num_replicas=3),
        create("B", subjects=["b..c"]),
        create("N", subjects=["n"], max_age=-1),
        create("D", subjects=["d"], duplicate_window=-5),
        create("M", **MEM, max_msgs_per_subject=2, discard="new", discard_new_per_subject=True),
        create("X", subjects=["x"], discard="new", discard_new_per_subject=True),
    )),
    js_scenario("js_stream_info_update_delete", ask(
        create("S", **ORDERS),
        pub("$JS.API.STREAM.INFO.S"),
        pub("$JS.API.STREAM.INFO.NOPE"),
        pub("$JS.API.STREAM.UPDATE.S", {"name": "S", "subjects": ["orders.*", "more"], "storage": "file",
                                        "max_msgs": 100, "description": "d"}),
        # Storage cannot change; the stream must exist.
        pub("$JS.API.STREAM.UPDATE.S", {"name": "S", "subjects": ["orders.*"], "storage": "memory"}),
        pub("$JS.API.STREAM.UPDATE.NOPE", {"name": "NOPE", "subjects": ["nope"]}),
        pub("$JS.API.STREAM.UPDATE.S", {"name": "S", "subjects": ["orders.*"], "storage": "file",
                                        "max_msgs": 100, "sealed": True}),
        pub("$JS.API.STREAM.DELETE.S"),
        pub("$JS.API.STREAM.DELETE.S"),
        pub("$JS.API.STREAM.INFO.S"),
    )),
    js_scenario("js_stream_names_list", ask(
        create("A", subjects=["a.*"]),
        create("B", subjects=["b.>"], storage="memory"),
        create("C", subjects=["c"]),
        pub("$JS.API.STREAM.NAMES"),
        pub("$JS.API.STREAM.NAMES", {"subject": "b.x"}),
        pub("$JS.API.STREAM.NAMES", {"offset": 2}),
        pub("$JS.API.STREAM.LIST"),
        pub("$JS.API.STREAM.LIST", {"subject": "a.1"}),
        pub("$JS.API.STREAM.NAMES", "{bad"),
    )),
    js_scenario("js_publish_acks_and_dedupe", ask(
        create("S", **ORDERS, duplicate_window=60_000_000_000),
        pub("orders.a", "one"),
        hpub("orders.a", {"Nats-Msg-Id": "m1"}),
        hpub("orders.b", {"Nats-Msg-Id": "m1"}),
        hpub("orders.b", {"Nats-Msg-Id": "m2"}),
        pub("$JS.API.STREAM.INFO.S"),
    )),
    js_scenario("js_publish_expectations", ask(
        create("S", **ORDERS),
        pub("orders.a", "one"),
        hpub("orders.a", {"Nats-Expected-Stream": "OTHER"}),
        hpub("orders.a", {"Nats-Expected-Stream": "S"}),
        hpub("orders.a", {"Nats-Expected-Last-Sequence": "1"}),
        hpub("orders.a", {"Nats-Expected-Last-Sequence": "2"}),
        hpub("orders.b", {"Nats-Expected-Last-Subject-Sequence": "0"}),
        hpub("orders.b", {"Nats-Expected-Last-Subject-Sequence": "0"}),
        hpub("orders.c", {"Nats-Msg-Id": "x1"}),
        hpub("orders.c", {"Nats-Expected-Last-Msg-Id": "x1"}),
        hpub("orders.c", {"Nats-Expected-Last-Msg-Id": "nope"}),
        hpub("orders.a", {"Nats-Expected-Last-Sequence": "abc"}),
        # Rollups need allow_rollup_hdrs.
        hpub("orders.a", {"Nats-Rollup": "sub"}),
    )),
    js_scenario("js_rollup", ask(
        create("R", subjects=["r.*"], allow_rollup_hdrs=True),
        pub("r.a", "1"), pub("r.a", "2"), pub("r.b", "3"),
        hpub("r.a", {"Nats-Rollup": "sub"}),
        pub("$JS.API.STREAM.INFO.R", {"subjects_filter": ">"}),
        hpub("r.b", {"Nats-Rollup": "all"}),
        hpub("r.b", {"Nats-Rollup": "bogus"}),
        pub("$JS.API.STREAM.INFO.R"),
    )),
    js_scenario("js_limits_discard", ask(
        create("O", subjects=["o"], max_msgs=2),
        pub("o", "1"), pub("o", "2"), pub("o", "3"),
        pub("$JS.API.STREAM.INFO.O"),
        create("N", subjects=["n"], max_msgs=2, discard="new", storage="memory"),
        pub("n", "1"), pub("n", "2"), pub("n", "3"),
        create("Z", subjects=["z"], max_msg_size=4),
        pub("z", "1234"), pub("z", "12345"),
        create("B", subjects=["b"], max_bytes=100, discard="new"),
        pub("b", "x" * 40), pub("b", "x" * 40), pub("b", "x" * 40),
        pub("$JS.API.STREAM.INFO.B"),
        create("P", subjects=["p.*"], max_msgs_per_subject=1),
        pub("p.a", "1"), pub("p.a", "2"), pub("p.b", "3"),
        pub("$JS.API.STREAM.INFO.P", {"subjects_filter": "p.*"}),
    )),
    js_scenario("js_msg_get_delete", ask(
        create("S", **ORDERS),
        pub("orders.a", "1"), pub("orders.b", "2"), pub("orders.a", "3"),
        pub("$JS.API.STREAM.MSG.GET.S", {"seq": 2}),
        pub("$JS.API.STREAM.MSG.GET.S", {"last_by_subj": "orders.a"}),
        pub("$JS.API.STREAM.MSG.GET.S", {"next_by_subj": "orders.a", "seq": 2}),
        pub("$JS.API.STREAM.MSG.GET.S", {"seq": 9}),
        pub("$JS.API.STREAM.MSG.GET.S", {"last_by_subj": "orders.z"}),
        pub("$JS.API.STREAM.MSG.GET.S"),
        pub("$JS.API.STREAM.MSG.GET.S", {"seq": 1, "last_by_subj": "orders.a"}),
        pub("$JS.API.STREAM.MSG.GET.NOPE", {"seq": 1}),
        pub("$JS.API.STREAM.MSG.DELETE.S", {"seq": 2}),
        pub("$JS.API.STREAM.MSG.DELETE.S", {"seq": 2}),
        pub("$JS.API.STREAM.MSG.DELETE.S", {"seq": 1, "no_erase": True}),
        pub("$JS.API.STREAM.MSG.DELETE.S"),
        pub("$JS.API.STREAM.INFO.S", {"deleted_details": True}),
        create("DD", subjects=["dd"], deny_delete=True),
        pub("dd", "1"),
        pub("$JS.API.STREAM.MSG.DELETE.DD", {"seq": 1}),
    )),
    js_scenario("js_purge", ask(
        create("S", **ORDERS),
        *[pub(f"orders.{s}", str(i)) for i, s in enumerate("abababc")],
        pub("$JS.API.STREAM.PURGE.S", {"filter": "orders.a", "keep": 1}),
        pub("$JS.API.STREAM.INFO.S", {"subjects_filter": ">"}),
        pub("$JS.API.STREAM.INFO.S", {"subjects_filter": ">", "offset": 1}),
        pub("$JS.API.STREAM.PURGE.S", {"seq": 5}),
        pub("$JS.API.STREAM.INFO.S"),
        pub("$JS.API.STREAM.PURGE.S", {"seq": 2, "keep": 1}),
        pub("$JS.API.STREAM.PURGE.S"),
        pub("$JS.API.STREAM.INFO.S"),
        pub("$JS.API.STREAM.PURGE.NOPE"),
        create("DP", subjects=["dp"], deny_purge=True),
        pub("$JS.API.STREAM.PURGE.DP"),
    )),
    js_scenario("js_direct_get", ask(
        create("S", **ORDERS, allow_direct=True),
        pub("orders.a", "1"), hpub("orders.b", {"k": "v"}, b"2"), pub("orders.a", "3"),
        pub("$JS.API.DIRECT.GET.S", {"seq": 2}),
        pub("$JS.API.DIRECT.GET.S", {"last_by_subj": "orders.b"}),
        pub("$JS.API.DIRECT.GET.S", {"next_by_subj": "orders.a", "seq": 2}),
        pub("$JS.API.DIRECT.GET.S.orders.a"),
        pub("$JS.API.DIRECT.GET.S", {"seq": 99}),
        pub("$JS.API.DIRECT.GET.S.orders.zzz"),
        pub("$JS.API.DIRECT.GET.S", "{bad"),
        # No such stream, or a stream without allow_direct: no responders.
        pub("$JS.API.DIRECT.GET.NOPE", {"seq": 1}),
        create("ND", subjects=["nd"]),
        pub("$JS.API.DIRECT.GET.ND", {"seq": 1}),
    )),
    js_scenario("js_message_ttl", ask(
        create("N", subjects=["n"]),
        hpub("n", {"Nats-TTL": "2s"}),
        hpub("n", {"Nats-TTL": "soon"}),
        create("T", subjects=["t.*"], allow_msg_ttl=True, storage="memory"),
        hpub("t.a", {"Nats-TTL": "3s"}),
        hpub("t.b", {"Nats-TTL": "500ms"}),
        hpub("t.b", {"Nats-TTL": "0"}),
        hpub("t.c", {"Nats-TTL": "never"}),
        hpub("t.d", {"Nats-TTL": "60"}),
        pub("$JS.API.STREAM.INFO.T"),
    ) + [("sleep", 2.5)] + ask(pub("$JS.API.STREAM.INFO.T"))),
    js_scenario("js_sealed_stream", ask(
        create("S", **ORDERS),
        pub("orders.a", "1"),
        pub("$JS.API.STREAM.UPDATE.S", {"name": "S", "subjects": ["orders.*"], "storage": "file", "sealed": True}),
        pub("orders.a", "2"),
        pub("$JS.API.STREAM.PURGE.S"),
        pub("$JS.API.STREAM.MSG.DELETE.S", {"seq": 1}),
        pub("$JS.API.STREAM.INFO.S"),
    )),
]

# --- consumers ($JS.API.CONSUMER.*, MSG.NEXT and its status messages) -------

# A delivery's ack subject ends with the message's timestamp and the count
# pending: the timestamp differs between runs.
CONSUMER_MASK = MASK + [
    (r"^((?:H?MSG) \S+ \d+ \$JS\.ACK\.[^.]+\.[^.]+\.\d+\.\d+\.\d+\.)\d+(\.\d+ .*)$", r"\1<ts>\2"),
    (r"^((?:H?MSG) \S+ \d+ \$JS\.ACK\.[^.]+\.[^.]+\.\d+\.\d+\.\d+\.<ts>\.\d+) \d+( \d+)?$", r"\1 <sizes>"),
]


def consumer_scenario(name: str, steps: list) -> dict:
    sc = js_scenario(name, steps)
    sc["mask"] = CONSUMER_MASK
    sc["json_volatile_keys"] = VOLATILE + ["last_active"]
    return sc


def consumer(stream: str, config: dict, name: str | None = None, action: str | None = None) -> bytes:
    subject = f"$JS.API.CONSUMER.CREATE.{stream}" + (f".{name}" if name else "")
    body = {"stream_name": stream, "config": config}
    if action:
        body["action"] = action
    return pub(subject, body)


def nxt(stream: str, name: str, doc=None, reply: str = "_INBOX.n") -> bytes:
    return pub(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}", doc, reply=reply)


PULL = {"durable_name": "C", "ack_policy": "explicit"}

JS_SCENARIOS += [
    consumer_scenario("js_consumer_create_errors", ask(
        create("S", **ORDERS),
        pub("orders.a", "1"),
        consumer("S", PULL, "C"),
        # The same again is the same consumer; a change of what cannot change is an error.
        consumer("S", PULL, "C"),
        consumer("S", {**PULL, "deliver_policy": "new"}, "C"),
        consumer("S", PULL, "C", action="create"),
        consumer("S", {"durable_name": "U", "ack_policy": "explicit"}, "U", action="update"),
        # Names that disagree, no stream, no config, an unknown policy.
        consumer("S", {"durable_name": "X", "ack_policy": "explicit"}, "Y"),
        consumer("NOPE", PULL, "C"),
        pub("$JS.API.CONSUMER.CREATE.S.E", {"stream_name": "S"}),
        consumer("S", {"durable_name": "P", "ack_policy": "sometimes"}, "P"),
        pub("$JS.API.CONSUMER.CREATE.S.F.orders.b", {"stream_name": "S",
                                                    "config": {"name": "F", "filter_subject": "orders.a"}}),
        pub("$JS.API.CONSUMER.DURABLE.CREATE.S.D", {"stream_name": "S", "config": {"ack_policy": "explicit"}}),
        # Push-only and pull-only settings on the wrong kind of consumer.
        consumer("S", {"durable_name": "H", "deliver_subject": "dlv", "max_waiting": 10}, "H"),
        consumer("S", {"durable_name": "R", "rate_limit_bps": 1000}, "R"),
        consumer("S", {"durable_name": "I", "ack_policy": "explicit", "idle_heartbeat": 1_000_000_000}, "I"),
        pub("$JS.API.CONSUMER.INFO.S.C"),
        pub("$JS.API.CONSUMER.INFO.S.NOPE"),
        pub("$JS.API.CONSUMER.NAMES.S"),
        pub("$JS.API.CONSUMER.LIST.S"),
        pub("$JS.API.CONSUMER.DELETE.S.C"),
        pub("$JS.API.CONSUMER.DELETE.S.C"),
    )),
    consumer_scenario("js_consumer_next_statuses", ask(
        create("S", **ORDERS),
        consumer("S", {**PULL, "max_batch": 2, "max_waiting": 1}, "C"),
        # Nothing there: no_wait answers 404 at once.
        nxt("S", "C", {"batch": 1, "no_wait": True}),
        # Asking for more than the consumer allows.
        nxt("S", "C", {"batch": 5}),
        pub("orders.a", "1"), pub("orders.b", "22"),
        nxt("S", "C", {"batch": 2, "no_wait": True}),
        pub("orders.a", "333"),
        # Too small a byte budget for the next message.
        nxt("S", "C", {"batch": 1, "max_bytes": 10}),
        # One request may wait; a second is one too many. The waiting one
        # expires well after the reads of these three answers.
        nxt("S", "C", {"batch": 1, "expires": 2_000_000_000}, reply="_INBOX.w1"),
        nxt("S", "C", {"batch": 1, "expires": 2_000_000_000}, reply="_INBOX.w2"),
        pub("$JS.API.CONSUMER.INFO.S.C"),
    ) + [("sleep", 1.5), ("read", "a")] + ask(
        consumer("S", {"durable_name": "W", "ack_policy": "explicit", "deliver_policy": "new"}, "W"),
        nxt("S", "W", {"batch": 3, "expires": 5_000_000_000}, reply="_INBOX.w3"),
        # Deleting a consumer ends its waiting requests.
        pub("$JS.API.CONSUMER.DELETE.S.W"),
        consumer("S", {"durable_name": "PU", "deliver_subject": "dlv"}, "PU"),
        nxt("S", "PU", {"batch": 1}),
        nxt("S", "NOPE", {"batch": 1}),
        nxt("S", "C", "{bad json"),
    ) + park(
        # Nothing left: one request waits, a second is one too many.
        nxt("S", "C", {"batch": 2, "expires": 1_000_000_000}, reply="_INBOX.w4"),
        nxt("S", "C", {"batch": 1, "expires": 1_000_000_000}, reply="_INBOX.w5"),
    ) + [("sleep", 1.5), ("read", "a")]),
    # A push consumer is bound while its deliver subject has a subscriber:
    # an UNSUB unbinds it as a closed connection does, and a new SUB binds
    # it again.
    consumer_scenario("js_push_bound_follows_unsub", ask(
        create("S", **ORDERS),
        b"SUB dlv 7\r\n",
        consumer("S", {"durable_name": "PU", "deliver_subject": "dlv", "ack_policy": "explicit"}, "PU"),
        pub("orders.a", "one"),
        b"UNSUB 7\r\n",
        pub("$JS.API.CONSUMER.INFO.S.PU"),
        pub("orders.a", "two"),
        pub("$JS.API.CONSUMER.INFO.S.PU"),
        b"SUB dlv 8\r\n",
    ) + [("sleep", 0.3), ("read", "a")] + ask(pub("$JS.API.CONSUMER.INFO.S.PU"))),
]

# --- priority groups, UNPIN and RESET (nats-server 2.11 onwards) -------------

# A pin id is a fresh nuid on each server; deliveries to other inboxes
# than _INBOX.> (sid 1) carry timestamps and sizes too.
PRIORITY_MASK = CONSUMER_MASK + [
    (r"^Nats-Pin-Id: .*$", "Nats-Pin-Id: <pin>"),
    (r"^((?:H?MSG) \S+ \d+ \$JS\.ACK\.[^.]+\.[^.]+\.\d+\.\d+\.\d+\.)\d+\.(\d+) \d+( \d+)?$", r"\1<ts>.\2 <sizes>"),
]
# nats-server answers a reset from the consumer's own subscription, with
# an empty reply field on the wire (`MSG _INBOX.r 1  637`).
RESET_MASK = [(r"^(MSG _INBOX\.\S+ 1)  (\d+)$", r"\1 \2")] + CONSUMER_MASK


def priority_scenario(name: str, steps: list) -> dict:
    sc = consumer_scenario(name, steps)
    sc["mask"] = PRIORITY_MASK
    sc["json_volatile_keys"] = sc["json_volatile_keys"] + ["pinned_client_id", "pinned_ts"]
    return sc


def grouped(policy: str, name: str, **extra) -> dict:
    return {**PULL, "durable_name": name, "priority_policy": policy, "priority_groups": ["A"], **extra}


JS_SCENARIOS += [
    priority_scenario("js_priority_group_config_errors", ask(
        create("S", **ORDERS),
        consumer("S", grouped("pinned_client", "P1"), "P1"),
        consumer("S", {**PULL, "durable_name": "P2", "priority_policy": "overflow", "priority_groups": []}, "P2"),
        consumer("S", grouped("overflow", "P3", priority_groups=[""]), "P3"),
        consumer("S", grouped("overflow", "P4", priority_groups=["bad group"]), "P4"),
        consumer("S", grouped("overflow", "P5", priority_groups=["A234567890123456", "B2345678901234567"]), "P5"),
        consumer("S", {**PULL, "durable_name": "P6", "priority_groups": ["A"]}, "P6"),
        consumer("S", {**PULL, "durable_name": "P7", "priority_timeout": 1_000_000_000}, "P7"),
        consumer("S", grouped("bogus", "P8"), "P8"),
        consumer("S", grouped("overflow", "P9", deliver_subject="dlv"), "P9"),
        consumer("S", {**PULL, "durable_name": "P10", "priority_policy": "none"}, "P10"),
        consumer("S", grouped("prioritized", "P11", priority_groups=["A", "B"], priority_timeout=5_000_000_000), "P11"),
        consumer("S", grouped("overflow", "P12", priority_timeout=-1), "P12"),
        pub("$JS.API.CONSUMER.INFO.S.P1"),
    )),
    priority_scenario("js_priority_group_pulls", ask(
        create("S", **ORDERS),
        pub("orders.a", "1"), pub("orders.b", "2"), pub("orders.a", "3"), pub("orders.b", "4"), pub("orders.a", "5"),
        consumer("S", grouped("pinned_client", "PIN"), "PIN"),
        consumer("S", grouped("overflow", "OV"), "OV"),
        consumer("S", PULL, "NO"),
        # Priority fields a consumer without the policy refuses (a bare group is ignored).
        nxt("S", "NO", {"batch": 1, "group": "A"}),
        nxt("S", "NO", {"batch": 1, "min_pending": 3}),
        nxt("S", "NO", {"batch": 1, "id": "xyz"}),
        nxt("S", "NO", {"batch": 1, "priority": 10}),
        nxt("S", "OV", {"batch": 1}),
        nxt("S", "OV", {"batch": 1, "group": "B"}),
        nxt("S", "OV", {"batch": 1, "group": "A", "id": "x"}),
        nxt("S", "OV", {"batch": 1, "group": "A", "priority": -1}),
        # Overflow: served once min_pending or min_ack_pending is reached.
        nxt("S", "OV", {"batch": 1, "group": "A", "min_pending": 100, "no_wait": True}),
    ) + park(
        nxt("S", "OV", {"batch": 1, "group": "A", "min_pending": 100, "expires": 300_000_000}, reply="_INBOX.ov1"),
    ) + [("sleep", 1.0), ("read", "a")] + ask(
        nxt("S", "OV", {"batch": 1, "group": "A", "min_pending": 3, "expires": 300_000_000}),
        nxt("S", "OV", {"batch": 1, "group": "A", "min_ack_pending": 1, "expires": 300_000_000}),
        nxt("S", "OV", {"batch": 1, "group": "A", "min_ack_pending": 2, "expires": 300_000_000}),
        # Pinned client: a stale pin before any pin, then the first client
        # is pinned, another waits, a wrong pin is refused.
        nxt("S", "PIN", {"batch": 1, "group": "A", "min_pending": 1}),
        nxt("S", "PIN", {"batch": 1, "group": "A", "id": "bogus", "expires": 300_000_000}),
    ) + park(
        nxt("S", "PIN", {"batch": 2, "group": "A", "expires": 300_000_000}, reply="_INBOX.pin1"),
        nxt("S", "PIN", {"batch": 1, "group": "A", "expires": 300_000_000}, reply="_INBOX.pin2"),
    ) + [("sleep", 1.0), ("read", "a")] + ask(
        nxt("S", "PIN", {"batch": 1, "group": "A", "id": "bogus", "expires": 300_000_000}),
        pub("$JS.API.CONSUMER.INFO.S.PIN"),
        pub("$JS.API.CONSUMER.UNPIN.S.PIN", {"group": "A"}),
        pub("$JS.API.CONSUMER.UNPIN.S.PIN", {"group": "B"}),
        pub("$JS.API.CONSUMER.UNPIN.S.PIN", {}),
        pub("$JS.API.CONSUMER.UNPIN.S.PIN"),
        pub("$JS.API.CONSUMER.UNPIN.S.PIN", {"group": "bad group"}),
        pub("$JS.API.CONSUMER.UNPIN.S.NOPE", {"group": "A"}),
        pub("$JS.API.CONSUMER.UNPIN.S.NO", {"group": "A"}),
        pub("$JS.API.CONSUMER.UNPIN.X.NO", {"group": "A"}),
        pub("$JS.API.CONSUMER.INFO.S.PIN"),
    )),
    # Waiting requests on inboxes of their own (sids 2 and 3): the lower
    # priority number is served first. The publishes ask for no PubAck
    # (natrix acknowledges after its fsync, so the order would differ).
    dict(priority_scenario("js_priority_prioritized", ask(
        create("S", **ORDERS),
        consumer("S", grouped("prioritized", "PR"), "PR"),
        b"SUB low 2\r\nSUB high 3\r\n",
        nxt("S", "PR", {"batch": 5, "group": "A", "priority": 5, "expires": 2_000_000_000}, reply="low"),
        nxt("S", "PR", {"batch": 2, "group": "A", "priority": 1, "expires": 2_000_000_000}, reply="high"),
        b"PUB orders.a 1\r\n1\r\nPUB orders.a 1\r\n2\r\nPUB orders.a 1\r\n3\r\n",
        pub("$JS.API.CONSUMER.INFO.S.PR"),
        # How many are still pending when each goes out is timing: natrix
        # delivers each as it is stored, nats-server once its loop wakes.
    )), mask=PRIORITY_MASK + [(r"(\$JS\.ACK\.\S+\.<ts>\.)\d+ ", r"\1<pending> ")]),
    dict(consumer_scenario("js_consumer_reset", ask(
        create("R", subjects=["r.>"]),
        *[pub(f"r.{i}", "x") for i in range(6)],
        consumer("R", {**PULL, "durable_name": "C"}, "C"),
        consumer("R", {**PULL, "durable_name": "BS", "deliver_policy": "by_start_sequence", "opt_start_seq": 3}, "BS"),
        consumer("R", {**PULL, "durable_name": "L", "deliver_policy": "last"}, "L"),
        consumer("R", {"durable_name": "NA", "ack_policy": "none"}, "NA"),
        nxt("R", "C", {"batch": 4}),
        pub("$JS.ACK.R.C.1.2.2.0.4", "+ACK", reply="_INBOX.ack"),
        pub("$JS.ACK.R.C.1.1.1.0.5", "+ACK", reply="_INBOX.ack"),
        pub("$JS.API.CONSUMER.INFO.R.C"),
        pub("$JS.API.CONSUMER.RESET.R.C"),
        pub("$JS.API.CONSUMER.RESET.R.C", {"seq": 5}),
        pub("$JS.API.CONSUMER.RESET.R.C", {"seq": 0}),
        pub("$JS.API.CONSUMER.RESET.R.C", {}),
        pub("$JS.API.CONSUMER.RESET.R.C", "garbage"),
        pub("$JS.API.CONSUMER.RESET.R.C", {"seq": -1}),
        pub("$JS.API.CONSUMER.RESET.R.BS", {"seq": 1}),
        pub("$JS.API.CONSUMER.RESET.R.BS", {"seq": 4}),
        pub("$JS.API.CONSUMER.RESET.R.BS"),
        pub("$JS.API.CONSUMER.RESET.R.L", {"seq": 4}),
        pub("$JS.API.CONSUMER.RESET.R.L"),
        pub("$JS.API.CONSUMER.RESET.R.NA", {"seq": 2}),
        nxt("R", "C", {"batch": 1, "no_wait": True}),
        pub("$JS.API.CONSUMER.RESET.R.C", {"seq": 100}),
        pub("$JS.API.CONSUMER.INFO.R.C"),
    )), mask=RESET_MASK),
]

# Mirrors and sources: the origin's messages copied (the mirror under the
# origin's sequences, skipping what the origin lost; a source with a
# `Nats-Stream-Source` header naming where each came from), the progress
# STREAM.INFO shows once caught up, and the errors of configs that cannot be.
# `active` is the time since the last message or heartbeat: masked.
SOURCING_VOLATILE = VOLATILE + ["active"]


def sourcing_scenario(name: str, steps: list) -> dict:
    sc = js_scenario(name, steps)
    sc["json_volatile_keys"] = SOURCING_VOLATILE
    # The last word of the header is a hash of the origin's creation time.
    sc["mask"] = MASK + [(r"^(Nats-Stream-Source: .*) [0-9A-Za-z]{8}$", r"\1 <origin>")]
    return sc


def get(stream: str, seq: int) -> bytes:
    return pub(f"$JS.API.STREAM.MSG.GET.{stream}", {"seq": seq})


JS_SCENARIOS += [
    sourcing_scenario("js_mirror", ask(
        create("O", subjects=["o.*"], storage="file", allow_direct=True),
        pub("o.a", "1"), pub("o.b", "2"), pub("o.a", "3"), pub("o.c", "4"),
        pub("$JS.API.STREAM.MSG.DELETE.O", {"seq": 2}),
        create("M", storage="file", mirror={"name": "O"}),
        create("F", storage="memory", mirror={"name": "O", "filter_subject": "o.a"}),
        create("T", storage="file", mirror={"name": "O", "opt_start_seq": 3}),
    ) + [("sleep", 0.5), ("read", "a")] + ask(
        pub("$JS.API.STREAM.INFO.M"),
        pub("$JS.API.STREAM.INFO.F"),
        pub("$JS.API.STREAM.INFO.T"),
        get("M", 1), get("M", 2), get("M", 4),
        get("F", 3),
        # Mirrors take no subjects, sources, first sequence; a mirror cannot change origin.
        create("X", storage="file", subjects=["x"], mirror={"name": "O"}),
        create("Y", storage="file", mirror={"name": "O"}, sources=[{"name": "O"}]),
        create("Z", storage="file", mirror={"name": "O"}, first_seq=5),
        pub("$JS.API.STREAM.UPDATE.M", {"name": "M", "storage": "file", "mirror": {"name": "F"}}),
        pub("o.d", "5"),
    ) + [("sleep", 0.5), ("read", "a")] + ask(
        pub("$JS.API.STREAM.INFO.M"),
        get("M", 5),
    )),
    sourcing_scenario("js_sources", ask(
        create("A", subjects=["a.*"], storage="file"),
        create("B", subjects=["b.*"], storage="memory"),
        pub("a.1", "1"),
        # nats-server lists a stream's sources in map order, which varies
        # from run to run: S's answers (two sources) are not read.
        pub("$JS.API.STREAM.CREATE.S", {"name": "S", "storage": "file", "subjects": ["s"], "allow_direct": True,
                                        "sources": [{"name": "A"}, {"name": "B", "subject_transforms": [
                                            {"src": "b.*", "dest": "from.b.{{wildcard(1)}}"}]}]},
            reply="unread.r"),
        create("H", storage="memory", sources=[
            {"name": "B", "subject_transforms": [{"src": "b.*", "dest": "from.b.{{wildcard(1)}}"}]}]),
        create("G", storage="file", allow_direct=True, sources=[{"name": "A", "filter_subject": "a.2"}]),
    ) + [("sleep", 0.3), ("read", "a")] + ask(
        pub("b.1", "2"),
    ) + [("sleep", 0.3), ("read", "a")] + ask(
        pub("a.2", "3"),
    ) + [("sleep", 0.3), ("read", "a")] + ask(
        pub("s", "own"),
        pub("b.2", "4"),
    ) + [("sleep", 0.3), ("read", "a")] + ask(
        pub("$JS.API.STREAM.INFO.H"),
        pub("$JS.API.STREAM.INFO.G"),
        pub("$JS.API.DIRECT.GET.S", {"seq": 1}), pub("$JS.API.DIRECT.GET.S", {"seq": 2}),
        pub("$JS.API.DIRECT.GET.S", {"seq": 3}), pub("$JS.API.DIRECT.GET.S", {"seq": 4}),
        pub("$JS.API.DIRECT.GET.S", {"seq": 5}), pub("$JS.API.DIRECT.GET.G", {"seq": 1}),
        # The same source twice, overlapping filters, a bad name.
        create("D", storage="file", sources=[{"name": "A"}, {"name": "A"}]),
        create("V", storage="file", sources=[{"name": "A", "subject_transforms": [
            {"src": ">", "dest": "x.>"}, {"src": "a.*", "dest": "y.>"}]}]),
        create("W", storage="file", sources=[{"name": "a.b"}]),
    )),
]

# Sourcing through a durable consumer of the origin (nats-server 2.14's
# durable sourcing): the consumer made first, with the flow_control ack
# policy; the work queue lets go of what the source stored once acked.
# The consumer's `last_active` times are when the source took and acked.
def durable_source_scenario(name: str, steps: list) -> dict:
    sc = sourcing_scenario(name, steps)
    sc["json_volatile_keys"] = SOURCING_VOLATILE + ["last_active"]
    return sc


JS_SCENARIOS += [
    durable_source_scenario("js_durable_source", ask(
        create("W", subjects=["w.*"], storage="file", retention="workqueue"),
        pub("w.a", "1"), pub("w.b", "2"), pub("w.a", "3"),
        pub("$JS.API.CONSUMER.DURABLE.CREATE.W.agg", {"stream_name": "W", "config": {
            "durable_name": "agg", "deliver_subject": "agg.deliver", "ack_policy": "flow_control"}}),
        pub("$JS.API.CONSUMER.CREATE.W.pull", {"stream_name": "W", "config": {
            "name": "pull", "ack_policy": "flow_control"}}),
        create("AGG", storage="file", allow_direct=True, sources=[{"name": "W", "consumer": {
            "name": "agg", "deliver_subject": "agg.deliver"}}]),
        create("BAD", storage="file", sources=[{"name": "W", "consumer": {"name": "agg"}}]),
    ) + [("sleep", 2.5), ("read", "a")] + ask(
        pub("$JS.API.STREAM.INFO.AGG"),
        pub("$JS.API.STREAM.INFO.W"),
        pub("$JS.API.CONSUMER.INFO.W.agg"),
        pub("$JS.API.DIRECT.GET.AGG", {"seq": 1}), pub("$JS.API.DIRECT.GET.AGG", {"seq": 3}),
    )),
]

# API audit advisories: one after each answer, while someone listens on
# $JS.EVENT.ADVISORY.API, naming the client, the request and the answer
# (requests whose answers hold no timestamps, so the quoted answer compares).
# nats-server's MSG line for them has an empty reply field (two spaces).
AUDIT_MASK = MASK + [(r"^MSG \$JS\.EVENT\.ADVISORY\.API 9 +\d+$", "MSG $JS.EVENT.ADVISORY.API 9 <size>")]


def audit_scenario(name: str, steps: list) -> dict:
    sc = js_scenario(name, [("send", "a", b"SUB $JS.EVENT.ADVISORY.API 9\r\n"), ("sync", "a")] + steps)
    sc["mask"] = AUDIT_MASK
    sc["json_volatile_keys"] = VOLATILE + ["id", "timestamp", "start", "rtt", "server"]
    return sc


JS_SCENARIOS += [
    audit_scenario("js_api_audit", ask(
        pub("$JS.API.INFO"),
        pub("$JS.API.STREAM.NAMES"),
        pub("$JS.API.STREAM.INFO.NOPE"),
        pub("$JS.API.STREAM.CREATE.V", "{not json"),
        pub("$JS.API.CONSUMER.INFO.NOPE.C"),
    ) + [("send", "a", b"UNSUB 9\r\n"), ("sync", "a")] + ask(
        # Nobody listens: no advisory.
        pub("$JS.API.INFO"),
    )),
]
