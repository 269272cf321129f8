"""Config reload (C8), through nats-py: the config file is edited, the
server gets SIGHUP (or ``--signal reload``), and the clients see what
nats-server's clients see: a removed user is disconnected, narrowed
permissions stop deliveries and publishes, a new user can log in,
max_payload moves in INFO and /varz, and a change that cannot be reloaded
is refused with the old configuration still in force. Runs against natrix
or nats-server (NATRIX_SERVER=nats-server)."""

import asyncio
import json
import re
import subprocess
import urllib.request

import nats

from natrix_harness import binary
from test_nats_py import run


def users(*entries: str) -> str:
    return "authorization {\n  users = [\n" + "\n".join(f"    {e}" for e in entries) + "\n  ]\n}\n"


ALICE = "{ user: alice, password: a }"
BOB_ALL = "{ user: bob, password: b, permissions: { publish: \">\", subscribe: \">\" } }"
BOB_BAR = "{ user: bob, password: b, permissions: { publish: \"bar.>\", subscribe: \"bar.>\" } }"
CAROL = "{ user: carol, password: c }"


async def connect(srv, user, password, **opts):
    return await nats.connect(servers=[srv.client_url], user=user, password=password,
                              allow_reconnect=False, **opts)


async def wait_for(predicate, seconds=5.0):
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


@run
async def test_a_removed_user_is_disconnected_and_a_new_user_logs_in(start_server):
    srv = start_server(config=users(ALICE, BOB_ALL))
    closed = asyncio.Event()

    async def on_closed():
        closed.set()

    alice = await connect(srv, "alice", "a", closed_cb=on_closed)
    bob = await connect(srv, "bob", "b")
    assert srv.reload(users(BOB_ALL, CAROL)) == "reloaded"
    await asyncio.wait_for(closed.wait(), 5)
    assert alice.is_closed
    # The others stay, and the new user is let in; the removed one is not.
    assert bob.is_connected
    carol = await connect(srv, "carol", "c")
    await carol.flush()
    try:
        await connect(srv, "alice", "a")
    except Exception as e:  # nats-py raises its own error for the violation
        assert "authorization" in str(e).lower(), e
    else:
        raise AssertionError("a removed user logged in")
    await carol.close()
    await bob.close()


@run
async def test_a_changed_password_closes_the_connection(start_server):
    # On the wire this is `-ERR 'Authorization Violation'` (checked byte for
    # byte by the differential scenario reload_users); nats-py closes.
    srv = start_server(config=users(ALICE))
    alice = await connect(srv, "alice", "a")
    assert srv.reload(users("{ user: alice, password: other }")) == "reloaded"
    assert await wait_for(lambda: alice.is_closed), "the client stays connected"


@run
async def test_narrowed_permissions_stop_deliveries_and_publishes(start_server):
    srv = start_server(config=users(ALICE, BOB_ALL))
    errors = []

    async def on_error(e):
        errors.append(str(e))

    bob = await connect(srv, "bob", "b", error_cb=on_error)
    alice = await connect(srv, "alice", "a")
    got = []

    async def on_msg(m):
        got.append(m.subject)

    await bob.subscribe("foo.*", cb=on_msg)
    await bob.subscribe("bar.*", cb=on_msg)
    await bob.flush()
    await alice.publish("foo.1", b"before")
    await alice.flush()
    assert await wait_for(lambda: got == ["foo.1"]), got

    assert srv.reload(users(ALICE, BOB_BAR)) == "reloaded"
    assert await wait_for(lambda: any("subscription to \"foo.*\"" in e.lower() for e in errors)), errors
    for subject in ("foo.2", "bar.2", "foo.3"):
        await alice.publish(subject, b"after")
    await alice.flush()
    assert await wait_for(lambda: "bar.2" in got), got
    await bob.flush()
    assert got == ["foo.1", "bar.2"], "nothing delivered on the forbidden subscription"

    # Publishes are checked against the new rules.
    seen = []

    async def on_alice(m):
        seen.append(m.subject)

    await alice.subscribe("foo.>", cb=on_alice)
    await alice.flush()
    await bob.publish("foo.9", b"denied")
    await bob.flush()
    assert await wait_for(lambda: any("publish to \"foo.9\"" in e.lower() for e in errors)), errors
    await alice.flush()
    assert seen == [], seen
    assert bob.is_connected
    await bob.close()
    await alice.close()


@run
async def test_max_payload_moves_in_info_and_varz(start_server):
    srv = start_server(config="max_payload: 100000\n", monitoring=True)
    before = json.load(urllib.request.urlopen(srv.monitor_url + "/varz"))
    nc = await nats.connect(servers=[srv.client_url])
    assert nc.max_payload == 100000
    await nc.close()
    await asyncio.sleep(1.1)  # config_load_time has a resolution of a second or better
    assert srv.reload("max_payload: 2000\n") == "reloaded"
    nc = await nats.connect(servers=[srv.client_url])
    assert nc.max_payload == 2000
    await nc.close()
    after = json.load(urllib.request.urlopen(srv.monitor_url + "/varz"))
    assert after["max_payload"] == 2000
    assert after["config_load_time"] != before["config_load_time"]
    assert after["start"] == before["start"]


@run
async def test_an_unreloadable_change_is_refused_and_the_old_config_stays(start_server):
    srv = start_server(config=users(ALICE))
    alice = await connect(srv, "alice", "a")
    outcome = srv.reload("max_pending: 2000000\n" + users(CAROL))
    assert outcome == "config reload not supported for MaxPending: old=67108864, new=2000000", outcome
    # The new options are validated first, as a whole (natrix says where:
    # `server.conf:1:0: ` before nats-server's sentence).
    outcome = srv.reload("max_pending: 1000\n" + users(CAROL))
    assert outcome.endswith("max_payload (1048576) cannot be higher than max_pending (1000)"), outcome
    await alice.flush()
    assert alice.is_connected
    again = await connect(srv, "alice", "a")
    await again.flush()
    try:
        await connect(srv, "carol", "c")
    except Exception:
        pass
    else:
        raise AssertionError("a user of the refused config logged in")
    await again.close()
    await alice.close()


@run
async def test_signal_reload_with_a_pid_file(start_server, tmp_path):
    pid_file = tmp_path / "server.pid"
    srv = start_server(config=users(ALICE), args=["-P", str(pid_file)])
    for _ in range(100):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.02)
    with open(srv.config_path, "w") as f:
        f.write(users(ALICE, CAROL))
    done = subprocess.run([binary(srv.target), "--signal", f"reload={pid_file}"], capture_output=True, timeout=10)
    assert done.returncode == 0, done.stderr
    assert await wait_for(lambda: "Reloaded server configuration" in srv.log()), srv.log()
    carol = await connect(srv, "carol", "c")
    await carol.close()


@run
async def test_a_config_that_does_not_parse_is_refused_where_it_fails(start_server):
    srv = start_server(config=users(ALICE))
    outcome = srv.reload(users(ALICE) + "max_payload: {\n")
    if srv.target == "natrix":
        # natrix's file:line:column form, for a reload as at start-up.
        assert re.match(r".*server\.conf:\d+:\d+: ", outcome), outcome
    alice = await connect(srv, "alice", "a")
    await alice.close()
