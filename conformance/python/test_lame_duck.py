"""Lame duck mode (C7), through nats-py: the equivalent of nats-py's own
``test_lame_duck_callback`` (SIGUSR2 fires the client's lame_duck_mode_cb
and the client stays connected), then the eviction over the duration, the
process exiting, and ``--signal ldm=<pid file>``. Runs against natrix or
nats-server (NATRIX_SERVER=nats-server)."""

import asyncio
import os
import signal
import socket
import subprocess
import time

import nats

from natrix_harness import binary, target_from_env
from test_nats_py import run

LDM_CONFIG = "lame_duck_duration: 30s\nlame_duck_grace_period: 1s\n"


@run
async def test_lame_duck_callback(start_server):
    srv = start_server(config=LDM_CONFIG)
    fired = asyncio.get_running_loop().create_future()

    async def lame_duck_mode_cb():
        if not fired.done():
            fired.set_result(True)

    nc = await nats.connect(servers=[srv.client_url], allow_reconnect=False,
                            lame_duck_mode_cb=lame_duck_mode_cb)
    assert nc.is_connected
    srv.proc.send_signal(signal.SIGUSR2)
    await asyncio.wait_for(fired, 5)
    # No reconnect: the client decides what to do in the callback.
    assert nc.is_connected
    await nc.close()


@run
async def test_lame_duck_evicts_clients_then_exits(start_server):
    srv = start_server(config=LDM_CONFIG)
    closed = []
    clients = []
    for i in range(3):
        async def on_closed(i=i):
            closed.append((i, time.monotonic()))
        clients.append(await nats.connect(servers=[srv.client_url], allow_reconnect=False,
                                          closed_cb=on_closed))
    start = time.monotonic()
    srv.proc.send_signal(signal.SIGUSR2)
    await asyncio.sleep(0.5)
    assert not closed, "nobody is closed within the grace period"
    # New connections are refused at once.
    try:
        socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
    except ConnectionRefusedError:
        pass
    else:
        raise AssertionError("the listener still accepts in lame duck mode")
    deadline = time.monotonic() + 10
    while len(closed) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert len(closed) == 3, closed
    times = sorted(t - start for _, t in closed)
    assert times[0] >= 0.9, times
    # A share of (30 s - 1 s) / 3, capped at 1 s: half a second to a second apart.
    assert 0.45 <= times[1] - times[0] <= 1.2, times
    assert 0.45 <= times[2] - times[1] <= 1.2, times
    for _ in range(100):
        if srv.proc.poll() is not None:
            break
        await asyncio.sleep(0.05)
    assert srv.proc.poll() is not None, "the server exits once every client is gone"


def test_signal_ldm_with_a_pid_file(start_server, tmp_path):
    pid_file = tmp_path / "server.pid"
    srv = start_server(config=LDM_CONFIG, args=["-P", str(pid_file)])
    for _ in range(100):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        time.sleep(0.02)
    bin_ = binary(target_from_env())
    out = subprocess.run([bin_, "--signal", f"ldm={pid_file}"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    # No clients: the server leaves lame duck mode by exiting.
    srv.proc.wait(timeout=10)
    out = subprocess.run([bin_, "--signal", "ldm=/nonexistent/natrix.pid"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 1
    assert "invalid pid: /nonexistent/natrix.pid" in out.stderr, out.stderr
    out = subprocess.run([bin_, "--signal", "quit=999999999"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 1
    assert 'signal "quit" 999999999' in out.stderr, out.stderr
