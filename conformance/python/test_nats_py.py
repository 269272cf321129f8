"""Client-visible behaviour through nats-py, the reference Python client."""

import asyncio
import functools

import nats
import pytest
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

USERS_CONFIG = """
authorization {
  users = [
    { user: alice, password: "wonder land" }
    { user: bob, password: b0bpass }
  ]
}
"""


def run(coro_fn):
    """Runs an async test body on a fresh event loop, bounded in time."""

    @functools.wraps(coro_fn)
    def wrapper(*args, **kwargs):
        asyncio.run(asyncio.wait_for(coro_fn(*args, **kwargs), timeout=30))

    return wrapper


async def connect(srv, **opts):
    errors = []

    async def on_error(e):
        errors.append(e)

    nc = await nats.connect(servers=[srv.client_url], allow_reconnect=False,
                            connect_timeout=5, error_cb=on_error, **opts)
    nc.test_errors = errors
    return nc


async def expect_refused(srv, **opts):
    errors = []

    async def on_error(e):
        errors.append(e)

    with pytest.raises(Exception) as info:
        nc = await nats.connect(servers=[srv.client_url], allow_reconnect=False,
                                max_reconnect_attempts=0, connect_timeout=5,
                                error_cb=on_error, **opts)
        await nc.close()
    seen = " ".join(str(e) for e in errors) + " " + str(info.value)
    assert "authorization violation" in seen.lower(), seen


async def round_trip(nc, subject="rt"):
    sub = await nc.subscribe(subject)
    await nc.publish(subject, b"ok")
    msg = await sub.next_msg(timeout=5)
    assert msg.data == b"ok"
    await sub.unsubscribe()


@run
async def test_info_fields(start_server):
    srv = start_server()
    nc = await connect(srv)
    info = nc._server_info
    for key, kind in [("server_id", str), ("server_name", str), ("version", str),
                      ("proto", int), ("host", str), ("port", int), ("headers", bool),
                      ("max_payload", int), ("client_id", int), ("client_ip", str)]:
        assert key in info, f"INFO lacks {key}: {info}"
        assert isinstance(info[key], kind), f"{key}={info[key]!r}"
    assert info["proto"] == 1
    assert info["headers"] is True
    assert info["max_payload"] == 1048576
    assert info["port"] == srv.port
    assert info["client_ip"] == "127.0.0.1"
    assert info.get("auth_required", False) is False
    assert nc.max_payload == 1048576
    await nc.close()


@run
async def test_auth_user_password_flags(start_server):
    srv = start_server(args=["--user", "derek", "--pass", "s3cr3t"])
    nc = await connect(srv, user="derek", password="s3cr3t")
    assert nc._server_info.get("auth_required") is True
    await round_trip(nc)
    await nc.close()
    await expect_refused(srv, user="derek", password="bad")
    await expect_refused(srv)


@run
async def test_auth_token_flag(start_server):
    srv = start_server(args=["--auth", "t0ken-abc"])
    nc = await connect(srv, token="t0ken-abc")
    await round_trip(nc)
    await nc.close()
    await expect_refused(srv, token="wrong")


@run
async def test_auth_users_config(start_server):
    srv = start_server(config=USERS_CONFIG)
    for user, password in [("alice", "wonder land"), ("bob", "b0bpass")]:
        nc = await connect(srv, user=user, password=password)
        await round_trip(nc)
        await nc.close()
    await expect_refused(srv, user="alice", password="b0bpass")


@run
async def test_pub_sub_across_connections(start_server):
    srv = start_server()
    sub_nc = await connect(srv)
    pub_nc = await connect(srv)
    sub = await sub_nc.subscribe("greet.joe")
    await sub_nc.flush()
    await pub_nc.publish("greet.joe", b"hello")
    await pub_nc.publish("greet.joe", b"")
    msg = await sub.next_msg(timeout=5)
    assert (msg.subject, msg.data) == ("greet.joe", b"hello")
    assert (await sub.next_msg(timeout=5)).data == b""
    await sub_nc.close()
    await pub_nc.close()


@run
async def test_wildcards(start_server):
    srv = start_server()
    nc = await connect(srv)
    star = await nc.subscribe("orders.*.created")
    full = await nc.subscribe("orders.>")
    await nc.flush()
    for subject in ["orders.eu.created", "orders.eu.x.created", "orders", "orders.us.created"]:
        await nc.publish(subject, subject.encode())
    await nc.flush()
    got_star = [(await star.next_msg(timeout=5)).subject for _ in range(2)]
    got_full = [(await full.next_msg(timeout=5)).subject for _ in range(3)]
    assert got_star == ["orders.eu.created", "orders.us.created"]
    assert got_full == ["orders.eu.created", "orders.eu.x.created", "orders.us.created"]
    with pytest.raises(NatsTimeout):
        await star.next_msg(timeout=0.2)
    await nc.close()


@run
async def test_queue_group_exactly_once(start_server):
    srv = start_server()
    members = []
    for _ in range(3):
        nc = await connect(srv)
        sub = await nc.subscribe("work", queue="workers")
        await nc.flush()
        members.append((nc, sub))
    pub = await connect(srv)
    for i in range(300):
        await pub.publish("work", str(i).encode())
    await pub.flush()
    seen = []
    counts = []
    for nc, sub in members:
        n = 0
        while True:
            try:
                msg = await sub.next_msg(timeout=0.3)
            except NatsTimeout:
                break
            seen.append(msg.data)
            n += 1
        counts.append(n)
    assert sum(counts) == 300, counts
    assert len(set(seen)) == 300
    assert sum(1 for c in counts if c) > 1, counts
    for nc, _ in members:
        await nc.close()
    await pub.close()


@run
async def test_request_reply(start_server):
    srv = start_server()
    responder = await connect(srv)

    async def echo(msg):
        await msg.respond(b"echo:" + msg.data)

    await responder.subscribe("svc.echo", cb=echo)
    await responder.flush()
    requester = await connect(srv)
    reply = await requester.request("svc.echo", b"ping", timeout=5)
    assert reply.data == b"echo:ping"
    await requester.close()
    await responder.close()


@run
async def test_headers_round_trip(start_server):
    srv = start_server()
    nc = await connect(srv)
    sub = await nc.subscribe("hdr")
    await nc.flush()
    await nc.publish("hdr", b"body", headers={"X-Trace": "abc-123", "X-Other": "v"})
    msg = await sub.next_msg(timeout=5)
    assert msg.data == b"body"
    assert msg.headers == {"X-Trace": "abc-123", "X-Other": "v"}
    await nc.close()


@run
async def test_no_responders(start_server):
    srv = start_server()
    nc = await connect(srv)
    with pytest.raises(NoRespondersError):
        await nc.request("nobody.home", b"x", timeout=5)
    await nc.close()


@run
async def test_auto_unsubscribe(start_server):
    srv = start_server()
    nc = await connect(srv)
    sub = await nc.subscribe("limited")
    await sub.unsubscribe(limit=3)
    await nc.flush()
    for i in range(10):
        await nc.publish("limited", str(i).encode())
    await nc.flush()
    got = []
    while True:
        try:
            got.append((await sub.next_msg(timeout=0.3)).data)
        except Exception:
            break
    assert got == [b"0", b"1", b"2"]
    await nc.close()


@run
async def test_echo_off(start_server):
    srv = start_server()
    quiet = await connect(srv, no_echo=True)
    other = await connect(srv)
    own = await quiet.subscribe("echo")
    theirs = await other.subscribe("echo")
    await quiet.flush()
    await other.flush()
    await quiet.publish("echo", b"from quiet")
    await quiet.flush()
    assert (await theirs.next_msg(timeout=5)).data == b"from quiet"
    with pytest.raises(NatsTimeout):
        await own.next_msg(timeout=0.3)
    await other.publish("echo", b"from other")
    assert (await own.next_msg(timeout=5)).data == b"from other"
    await quiet.close()
    await other.close()


@run
async def test_drain_delivers_pending_then_closes(start_server):
    srv = start_server()
    nc = await connect(srv)
    received = []

    async def slow(msg):
        await asyncio.sleep(0.002)
        received.append(msg.data)

    await nc.subscribe("drain.me", cb=slow)
    await nc.flush()
    pub = await connect(srv)
    for i in range(50):
        await pub.publish("drain.me", str(i).encode())
    await pub.flush()
    await asyncio.sleep(0.1)
    await nc.drain()
    assert nc.is_closed
    assert received == [str(i).encode() for i in range(50)]
    await pub.close()
