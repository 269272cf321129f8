"""MQTT with Debian's mosquitto-clients (mosquitto_pub, mosquitto_sub): QoS 0
and 1, retained messages, a persistent session across a server restart,
will messages, MQTT <-> NATS both ways and refused credentials. Runs
against natrix and, with NATRIX_SERVER=nats-server, nats-server 2.15.1.
scripts/test installs mosquitto-clients; without it these tests skip."""

import asyncio
import queue
import shutil
import subprocess
import threading
import time

import nats
import pytest

from test_mqtt import broker, connected  # noqa: F401  (the fixture)

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto_pub") is None or shutil.which("mosquitto_sub") is None,
    reason="mosquitto-clients is not installed (apt-get install mosquitto-clients)",
)

WAIT_S = 10


def pub(port, topic, message, *args):
    """mosquitto_pub; returns the finished process."""
    cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-m", message, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=WAIT_S)


class Sub:
    """A mosquitto_sub in the background, started once it has its SUBACK.
    Its output is line-buffered (stdbuf) and read by a thread, so a wait
    has a deadline."""

    def __init__(self, port, topic, *args):
        cmd = ["stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-d", "-v", *args]
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.debug = []
        while True:
            line = self._next()
            self.debug.append(line)
            if "received SUBACK" in line:
                return

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _next(self):
        try:
            line = self.lines.get(timeout=WAIT_S)
        except queue.Empty:
            raise AssertionError(f"mosquitto_sub said nothing more: {self.debug}") from None
        assert line is not None, f"mosquitto_sub ended: {self.debug}"
        return line

    def messages(self, n):
        """The next `n` "topic payload" lines, debug lines skipped."""
        out = []
        while len(out) < n:
            line = self._next()
            if line.startswith(("Client ", "Subscribed (mid")):
                self.debug.append(line)
            else:
                out.append(line)
        return out

    def stop(self):
        self.p.kill()
        self.p.wait()


def test_qos0_and_qos1(broker):  # noqa: F811
    b = broker()
    sub = Sub(b.port, "m/#", "-q", "1")
    assert pub(b.port, "m/zero", "at most once", "-q", "0").returncode == 0
    done = pub(b.port, "m/one", "at least once", "-q", "1", "-d")
    assert done.returncode == 0 and "received PUBACK" in done.stdout, done.stdout
    assert sorted(sub.messages(2)) == ["m/one at least once", "m/zero at most once"]
    sub.stop()


def test_retained_messages(broker):  # noqa: F811
    b = broker()
    assert pub(b.port, "r/x", "kept", "-q", "1", "-r").returncode == 0
    got = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(b.port), "-t", "r/#", "-v", "-C", "1",
                          "-W", str(WAIT_S)], capture_output=True, text=True, timeout=WAIT_S + 5)
    assert got.stdout == "r/x kept\n", (got.stdout, got.stderr)
    # An empty retained message clears it: nothing comes.
    assert pub(b.port, "r/x", "", "-q", "1", "-r").returncode == 0
    got = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(b.port), "-t", "r/#", "-v", "-C", "1",
                          "-W", "1"], capture_output=True, text=True, timeout=WAIT_S)
    assert got.stdout == "", got.stdout


def test_persistent_session_across_a_restart(broker):  # noqa: F811
    b = broker()
    session = ["-c", "-i", "mosq-persist", "-q", "1"]
    made = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(b.port), "-t", "p/t", "-E", *session],
                          capture_output=True, text=True, timeout=WAIT_S)
    assert made.returncode == 0, made.stderr
    assert pub(b.port, "p/t", "while away", "-q", "1").returncode == 0
    b.restart()
    got = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(b.port), "-t", "p/t", "-v", "-C", "1",
                          "-W", str(WAIT_S), *session], capture_output=True, text=True, timeout=WAIT_S + 5)
    assert got.stdout == "p/t while away\n", (got.stdout, got.stderr)


def test_will_message(broker):  # noqa: F811
    b = broker()
    watcher = Sub(b.port, "wills/#", "-q", "1")
    dev = Sub(b.port, "dev/cmd", "-i", "mosq-dev", "--will-topic", "wills/mosq-dev", "--will-payload", "gone",
              "--will-qos", "1", "-k", "5")
    dev.stop()  # SIGKILL: no DISCONNECT, so the will goes out
    assert watcher.messages(1) == ["wills/mosq-dev gone"]
    watcher.stop()


def test_mqtt_and_nats_both_ways(broker):  # noqa: F811
    b = broker()
    sub = Sub(b.port, "to/mosq/+")

    async def scenario():
        nc = await nats.connect(b.srv.client_url)
        got = await nc.subscribe("from.mosq.>")
        await nc.flush()
        assert pub(b.port, "from/mosq/dev1", "hello nats", "-q", "1").returncode == 0
        msg = await got.next_msg(timeout=WAIT_S)
        assert (msg.subject, msg.data) == ("from.mosq.dev1", b"hello nats")
        await nc.publish("to.mosq.cmd", b"hello mosquitto")
        await nc.flush()
        await nc.close()

    asyncio.run(scenario())
    assert sub.messages(1) == ["to/mosq/cmd hello mosquitto"]
    sub.stop()


def test_bad_credentials_are_refused(broker):  # noqa: F811
    b = broker(extra="authorization { users: [{user: dev, password: secret}] }")
    bad = pub(b.port, "x", "y", "-u", "dev", "-P", "wrong")
    assert bad.returncode != 0
    assert "not authorised" in (bad.stderr + bad.stdout).lower(), (bad.stdout, bad.stderr)
    assert pub(b.port, "x", "y", "-u", "dev", "-P", "secret").returncode == 0
