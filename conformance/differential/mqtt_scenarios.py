"""MQTT differential scenarios: what a NATS subscriber and an MQTT subscriber
receive when MQTT devices publish (QoS 0, 1 and 2, retained, wills, topic
mapping), and the CONNACK codes of bad credentials, on natrix and on
nats-server alike.

An MQTT scenario is a dict with ``name``, ``mqtt_config`` (extra config text
besides the mqtt listener, JetStream and a server name) and ``run``: a
function of (NATS client port, MQTT port) returning a list of observations,
plain JSON values compared as they are. Packets are written by hand here so
that what is compared is the bytes each server sends.
"""

from __future__ import annotations

import socket
import struct
import time

WAIT_S = 5.0
IDLE_S = 0.5


def _s(b: bytes) -> bytes:
    return struct.pack(">H", len(b)) + b


def _packet(first: int, body: bytes) -> bytes:
    n, length = len(body), b""
    while True:
        byte, n = n % 128, n // 128
        length += bytes([byte | (0x80 if n else 0)])
        if not n:
            return bytes([first]) + length + body


class Mqtt:
    """A raw MQTT 3.1.1 client: packets in and out as bytes."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
        self.buf = b""
        self.closed = False

    def connect(self, client_id: str, clean=True, user=None, password=None, will=None, keep_alive=30) -> list:
        flags = 0x02 if clean else 0
        payload = _s(client_id.encode())
        if will is not None:
            topic, message, qos, retain = will
            flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
            payload += _s(topic.encode()) + _s(message)
        if user is not None:
            flags |= 0x80
            payload += _s(user.encode())
        if password is not None:
            flags |= 0x40
            payload += _s(password.encode())
        body = _s(b"MQTT") + bytes([4, flags]) + struct.pack(">H", keep_alive) + payload
        self.sock.sendall(_packet(0x10, body))
        return self.packet()

    def subscribe(self, pi: int, filters: list) -> list:
        body = struct.pack(">H", pi) + b"".join(_s(f.encode()) + bytes([q]) for f, q in filters)
        self.sock.sendall(_packet(0x82, body))
        return self.packet()

    def publish(self, topic: str, payload: bytes, qos=0, retain=False, pi=1) -> list:
        """Publishes; returns the acknowledgements (PUBACK, or PUBREC then PUBCOMP)."""
        body = _s(topic.encode()) + (struct.pack(">H", pi) if qos else b"") + payload
        self.sock.sendall(_packet(0x30 | (qos << 1) | int(retain), body))
        if qos == 0:
            return []
        first = self.packet()
        if qos == 1:
            return [first]
        self.sock.sendall(bytes([0x62, 2]) + struct.pack(">H", pi))
        return [first, self.packet()]

    def _fill(self, timeout: float) -> bool:
        if self.closed:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.buf += data
        return True

    def _take(self):
        """One whole packet from the buffer: (first byte, body), or None."""
        if len(self.buf) < 2:
            return None
        n, mult, i = 0, 1, 1
        while True:
            if i >= len(self.buf):
                return None
            b = self.buf[i]
            n += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        if len(self.buf) < i + n:
            return None
        first, body = self.buf[0], self.buf[i:i + n]
        self.buf = self.buf[i + n:]
        return first, body

    def packet(self) -> list:
        """The next packet as [type byte, body hex], or ["<closed>"] / ["<none>"]."""
        deadline = time.monotonic() + WAIT_S
        while True:
            p = self._take()
            if p is not None:
                return [p[0], p[1].hex()]
            if self.closed:
                return ["<closed>"]
            left = deadline - time.monotonic()
            if left <= 0 or not self._fill(left):
                if self.closed:
                    continue
                return ["<none>"]

    def messages(self, idle=IDLE_S) -> list:
        """PUBLISHes until `idle` of silence, acknowledged at QoS 1 and 2, as
        sorted [topic, payload, qos, retain, dup]."""
        out = []
        while True:
            p = self._take()
            if p is None:
                if not self._fill(idle):
                    return sorted(out)
                continue
            first, body = p
            if first == 0x62:  # PUBREL of a QoS 2 delivery
                self.sock.sendall(b"\x70\x02" + body[:2])
                out.append(["<PUBREL>"])
                continue
            if first >> 4 != 3:
                out.append(["<packet>", first])
                continue
            qos = (first >> 1) & 3
            tlen = struct.unpack(">H", body[:2])[0]
            topic = body[2:2 + tlen].decode()
            rest = body[2 + tlen:]
            if qos:
                pi, rest = rest[:2], rest[2:]
                self.sock.sendall((b"\x40\x02" if qos == 1 else b"\x50\x02") + pi)
            out.append([topic, rest.decode("utf-8", "backslashreplace"), qos, bool(first & 1), bool(first & 8)])

    def drop(self):
        """Closes without DISCONNECT."""
        self.sock.close()

    def disconnect(self):
        try:
            self.sock.sendall(b"\xe0\x00")
        except OSError:
            pass
        self.sock.close()


class Nats:
    """A raw NATS subscriber: what it receives, as (subject, headers, payload)."""

    def __init__(self, port: int, subjects: list):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
        self.buf = b""
        cmds = b'CONNECT {"verbose":false,"headers":true,"protocol":1}\r\n'
        cmds += b"".join(f"SUB {s} {i + 1}\r\n".encode() for i, s in enumerate(subjects))
        self.sock.sendall(cmds + b"PING\r\n")
        self._until(b"PONG\r\n")
        self.buf = b""

    def _until(self, marker: bytes):
        deadline = time.monotonic() + WAIT_S
        while marker not in self.buf and time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                break
            self.buf += data

    def publish(self, subject: str, payload: bytes):
        self.sock.sendall(f"PUB {subject} {len(payload)}\r\n".encode() + payload + b"\r\nPING\r\n")
        self._until(b"PONG\r\n")

    def messages(self) -> list:
        """Messages until a PONG after `IDLE_S`, sorted."""
        time.sleep(IDLE_S)
        self.sock.sendall(b"PING\r\n")
        self._until(b"PONG\r\n")
        out, data = [], self.buf
        self.buf = b""
        while data:
            line, _, data = data.partition(b"\r\n")
            parts = line.decode().split(" ")
            if parts[0] == "MSG":
                size = int(parts[-1])
                out.append([parts[1], "", data[:size].decode("utf-8", "backslashreplace")])
                data = data[size + 2:]
            elif parts[0] == "HMSG":
                hlen, size = int(parts[-2]), int(parts[-1])
                hdr = data[:hlen].decode().replace("\r\n", "|")
                out.append([parts[1], hdr, data[hlen:size].decode("utf-8", "backslashreplace")])
                data = data[size + 2:]
        return sorted(out)

    def close(self):
        self.sock.close()


def qos_both_ways(nats_port: int, mqtt_port: int) -> list:
    nc = Nats(nats_port, ["t.>"])
    sub = Mqtt(mqtt_port)
    obs = [sub.connect("sub"), sub.subscribe(1, [("t/#", 1), ("t/q2", 2)])]
    pub = Mqtt(mqtt_port)
    obs.append(pub.connect("pub"))
    obs.append(pub.publish("t/zero", b"q0", qos=0))
    obs.append(pub.publish("t/one", b"q1", qos=1, pi=5))
    obs.append(pub.publish("t/q2", b"q2", qos=2, pi=6))
    obs += [nc.messages(), sub.messages()]
    nc.publish("t.from.nats", b"n")
    obs.append(sub.messages())
    for c in (sub, pub):
        c.disconnect()
    nc.close()
    return obs


def topic_mapping(nats_port: int, mqtt_port: int) -> list:
    sub = Mqtt(mqtt_port)
    obs = [sub.connect("map"), sub.subscribe(1, [("a/+/c", 0), ("a/#", 1), ("+/x", 0), ("#", 0)])]
    nc = Nats(nats_port, ["a.>", "*.x"])
    for subject in ("a.b.c", "a", "b.x", "$SYS.x", "a.b.d.e"):
        nc.publish(subject, subject.encode())
    obs.append(sub.messages())
    pub = Mqtt(mqtt_port)
    obs.append(pub.connect("mapper"))
    pub.publish("a/b/c", b"slash", qos=1)
    pub.publish("b/x", b"plus", qos=0)
    obs += [nc.messages(), sub.messages()]
    for c in (sub, pub):
        c.disconnect()
    nc.close()
    return obs


def retained(nats_port: int, mqtt_port: int) -> list:
    pub = Mqtt(mqtt_port)
    obs = [pub.connect("rpub")]
    obs.append(pub.publish("r/one", b"kept1", qos=1, retain=True, pi=1))
    obs.append(pub.publish("r/zero", b"kept0", qos=0, retain=True))
    obs.append(pub.publish("r/two", b"kept2", qos=2, retain=True, pi=2))
    late = Mqtt(mqtt_port)
    obs += [late.connect("rlate"), late.subscribe(1, [("r/#", 2)]), late.messages()]
    obs.append(pub.publish("r/one", b"", qos=1, retain=True, pi=3))
    obs.append(late.messages())
    later = Mqtt(mqtt_port)
    obs += [later.connect("rlater"), later.subscribe(1, [("r/+", 1)]), later.messages()]
    for c in (pub, late, later):
        c.disconnect()
    return obs


def will(nats_port: int, mqtt_port: int) -> list:
    nc = Nats(nats_port, ["wills.>"])
    watcher = Mqtt(mqtt_port)
    obs = [watcher.connect("watch"), watcher.subscribe(1, [("wills/#", 1)])]
    dev = Mqtt(mqtt_port)
    obs.append(dev.connect("dev", will=("wills/dev", b"gone", 1, False)))
    dev.drop()
    polite = Mqtt(mqtt_port)
    obs.append(polite.connect("polite", will=("wills/polite", b"never", 0, False)))
    polite.disconnect()
    obs += [watcher.messages(idle=1.0), nc.messages()]
    watcher.disconnect()
    nc.close()
    return obs


def bad_credentials(nats_port: int, mqtt_port: int) -> list:
    obs = []
    for user, password in (("dev", "wrong"), (None, None), ("nobody", "x"), ("dev", "secret"), ("tok", None)):
        c = Mqtt(mqtt_port)
        obs.append([user, password, c.connect(f"cred-{user}", user=user, password=password), c.packet()])
        c.drop()
    return obs


def block_authorization(nats_port: int, mqtt_port: int) -> list:
    obs = []
    for user, password in (("mq", "mqpass"), ("alice", "apass"), (None, None), ("x", "mqtoken")):
        c = Mqtt(mqtt_port)
        obs.append([user, password, c.connect(f"blk-{user}", user=user, password=password)])
        c.drop()
    return obs


def permissions(nats_port: int, mqtt_port: int) -> list:
    nc = Nats(nats_port, [">"])
    dev = Mqtt(mqtt_port)
    obs = [dev.connect("pdev", user="dev", password="pd")]
    obs.append(dev.subscribe(1, [("ok/#", 1), ("secret/+", 1), ("$MQTT/msgs/#", 0), ("ok/q2", 2)]))
    obs.append(dev.publish("secret/x", b"denied", qos=1, pi=3))
    obs.append(dev.publish("ok/x", b"allowed", qos=1, pi=4))
    obs.append(dev.messages())
    obs.append([m for m in nc.messages() if not m[0].startswith("$")])
    dev.disconnect()
    nc.close()
    return obs


MQTT_SCENARIOS = [
    {"name": "mqtt_qos0_qos1_qos2_to_nats_and_mqtt", "run": qos_both_ways},
    {"name": "mqtt_topic_mapping_both_ways", "run": topic_mapping},
    {"name": "mqtt_retained_messages", "run": retained},
    {"name": "mqtt_will_messages", "run": will},
    {
        "name": "mqtt_connack_for_bad_credentials",
        "mqtt_config": "authorization { users: [{user: dev, password: secret}] }",
        "run": bad_credentials,
    },
    {
        "name": "mqtt_block_token",
        "mqtt_block": "authorization { token: mqtoken }",
        "run": block_authorization,
    },
    {
        "name": "mqtt_block_user",
        "mqtt_block": "authorization { username: mq, password: mqpass }",
        "run": block_authorization,
    },
    {
        "name": "mqtt_block_no_auth_user",
        "mqtt_config": "authorization { users: [{user: alice, password: apass}, {user: mq, password: mqpass}] }",
        "mqtt_block": "no_auth_user: alice",
        "run": block_authorization,
    },
    {
        "name": "mqtt_user_permissions",
        "mqtt_config": "authorization { users: [{user: dev, password: pd, permissions: "
                       "{publish: \"ok.>\", subscribe: \"ok.>\"}}, {user: sys, password: s}] }\n"
                       "no_auth_user: sys",
        "run": permissions,
    },
]
