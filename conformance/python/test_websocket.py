"""NATS over WebSocket, through nats-py's ws:// transport and raw sockets,
on natrix and on nats-server alike (NATRIX_SERVER picks the target).

nats-py's WebSocket transport needs aiohttp (requirements.txt).
"""

import asyncio
import base64
import functools
import json
import os
import socket
import struct
import time
import urllib.request
import zlib

import nats
import pytest

WS_PLAIN = "websocket { host: 127.0.0.1, port: -1, no_tls: true }\n"


def run(coro_fn):
    @functools.wraps(coro_fn)
    def wrapper(*args, **kwargs):
        asyncio.run(asyncio.wait_for(coro_fn(*args, **kwargs), timeout=30))

    return wrapper


def ws_addr(srv):
    host_port = srv.ws_url.split("://", 1)[1]
    host, port = host_port.rsplit(":", 1)
    return host, int(port)


def raw_upgrade(srv, extra="", method="GET", key=None):
    """Sends an upgrade request; returns the socket and the response head."""
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    host, port = ws_addr(srv)
    s = socket.create_connection((host, port), timeout=5)
    lines = [f"{method} / HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Version: 13"]
    if key:
        lines.append(f"Sec-WebSocket-Key: {key}")
    s.sendall(("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            break
        head += chunk
    return s, head.decode()


def client_frame(payload, opcode=2, rsv1=False):
    mask = os.urandom(4)
    b0 = 0x80 | opcode | (0x40 if rsv1 else 0)
    n = len(payload)
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 65536:
        head = bytes([b0, 0x80 | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, 0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise EOFError("connection closed")
        out += chunk
    return out


def read_frame(s):
    """(fin, rsv1, opcode, payload) of one server frame, which must be unmasked."""
    b0, b1 = read_exact(s, 2)
    assert b1 & 0x80 == 0, "server frames are not masked"
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack(">H", read_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack(">Q", read_exact(s, 8))[0]
    return bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, read_exact(s, n)


def read_nats(s, until, compressed_ok=False):
    """NATS bytes from data frames until `until` is among them."""
    data = b""
    deadline = time.monotonic() + 5
    while until not in data and time.monotonic() < deadline:
        fin, rsv1, opcode, payload = read_frame(s)
        if opcode in (1, 2, 0):
            if rsv1:
                assert compressed_ok, "compressed frame without negotiation"
                payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
            data += payload
    return data


@run
async def test_pub_sub_and_request_over_websocket(start_server):
    srv = start_server(config=WS_PLAIN)
    nc = await nats.connect(srv.ws_url)
    tcp = await nats.connect(srv.client_url)
    try:
        sub = await nc.subscribe("ws.>")
        await nc.flush()
        await tcp.publish("ws.from.tcp", b"hello")
        # Without this flush the TCP message was sometimes never sent before
        # the wait ran out, against either server.
        await tcp.flush()
        await nc.publish("ws.from.ws", b"x" * 100_000)
        # Two publishers: no order between them.
        got = sorted([await sub.next_msg(timeout=2), await sub.next_msg(timeout=2)], key=lambda m: m.subject)
        assert (got[0].subject, got[0].data) == ("ws.from.tcp", b"hello")
        assert (got[1].subject, got[1].data) == ("ws.from.ws", b"x" * 100_000)

        async def echo(msg):
            await msg.respond(b"re:" + msg.data)

        await tcp.subscribe("svc", cb=echo)
        await tcp.flush()
        # Against either server (nats-server 2.15.1 too), about one run in
        # thirty on a loaded machine is answered "no responders" here though
        # the responder's flush returned; the cause is on the client's side
        # of the race. Ask again then.
        for _ in range(3):
            try:
                reply = await nc.request("svc", b"ping", timeout=2)
                break
            except nats.errors.NoRespondersError:
                await asyncio.sleep(0.1)
        assert reply.data == b"re:ping"
    finally:
        await nc.close()
        await tcp.close()


@run
async def test_server_users_apply_over_websocket(start_server):
    srv = start_server(config=WS_PLAIN + "authorization { users: [{user: alice, password: secret, "
                       "permissions: {publish: \"allowed.>\"}}] }\n")
    host, port = ws_addr(srv)
    with pytest.raises(Exception):
        await nats.connect(srv.ws_url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)
    errors = []

    async def on_error(e):
        errors.append(e)

    nc = await nats.connect(f"ws://alice:secret@{host}:{port}", error_cb=on_error)
    try:
        await nc.publish("denied.subject", b"x")
        await nc.flush()
        await asyncio.sleep(0.2)
        assert any("permissions violation" in str(e).lower() for e in errors), errors
    finally:
        await nc.close()


def test_bad_handshakes_get_nats_server_statuses(start_server):
    srv = start_server(config="websocket { host: 127.0.0.1, port: -1, no_tls: true, "
                              "allowed_origins: [\"http://good.example\"] }\n")
    cases = [
        ({"method": "POST"}, "405"),
        ({"key": ""}, "400"),
        ({"key": "c2hvcnQ="}, "400"),
        ({"extra": "Origin: http://evil.example\r\n"}, "403"),
    ]
    for kwargs, status in cases:
        s, head = raw_upgrade(srv, **kwargs)
        s.close()
        assert head.startswith(f"HTTP/1.1 {status} "), (kwargs, head)
    s, head = raw_upgrade(srv, extra="Origin: http://good.example\r\n")
    try:
        assert head.startswith("HTTP/1.1 101 "), head
        assert read_nats(s, b"\r\n").startswith(b"INFO ")
    finally:
        s.close()


def test_raw_frames_fragments_ping_and_close(start_server):
    srv = start_server(config=WS_PLAIN, monitoring=True)
    s, head = raw_upgrade(srv)
    try:
        assert head.startswith("HTTP/1.1 101 ")
        read_nats(s, b"\r\n")
        # A message in three fragments with a ping in the middle.
        msg = b'CONNECT {"verbose":false}\r\nSUB f 1\r\nPUB f 5\r\nhello\r\nPING\r\n'
        s.sendall(bytes([0x02]) + client_frame(msg[:10])[1:])
        s.sendall(client_frame(b"are you there", opcode=9))
        s.sendall(bytes([0x00]) + client_frame(msg[10:30])[1:])
        s.sendall(bytes([0x80]) + client_frame(msg[30:])[1:])
        fin, _, opcode, payload = read_frame(s)
        assert (opcode, payload) == (10, b"are you there")
        data = read_nats(s, b"PONG\r\n")
        assert b"MSG f 1 5\r\nhello\r\n" in data
        conns = json.load(urllib.request.urlopen(srv.monitor_url + "/connz"))["connections"]
        assert [c["type"] for c in conns] == ["websocket"]
        varz = json.load(urllib.request.urlopen(srv.monitor_url + "/varz"))
        assert varz["websocket"]["no_tls"] is True and varz["websocket"]["port"] == ws_addr(srv)[1]
        s.sendall(client_frame(struct.pack(">H", 1000) + b"bye", opcode=8))
        fin, _, opcode, payload = read_frame(s)
        assert opcode == 8 and payload[:2] == struct.pack(">H", 1000)
    finally:
        s.close()


def test_unmasked_frames_are_a_protocol_error(start_server):
    srv = start_server(config=WS_PLAIN)
    s, head = raw_upgrade(srv)
    try:
        read_nats(s, b"\r\n")
        s.sendall(bytes([0x82, 6]) + b"PING\r\n")
        # nats-server may cut the connection before its close frame is out;
        # a close frame, when there is one, says why.
        try:
            fin, _, opcode, payload = read_frame(s)
        except (EOFError, ConnectionError):
            return
        assert opcode == 8 and payload[:2] == struct.pack(">H", 1002)
        assert payload[2:] == b"mask bit missing"
        assert s.recv(1) == b""
    finally:
        s.close()


def test_permessage_deflate_both_ways(start_server):
    srv = start_server(config="websocket { host: 127.0.0.1, port: -1, no_tls: true, compression: true }\n")
    s, head = raw_upgrade(srv, extra="Sec-WebSocket-Extensions: permessage-deflate\r\n")
    try:
        assert "permessage-deflate; server_no_context_takeover; client_no_context_takeover" in head
        read_nats(s, b"\r\n", compressed_ok=True)
        body = b"z" * 5000
        proto = b'CONNECT {"verbose":false}\r\nSUB c 1\r\nPUB c 5000\r\n' + body + b"\r\nPING\r\n"
        c = zlib.compressobj(wbits=-15)
        deflated = c.compress(proto) + c.flush(zlib.Z_SYNC_FLUSH)
        assert deflated.endswith(b"\x00\x00\xff\xff")
        s.sendall(client_frame(deflated[:-4], rsv1=True))
        data = read_nats(s, b"PONG\r\n", compressed_ok=True)
        assert b"MSG c 1 5000\r\n" + body + b"\r\n" in data
    finally:
        s.close()
    # Without the extension offered, nothing is compressed.
    s, head = raw_upgrade(srv)
    try:
        assert "permessage-deflate" not in head
        s.sendall(client_frame(b'CONNECT {"verbose":false}\r\nSUB c 1\r\nPUB c 200\r\n' + b"y" * 200 + b"\r\nPING\r\n"))
        assert b"y" * 200 in read_nats(s, b"PONG\r\n", compressed_ok=False)
    finally:
        s.close()


def test_config_without_tls_or_no_tls_is_refused(start_server):
    from natrix_harness import StartError

    with pytest.raises(StartError) as e:
        start_server(config="websocket { port: -1 }\n")
    assert "websocket requires TLS configuration" in str(e.value)


def raw_login(srv, connect, extra=""):
    """A raw WebSocket client: upgrade (with `extra` headers), INFO, then
    CONNECT and PING; returns (INFO json, what came back)."""
    s, head = raw_upgrade(srv, extra)
    assert " 101 " in head.split("\r\n")[0], head
    try:
        info = read_nats(s, b"\r\n")
        s.sendall(client_frame(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n"))
        try:
            answer = read_nats(s, b"\r\n")
        except EOFError:
            answer = b""
        return json.loads(info[5:].split(b"\r\n")[0]), answer
    finally:
        s.close()


VIOLATION = b"-ERR 'Authorization Violation'\r\n"


@run
async def test_websocket_block_authorization_replaces_the_servers(start_server):
    srv = start_server(config="authorization { token: main }\n"
                              "websocket { host: 127.0.0.1, port: -1, no_tls: true, "
                              "authorization { user: wu, password: wp } }\n")
    info, answer = raw_login(srv, {"verbose": False, "user": "wu", "pass": "wp"})
    assert info["auth_required"] is True
    assert answer.startswith(b"PONG"), answer
    _, answer = raw_login(srv, {"verbose": False, "auth_token": "main"})
    assert answer.startswith(VIOLATION), answer
    nc = await nats.connect(srv.client_url, token="main")
    await nc.close()


def test_websocket_block_token_and_no_auth_server(start_server):
    srv = start_server(config="websocket { host: 127.0.0.1, port: -1, no_tls: true, authorization { token: wt } }\n")
    info, answer = raw_login(srv, {"verbose": False})
    assert info["auth_required"] is True
    assert answer.startswith(VIOLATION), answer
    _, answer = raw_login(srv, {"verbose": False, "auth_token": "wt"})
    assert answer.startswith(b"PONG"), answer


def test_websocket_no_auth_user_is_for_websocket_clients_only(start_server):
    srv = start_server(config="authorization { users: [{user: a, password: pa, permissions: {publish: \"a.>\"}}, "
                              "{user: b, password: pb}] }\n"
                              "websocket { host: 127.0.0.1, port: -1, no_tls: true, no_auth_user: a }\n")
    s, head = raw_upgrade(srv)
    try:
        read_nats(s, b"\r\n")
        s.sendall(client_frame(b'CONNECT {"verbose":false}\r\nPUB x 1\r\nx\r\nPING\r\n'))
        got = read_nats(s, b"PONG\r\n")
        assert got == b"-ERR 'Permissions Violation for Publish to \"x\"'\r\nPONG\r\n", got
    finally:
        s.close()
    _, answer = raw_login(srv, {"verbose": False, "user": "b", "pass": "pb"})
    assert answer.startswith(b"PONG"), answer
    host, port = srv.client_url.split("://", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as tcp:
        tcp.recv(4096)
        tcp.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
        assert tcp.recv(4096).startswith(VIOLATION)


def test_websocket_credentials_from_cookies(start_server):
    srv = start_server(config="authorization { users: [{user: a, password: pa}] }\n"
                              "websocket { host: 127.0.0.1, port: -1, no_tls: true, "
                              "user_cookie: nu, pass_cookie: np }\n")
    _, answer = raw_login(srv, {"verbose": False}, extra="Cookie: nu=a; np=pa\r\n")
    assert answer.startswith(b"PONG"), answer
    _, answer = raw_login(srv, {"verbose": False, "pass": "wrong"}, extra="Cookie: nu=a; np=pa\r\n")
    assert answer.startswith(VIOLATION), answer
    _, answer = raw_login(srv, {"verbose": False})
    assert answer.startswith(VIOLATION), answer


def test_websocket_block_timeout(start_server):
    srv = start_server(config="authorization { user: u, password: p, timeout: 5 }\n"
                              "websocket { host: 127.0.0.1, port: -1, no_tls: true, authorization { timeout: 1 } }\n")
    s, head = raw_upgrade(srv)
    try:
        read_nats(s, b"\r\n")
        started = time.monotonic()
        got = read_nats(s, b"Authentication Timeout")
        assert b"-ERR 'Authentication Timeout'" in got, got
        assert time.monotonic() - started < 3.5
    finally:
        s.close()
