"""A reader that never reads is cut; a healthy reader beside it is not.

With ``max_pending: 65536`` and ``write_deadline: "500ms"``, one publisher
sends 2,000 × 4 KiB messages to a subject with two subscribers: a raw
socket that never reads after subscribing, and a nats-py client reading
as fast as it can. The server must slow the publisher down (back-pressure)
rather than let the healthy reader's pending bytes cross ``max_pending``:
only the stalled reader is cut, and the healthy one receives everything.
"""

import asyncio
import json
import socket
import urllib.request

import functools

import nats

MESSAGES = 2000
PAYLOAD = b"x" * 4096


def run(coro_fn):
    @functools.wraps(coro_fn)
    def wrapper(*args, **kwargs):
        asyncio.run(asyncio.wait_for(coro_fn(*args, **kwargs), timeout=90))

    return wrapper


CONFIG = 'max_pending: 65536\nmax_payload: 65536\nwrite_deadline: "500ms"\n'


def closed_connections(srv):
    with urllib.request.urlopen(f"{srv.monitor_url}/connz?state=closed", timeout=5) as r:
        return json.load(r)["connections"]


def open_connections(srv):
    with urllib.request.urlopen(f"{srv.monitor_url}/connz", timeout=5) as r:
        return json.load(r)["connections"]


def never_reading_subscriber(srv, subject):
    sock = socket.create_connection((srv.host, srv.port))
    # A small receive buffer, so the kernel does not absorb the whole stream.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.recv(4096)  # INFO
    sock.sendall(b'CONNECT {"verbose":false,"name":"stalled"}\r\nSUB ' + subject.encode() + b" 1\r\nPING\r\n")
    buf = b""
    while b"PONG" not in buf:
        buf += sock.recv(4096)
    return sock


@run
async def test_only_the_reader_that_never_reads_is_cut(start_server):
    srv = start_server(config=CONFIG, monitoring=True)
    stalled = never_reading_subscriber(srv, "firehose")
    healthy = await nats.connect(srv.client_url, name="healthy", pending_size=64 * 1024 * 1024)
    received = 0
    done = asyncio.Event()

    async def on_msg(msg):
        nonlocal received
        received += 1
        if received == MESSAGES:
            done.set()

    await healthy.subscribe("firehose", cb=on_msg, pending_msgs_limit=MESSAGES * 2,
                            pending_bytes_limit=64 * 1024 * 1024)
    await healthy.flush()
    publisher = await nats.connect(srv.client_url, name="publisher")
    try:
        for _ in range(MESSAGES):
            await publisher.publish("firehose", PAYLOAD)
        await publisher.flush(timeout=30)
        try:
            await asyncio.wait_for(done.wait(), timeout=30)
        except asyncio.TimeoutError:
            pass
        assert received == MESSAGES, (received, closed_connections(srv))
        assert healthy.is_connected
        names = {c.get("name") for c in open_connections(srv)}
        assert {"healthy", "publisher"} <= names, names
        for _ in range(100):
            closed = [c for c in closed_connections(srv) if c.get("name") == "stalled"]
            if closed:
                break
            await asyncio.sleep(0.1)
        assert closed, "the reader that never reads was not cut"
        assert closed[0]["reason"] in ("Slow Consumer (Pending Bytes)", "Slow Consumer (Write Deadline)"), closed[0]
        assert not [c for c in closed_connections(srv) if c.get("name") == "healthy"]
    finally:
        stalled.close()
        await publisher.close()
        await healthy.close()
