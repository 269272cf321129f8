"""Start natrix or nats-server as a process for a test, and stop it after.

The server listens on 127.0.0.1 with ``-p -1 --ports_file_dir DIR``; the
harness waits for the ``*.ports`` JSON file the server writes into DIR and
reads the client (``nats``) and ``monitoring`` URLs from it.

``NATRIX_SERVER=natrix|nats-server`` picks the target (default natrix);
``NATRIX_BIN`` and ``NATS_SERVER_BIN`` override the binaries' paths.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGETS = ("natrix", "nats-server")
STARTUP_TIMEOUT_S = 15.0


class StartError(RuntimeError):
    """The server did not come up; the message carries its log."""


def target_from_env() -> str:
    target = os.environ.get("NATRIX_SERVER", "") or "natrix"
    if target not in TARGETS:
        raise ValueError(f"NATRIX_SERVER={target!r}: expected one of {TARGETS}")
    return target


def binary(target: str) -> str:
    if target == "natrix":
        return os.environ.get("NATRIX_BIN") or str(REPO / "target" / "debug" / "natrix")
    override = os.environ.get("NATS_SERVER_BIN")
    if override:
        return override
    venv = REPO / ".venv" / "bin" / "nats-server"
    if venv.exists():
        return str(venv)
    return shutil.which("nats-server") or "nats-server"


class Server:
    """A running server; use as a context manager or call ``stop()``."""

    def __init__(self, target: str | None = None, args=(), config: str | None = None,
                 monitoring: bool = False):
        self.target = target or target_from_env()
        self._dir = tempfile.mkdtemp(prefix=f"natrix-conf-{self.target}-")
        ports_dir = os.path.join(self._dir, "ports")
        os.mkdir(ports_dir)
        cmd = [binary(self.target), "-a", "127.0.0.1", "-p", "-1", "--ports_file_dir", ports_dir]
        if monitoring:
            cmd += ["-m", "-1"]
        # The config file, which a test may rewrite before a reload.
        self.config_path = None
        if config is not None:
            conf = os.path.join(self._dir, "server.conf")
            self.config_path = conf
            with open(conf, "w") as f:
                f.write(config)
            cmd += ["-c", conf]
        cmd += list(args)
        self.cmd = cmd
        self._log_path = os.path.join(self._dir, "server.log")
        log = open(self._log_path, "wb")
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self._dir)
        except OSError as e:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise StartError(f"cannot run {cmd[0]}: {e} (build it with `cargo build -p natrix`"
                             " or set NATRIX_SERVER=nats-server)") from e
        finally:
            log.close()
        try:
            ports = self._wait_for_ports(ports_dir)
        except BaseException:
            self.stop()
            raise
        self.client_url = ports["nats"][0]
        self.port = int(self.client_url.rsplit(":", 1)[1])
        self.host = "127.0.0.1"
        mon = ports.get("monitoring") or []
        self.monitor_url = mon[0] if mon else None
        ws = ports.get("websocket") or []
        self.ws_url = ws[0] if ws else None

    def _wait_for_ports(self, ports_dir: str) -> dict:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            for name in os.listdir(ports_dir):
                if name.endswith(".ports"):
                    try:
                        with open(os.path.join(ports_dir, name)) as f:
                            return json.load(f)
                    except (OSError, ValueError):
                        pass  # half-written; try again
            code = self.proc.poll()
            if code is not None:
                raise StartError(f"{self.target} exited early with {code}: {self.cmd}\n{self.log()}")
            if time.monotonic() > deadline:
                raise StartError(f"{self.target}: no ports file after {STARTUP_TIMEOUT_S}s\n{self.log()}")
            time.sleep(0.02)

    def reload(self, config: str, timeout: float = 5.0) -> str:
        """Rewrites the config file, sends SIGHUP, and waits for the server
        to log the outcome: returns "reloaded" or the refusal's reason."""
        if self.config_path is None:
            raise ValueError("reload needs a server started with a config")
        done = ("Reloaded server configuration", "Failed to reload server configuration: ")
        before = [self.log().count(d) for d in done]
        with open(self.config_path, "w") as f:
            f.write(config)
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if log.count(done[0]) > before[0]:
                return "reloaded"
            if log.count(done[1]) > before[1]:
                last = log.rsplit(done[1], 1)[1]
                return last.splitlines()[0] if last else ""
            time.sleep(0.02)
        raise TimeoutError(f"{self.target}: no reload outcome logged after {timeout}s\n{self.log()}")

    def log(self) -> str:
        try:
            with open(self._log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
