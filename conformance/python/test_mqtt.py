"""MQTT 3.1.1 with paho-mqtt: QoS 0 and 1, retained messages, MQTT <-> NATS
both ways, will messages, bad credentials and a persistent session across
a server restart. Runs against natrix and, with NATRIX_SERVER=nats-server,
against nats-server 2.15.1, the reference."""

import asyncio
import json
import queue
import socket
import struct
import time
import urllib.request

import nats
import paho.mqtt.client as mqtt
import pytest

WAIT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mqtt_config(store_dir, port, extra="", mqtt_extra=""):
    return f"""
server_name: "mqtt-conformance"
jetstream {{ store_dir: "{store_dir}" }}
mqtt {{ listen: "127.0.0.1:{port}"
{mqtt_extra}
}}
{extra}
"""


@pytest.fixture
def broker(start_server, tmp_path):
    """Starts a server with JetStream and MQTT; returns a handle with
    ``srv``, ``port`` (MQTT) and ``restart()``."""

    class Broker:
        def __init__(self, extra="", mqtt_extra=""):
            self.port = free_port()
            self.config = mqtt_config(tmp_path / "js", self.port, extra, mqtt_extra)
            self.srv = start_server(config=self.config, monitoring=True)
            wait_listening(self.port)

        def restart(self):
            self.srv.stop()
            self.srv = start_server(config=self.config)
            wait_listening(self.port)

    return Broker


def wait_listening(port):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on MQTT port {port}")


class Client:
    """A paho client whose connects, subscriptions and messages are waited on."""

    def __init__(self, port, client_id="", clean=True, user=None, password=None, will=None):
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        if user is not None:
            self.c.username_pw_set(user, password)
        if will is not None:
            self.c.will_set(*will)
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.subacks = queue.Queue()
        self.c.on_connect = lambda c, u, flags, rc, p: self.connacks.put((flags.session_present, rc))
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put([int(r.value) for r in rcs])
        self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()

    def connack(self):
        return self.connacks.get(timeout=WAIT_S)

    def subscribe(self, topic, qos=0):
        self.c.subscribe(topic, qos)
        return self.subacks.get(timeout=WAIT_S)

    def publish(self, topic, payload, qos=0, retain=False):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=WAIT_S)
        assert info.is_published()

    def message(self, timeout=WAIT_S):
        return self.messages.get(timeout=timeout)

    def no_message(self, timeout=0.5):
        with pytest.raises(queue.Empty):
            self.messages.get(timeout=timeout)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def connected(port, **kw):
    c = Client(port, **kw)
    present, rc = c.connack()
    assert rc == 0, rc
    return c, present


def test_qos0_publish_subscribe_with_wildcards(broker):
    b = broker()
    sub, _ = connected(b.port, client_id="sub0")
    assert sub.subscribe("a/+/c", 0) == [0]
    assert sub.subscribe("x/#", 0) == [0]
    pub, _ = connected(b.port, client_id="pub0")
    pub.publish("a/b/c", b"one")
    pub.publish("x", b"two")  # x/# matches its parent level too
    pub.publish("x/y/z", b"three")
    got = sorted((m.topic, m.payload, m.qos, m.retain) for m in (sub.message(), sub.message(), sub.message()))
    assert got == [("a/b/c", b"one", 0, False), ("x", b"two", 0, False), ("x/y/z", b"three", 0, False)]
    pub.publish("a/b/d", b"not matched")
    sub.no_message()
    sub.close()
    pub.close()


def test_qos1_is_acknowledged_and_delivered_at_qos1(broker):
    b = broker()
    sub, _ = connected(b.port, client_id="sub1")
    assert sub.subscribe("q/1", 1) == [1]
    pub, _ = connected(b.port, client_id="pub1")
    for i in range(5):
        pub.publish("q/1", f"m{i}".encode(), qos=1)
    got = [sub.message() for _ in range(5)]
    assert sorted(m.payload for m in got) == [f"m{i}".encode() for i in range(5)]
    assert all(m.qos == 1 for m in got)
    sub.no_message()
    sub.close()
    pub.close()


def test_retained_messages_reach_later_subscribers(broker):
    b = broker()
    pub, _ = connected(b.port, client_id="rpub")
    pub.publish("r/x", b"kept", qos=1, retain=True)
    pub.publish("r/y", b"kept too", qos=0, retain=True)
    sub, _ = connected(b.port, client_id="rsub")
    assert sub.subscribe("r/#", 1) == [1]
    got = sorted((m.topic, m.payload, m.retain) for m in (sub.message(), sub.message()))
    assert got == [("r/x", b"kept", True), ("r/y", b"kept too", True)]
    # A retained message with an empty payload clears it.
    pub.publish("r/x", b"", qos=1, retain=True)
    msg = sub.message()  # live subscribers still get the empty message
    assert (msg.topic, msg.payload) == ("r/x", b"")
    late, _ = connected(b.port, client_id="rlate")
    assert late.subscribe("r/x", 0) == [0]
    late.no_message(timeout=1.0)
    for c in (pub, sub, late):
        c.close()


def test_mqtt_and_nats_clients_talk_both_ways(broker):
    b = broker()
    mq, _ = connected(b.port, client_id="bridge")
    assert mq.subscribe("from/nats/+", 0) == [0]

    async def scenario():
        nc = await nats.connect(b.srv.client_url)
        got = asyncio.Queue()

        async def on_msg(msg):
            await got.put(msg)

        await nc.subscribe("from.mqtt.>", cb=on_msg)
        await nc.flush()
        mq.publish("from/mqtt/dev1", b"hello nats", qos=1)
        msg = await asyncio.wait_for(got.get(), WAIT_S)
        assert (msg.subject, msg.data) == ("from.mqtt.dev1", b"hello nats")
        await nc.publish("from.nats.cmd", b"hello mqtt")
        await nc.flush()
        await nc.close()

    asyncio.run(scenario())
    m = mq.message()
    assert (m.topic, m.payload, m.qos) == ("from/nats/cmd", b"hello mqtt", 0)
    mq.close()


def raw_connect(client_id, will_topic, will_message, user=None, password=None):
    """A CONNECT packet with a will, by hand (paho cannot drop a connection
    without DISCONNECT)."""

    def s(b):
        return struct.pack(">H", len(b)) + b

    flags = 0x02 | 0x04 | (1 << 3)
    payload = s(client_id.encode()) + s(will_topic.encode()) + s(will_message)
    if user is not None:
        flags |= 0x80 | 0x40
        payload += s(user.encode()) + s(password.encode())
    body = s(b"MQTT") + bytes([4, flags]) + struct.pack(">H", 30) + payload
    return bytes([0x10, len(body)]) + body


def test_will_is_published_when_a_device_drops(broker):
    b = broker()
    watcher, _ = connected(b.port, client_id="watcher")
    assert watcher.subscribe("wills/#", 1) == [1]
    dev = socket.create_connection(("127.0.0.1", b.port))
    dev.sendall(raw_connect("dev-w", "wills/dev-w", b"gone"))
    assert dev.recv(4) == b"\x20\x02\x00\x00"
    dev.close()
    m = watcher.message()
    assert (m.topic, m.payload) == ("wills/dev-w", b"gone")
    # A DISCONNECT first: no will.
    polite, _ = connected(b.port, client_id="polite", will=("wills/polite", b"should not"))
    polite.close()
    watcher.no_message(timeout=1.0)
    watcher.close()


def test_bad_credentials_get_connack_not_authorized(broker):
    b = broker(extra='authorization { users: [{user: dev, password: secret}] }')
    c = Client(b.port, client_id="bad", user="dev", password="wrong")
    _, rc = c.connack()
    assert rc == 5 or rc.value == 135, rc  # MQTT 3.1.1 code 5: not authorized
    c.c.loop_stop()
    good, _ = connected(b.port, client_id="good", user="dev", password="secret")
    good.close()


def test_persistent_session_survives_a_restart(broker):
    b = broker()
    dev, present = connected(b.port, client_id="persist-1", clean=False)
    assert present is False
    assert dev.subscribe("p/t", 1) == [1]
    dev.close()
    pub, _ = connected(b.port, client_id="ppub")
    pub.publish("p/t", b"while away", qos=1)
    pub.close()
    b.restart()
    dev, present = connected(b.port, client_id="persist-1", clean=False)
    assert present is True
    m = dev.message()
    assert (m.topic, m.payload, m.qos) == ("p/t", b"while away", 1)
    # The subscription came back with the session: new messages flow too.
    pub, _ = connected(b.port, client_id="ppub2")
    pub.publish("p/t", b"after restart", qos=1)
    assert dev.message().payload == b"after restart"
    dev.close()
    pub.close()
    # A clean session drops what was stored.
    dev, present = connected(b.port, client_id="persist-1", clean=True)
    assert present is False
    dev.close()
    dev, present = connected(b.port, client_id="persist-1", clean=False)
    assert present is False
    dev.close()


def test_keep_alive_expiry_publishes_the_will(broker):
    b = broker()
    watcher, _ = connected(b.port, client_id="ka-watcher")
    assert watcher.subscribe("ka/#", 0) == [0]
    dev = socket.create_connection(("127.0.0.1", b.port))
    packet = bytearray(raw_connect("dev-ka", "ka/dev", b"silent"))
    packet[10:12] = struct.pack(">H", 1)  # keep-alive: 1s, then silence
    dev.sendall(bytes(packet))
    assert dev.recv(4) == b"\x20\x02\x00\x00"
    started = time.monotonic()
    m = watcher.message(timeout=5.0)
    assert (m.topic, m.payload) == ("ka/dev", b"silent")
    assert time.monotonic() - started >= 1.0
    dev.close()
    watcher.close()


def test_qos2_publish_is_delivered_once(broker):
    b = broker()
    sub, _ = connected(b.port, client_id="q2sub")
    assert sub.subscribe("q2/t", 1) == [1]
    pub, _ = connected(b.port, client_id="q2pub")
    pub.publish("q2/t", b"exactly once", qos=2)  # PUBREC, PUBREL, PUBCOMP
    m = sub.message()
    assert (m.payload, m.qos) == (b"exactly once", 1)
    sub.no_message()
    sub.close()
    pub.close()


def test_protocol_errors_close_the_connection(broker):
    b = broker()
    dev = socket.create_connection(("127.0.0.1", b.port), timeout=WAIT_S)
    dev.sendall(b"\x82\x06\x00\x01\x00\x01a\x00")  # SUBSCRIBE before CONNECT
    assert dev.recv(16) == b""
    dev.close()
    dev = socket.create_connection(("127.0.0.1", b.port), timeout=WAIT_S)
    body = struct.pack(">H", 4) + b"MQTT" + bytes([3, 2]) + struct.pack(">H", 30) + struct.pack(">H", 1) + b"x"
    dev.sendall(bytes([0x10, len(body)]) + body)  # protocol level 3
    assert dev.recv(4) == b"\x20\x02\x00\x01"
    dev.close()


def test_mqtt_over_websocket(broker):
    ws_port = free_port()
    b = broker(extra=f'websocket {{ listen: "127.0.0.1:{ws_port}", no_tls: true }}')
    wait_listening(ws_port)
    sub, _ = connected(b.port, client_id="ws-sub")
    assert sub.subscribe("ws/+", 1) == [1]
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ws-dev", transport="websockets")
    c.ws_set_options(path="/mqtt")
    connacks = queue.Queue()
    c.on_connect = lambda c, u, flags, rc, p: connacks.put(rc)
    c.connect("127.0.0.1", ws_port, keepalive=30)
    c.loop_start()
    assert connacks.get(timeout=WAIT_S) == 0
    info = c.publish("ws/dev", b"over websocket", qos=1)
    info.wait_for_publish(timeout=WAIT_S)
    m = sub.message()
    assert (m.topic, m.payload, m.qos) == ("ws/dev", b"over websocket", 1)
    c.disconnect()
    c.loop_stop()
    sub.close()


def test_a_second_connection_with_the_same_client_id_takes_over(broker):
    b = broker()
    first = socket.create_connection(("127.0.0.1", b.port), timeout=WAIT_S)
    first.sendall(raw_connect("twin", "twins/gone", b"replaced"))
    assert first.recv(4) == b"\x20\x02\x00\x00"
    watcher, _ = connected(b.port, client_id="twin-watcher")
    assert watcher.subscribe("twins/#", 0) == [0]
    second, _ = connected(b.port, client_id="twin")
    assert first.recv(16) == b""  # the first connection was closed
    watcher.no_message(timeout=1.0)  # and its will dropped, as nats-server does
    first.close()
    second.close()
    watcher.close()


def test_varz_shows_the_mqtt_listener(broker):
    b = broker()
    with urllib.request.urlopen(b.srv.monitor_url.rstrip("/") + "/varz", timeout=WAIT_S) as r:
        varz = json.load(r)
    assert varz["mqtt"] == {"host": "127.0.0.1", "port": b.port, "tls_timeout": 2}


def refused(port, **kw):
    """Connects and asserts CONNACK 5, not authorized."""
    c = Client(port, **kw)
    rc = c.connack()[1]
    c.c.loop_stop()
    assert rc == 5 or getattr(rc, "value", None) == 135, rc


def test_mqtt_block_authorization_replaces_the_servers(broker, start_server):
    b = broker(mqtt_extra="authorization { username: dev, password: s3cret }")
    refused(b.port, client_id="anon")
    refused(b.port, client_id="wrong", user="dev", password="nope")
    good, _ = connected(b.port, client_id="dev", user="dev", password="s3cret")
    good.close()

    async def tcp_needs_nothing():
        nc = await nats.connect(b.srv.client_url)
        await nc.close()

    asyncio.run(tcp_needs_nothing())


def test_mqtt_block_token_is_the_password(broker):
    b = broker(mqtt_extra="authorization { token: tk }")
    refused(b.port, client_id="notoken", user="any", password="other")
    good, _ = connected(b.port, client_id="tok", user="whoever", password="tk")
    good.close()


def test_mqtt_no_auth_user_is_for_mqtt_clients_only(broker):
    b = broker(extra="authorization { users: [{user: a, password: pa}, {user: dev, password: pd}] }",
               mqtt_extra="no_auth_user: dev")
    anon, _ = connected(b.port, client_id="anon-dev")
    assert anon.subscribe("n/a/u", 1) == [1]
    pub, _ = connected(b.port, client_id="named", user="a", password="pa")
    pub.publish("n/a/u", b"hi", qos=1)
    assert anon.message().payload == b"hi"
    refused(b.port, client_id="bad", user="a", password="pd")
    for c in (anon, pub):
        c.close()

    async def tcp_needs_credentials():
        with pytest.raises(Exception):
            await nats.connect(b.srv.client_url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)

    asyncio.run(tcp_needs_credentials())


def test_mqtt_block_timeout_is_the_time_to_connect(broker):
    b = broker(extra="authorization { user: u, password: p, timeout: 5 }", mqtt_extra="authorization { timeout: 1 }")
    dev = socket.create_connection(("127.0.0.1", b.port), timeout=WAIT_S)
    started = time.monotonic()
    assert dev.recv(16) == b""  # closed, without a CONNECT
    took = time.monotonic() - started
    assert 0.5 <= took < 4.0, took
    dev.close()


def test_qos2_subscription_is_granted_and_delivered_at_qos2(broker):
    b = broker()
    sub, _ = connected(b.port, client_id="q2s")
    assert sub.subscribe("q2s/t", 2) == [2]
    pub, _ = connected(b.port, client_id="q2p")
    pub.publish("q2s/t", b"two", qos=2)
    pub.publish("q2s/t", b"one", qos=1)
    got = sorted((m.payload, m.qos) for m in (sub.message(), sub.message()))
    assert got == [(b"one", 1), (b"two", 2)]
    sub.no_message()
    sub.close()
    pub.close()


def mqtt_packet(kind, body):
    return bytes([kind, len(body)]) + body


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        assert chunk, f"closed after {out!r}"
        out += chunk
    return out


def test_qos2_publish_waits_in_jetstream_across_a_reconnect(broker):
    b = broker()
    watcher, _ = connected(b.port, client_id="q2w")
    assert watcher.subscribe("held/t", 1) == [1]

    def persistent(client_id):
        body = struct.pack(">H", 4) + b"MQTT" + bytes([4, 0]) + struct.pack(">H", 30)
        body += struct.pack(">H", len(client_id)) + client_id.encode()
        dev = socket.create_connection(("127.0.0.1", b.port), timeout=WAIT_S)
        dev.sendall(mqtt_packet(0x10, body))
        assert recv_exact(dev, 4)[:2] == b"\x20\x02"
        return dev

    dev = persistent("q2dev")
    topic = b"held/t"
    dev.sendall(mqtt_packet(0x34, struct.pack(">H", len(topic)) + topic + struct.pack(">H", 9) + b"kept"))
    assert recv_exact(dev, 4) == b"\x50\x02\x00\x09"  # PUBREC
    dev.close()
    watcher.no_message(timeout=1.0)  # not released yet
    dev = persistent("q2dev")
    dev.sendall(b"\x62\x02\x00\x09")  # PUBREL
    assert recv_exact(dev, 4) == b"\x70\x02\x00\x09"  # PUBCOMP
    m = watcher.message()
    assert (m.topic, m.payload) == ("held/t", b"kept")
    dev.sendall(b"\x62\x02\x00\x09")  # released already: PUBCOMP, nothing more
    assert recv_exact(dev, 4) == b"\x70\x02\x00\x09"
    watcher.no_message(timeout=1.0)
    dev.close()
    watcher.close()


def test_mqtt_users_permissions_apply_to_what_they_publish_and_subscribe(broker):
    b = broker(extra="authorization { users: [{user: dev, password: pd, permissions: "
                     "{publish: \"ok.>\", subscribe: \"ok.>\"}}, {user: admin, password: pa}] }")
    admin, _ = connected(b.port, client_id="admin", user="admin", password="pa")
    assert admin.subscribe("#", 1) == [1]
    dev, _ = connected(b.port, client_id="dev", user="dev", password="pd")
    assert dev.subscribe("ok/+", 1) == [1]
    assert dev.subscribe("secret/+", 1) == [128]
    assert dev.subscribe("$MQTT/msgs/#", 0) == [128]
    dev.publish("secret/x", b"denied", qos=1)  # acknowledged, goes nowhere
    dev.publish("ok/x", b"allowed", qos=1)
    m = admin.message()
    assert (m.topic, m.payload) == ("ok/x", b"allowed")
    m = dev.message()
    assert (m.topic, m.payload, m.qos) == ("ok/x", b"allowed", 1)
    admin.publish("secret/y", b"not for dev", qos=1)
    assert admin.message().payload == b"not for dev"
    dev.no_message()
    admin.no_message()
    dev.close()
    admin.close()
