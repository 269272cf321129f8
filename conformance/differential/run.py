#!/usr/bin/env python3
"""Differential runner: replay each scenario on two servers and diff the replies.

Usage: run.py [--a natrix] [--b nats-server] [--only NAME ...] [--report FILE]

Both servers are started fresh per scenario with the same flags and config.
Replies are recorded per step, normalised where the servers legitimately
differ (ids, names, versions, ports, nonces, timestamps), and compared.
Differences listed in allowlist.json (each with a reason) are accepted;
anything else fails the run. The last line is ``differential: N passed, M failed``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))

from natrix_harness import Server, StartError  # noqa: E402
from mqtt_scenarios import MQTT_SCENARIOS  # noqa: E402
from scenarios import SCENARIOS  # noqa: E402
from sys_scenarios import SYS_SCENARIOS  # noqa: E402

SCENARIOS = SCENARIOS + SYS_SCENARIOS

SCENARIOS = SCENARIOS + MQTT_SCENARIOS

# INFO values that differ between any two servers (or two runs of one).
NORMALISED_INFO_KEYS = {
    "server_id", "server_name", "version", "go", "git_commit", "host", "port",
    "client_id", "client_ip", "nonce", "xkey", "connect_urls", "ip",
}
IDLE_S = 0.3
SYNC_TIMEOUT_S = 5.0


class Conn:
    """A raw TCP client connection that keeps what it has not yet recorded."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.closed = False
        self.info_seen = False
        # INFO updates after the first one are sent asynchronously (e.g. the
        # "connect_info" INFO after CONNECT), so their position in the stream
        # is timing; they are compared as a list of their own.
        self.async_info: list[str] = []
        # The first INFO as JSON and every line kept so far, for "send_fn"
        # steps (a CONNECT signing the nonce, a reply to a received request).
        self.info: dict = {}
        self.seen: list[str] = []

    def _recv(self, timeout: float) -> bool:
        """Reads once; returns False on timeout. Marks EOF/reset as closed."""
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

    def read_info(self) -> list[str]:
        deadline = time.monotonic() + SYNC_TIMEOUT_S
        while b"\r\n" not in self.buf and not self.closed and time.monotonic() < deadline:
            self._recv(deadline - time.monotonic())
        line, sep, rest = self.buf.partition(b"\r\n")
        self.buf = rest
        if line.startswith(b"INFO "):
            try:
                self.info = json.loads(line[5:])
            except ValueError:
                pass
        return self._lines(line + sep)

    def read_idle(self) -> list[str]:
        while self._recv(IDLE_S):
            pass
        return self._take()

    def sync(self) -> list[str]:
        self.send(b"PING\r\n")
        deadline = time.monotonic() + SYNC_TIMEOUT_S
        while not self._has_pong() and not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                out = self._take()
                return out + ["<no PONG within %.0fs>" % SYNC_TIMEOUT_S]
            self._recv(left)
        return self._take()

    def _has_pong(self) -> bool:
        return self.buf.startswith(b"PONG\r\n") or b"\r\nPONG\r\n" in self.buf

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def _take(self) -> list[str]:
        data, self.buf = self.buf, b""
        return self._lines(data)

    def _lines(self, data: bytes) -> list[str]:
        lines = [l.decode("utf-8", "backslashreplace") for l in data.split(b"\r\n")]
        if lines and lines[-1] == "":
            lines.pop()
        kept = []
        for line in lines:
            if line.startswith("INFO ") and self.info_seen:
                self.async_info.append(line)
            elif line == "PING":
                # The server's own keep-alive PINGs come on a timer: not compared.
                continue
            else:
                self.info_seen = self.info_seen or line.startswith("INFO ")
                kept.append(line)
        lines = kept
        self.seen.extend(lines)
        if self.closed and not self.buf:
            lines.append("<closed>")
        return lines

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def normalise_line(line: str, scenario: dict, conn: str):
    """An INFO line becomes a dict with unstable values masked; others stay text."""
    if line.startswith("INFO "):
        try:
            info = json.loads(line[5:])
        except ValueError:
            return line
        return {"INFO": {k: (f"<{type_name(v)}>" if k in NORMALISED_INFO_KEYS else v)
                         for k, v in info.items()}}
    for pattern, repl in scenario.get("mask", []):
        line = re.sub(pattern, repl, line)
    if "json_payload_keys" in scenario and line.startswith("{"):
        # A JSON payload is compared as data: key order is free, and the
        # listed keys (e.g. the answering server's stamp) by type only.
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            masked = set(scenario["json_payload_keys"])
            return json.dumps({k: (f"<{type_name(v)}>" if k in masked else v) for k, v in doc.items()},
                              sort_keys=True)
    if scenario.get("json_shape") and line.startswith("{"):
        # A monitoring document: keys and value types only.
        try:
            return {"SHAPE": shape(json.loads(line))}
        except ValueError:
            pass
    if "json_volatile_keys" in scenario and line.startswith("{"):
        # A JSON payload (a JetStream API response) is compared as data:
        # key order is free, and the listed keys, wherever they are in the
        # document (timestamps, the leader's name), by JSON type only.
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            return {"JSON": mask_keys(doc, set(scenario["json_volatile_keys"]))}
    sids = scenario.get("normalise_sids", {}).get(conn)
    if sids and line.startswith(("MSG ", "HMSG ")):
        parts = line.split(" ")
        if len(parts) > 2 and parts[2] in sids:
            parts[2] = "<sid>"
            return " ".join(parts)
    return line


def mask_keys(v, keys: set):
    """`v` with the value of every key in `keys`, at any depth, replaced by its type."""
    if isinstance(v, dict):
        return {k: (f"<{type_name(x)}>" if k in keys else mask_keys(x, keys)) for k, x in v.items()}
    if isinstance(v, list):
        return [mask_keys(x, keys) for x in v]
    return v


def message_blocks(lines: list) -> list:
    """Groups lines into units: a MSG/HMSG line with its payload lines, or one line."""
    blocks, i = [], 0
    while i < len(lines):
        line = lines[i]
        block = [line]
        i += 1
        if isinstance(line, str) and line.startswith(("MSG ", "HMSG ")):
            try:
                size = int(line.split(" ")[-1])
            except ValueError:
                # A masked size (`<size>`): the payload is its one next line
                # (a JSON event, parsed already when normalised).
                if i < len(lines):
                    block.append(lines[i])
                    i += 1
                blocks.append(block)
                continue
            got = -2  # the first payload line has no preceding CRLF
            while i < len(lines) and got < size:
                got += len(lines[i].encode()) + 2 if isinstance(lines[i], str) else 0
                block.append(lines[i])
                i += 1
                if got >= size:
                    break
        blocks.append(block)
    return blocks


def canonical_order(lines: list, by_subject: bool = False) -> list:
    """Sorts messages by subscription id, keeping each subscription's order.

    NATS orders messages per subscription only; the interleaving of one
    publish fanned out to several subscriptions of a connection is free.
    With `by_subject`, messages of one subscription are sorted by subject
    too: for events the server publishes from independent sources (an
    account's connection count and a client's disconnect), whose order
    nats-server does not fix.
    """
    out, run = [], []
    for block in message_blocks(lines) + [None]:
        if block is not None and isinstance(block[0], str) and block[0].startswith(("MSG ", "HMSG ")):
            run.append(block)
            continue
        if by_subject:
            run.sort(key=lambda b: (b[0].split(" ")[2], b[0].split(" ")[1]))
        else:
            run.sort(key=lambda b: b[0].split(" ")[2])
        for b in run:
            out.extend(b)
        run = []
        if block is not None:
            out.extend(block)
    return out


def type_name(v) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if v is None:
        return "null"
    return "list" if isinstance(v, list) else "object"


def shape(v):
    """Keys and value types of a JSON document, recursively."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in sorted(v.items())}
    if isinstance(v, list):
        return ["list", shape(v[0])] if v else ["list"]
    return type_name(v)


def http_get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        body, status = e.read(), e.code
    except OSError as e:
        return {"status": f"<error {e}>"}
    try:
        doc = json.loads(body)
    except ValueError:
        return {"status": status, "body": "<not JSON>"}
    out = {"status": status, "shape": shape(doc)}
    if url.endswith("/healthz"):
        out["value"] = doc
    return out


def run_steps(srv: Server, scenario: dict) -> list:
    """Runs the scenario's steps against `srv`; returns the transcript."""
    conns: dict[str, Conn] = {}
    events = []
    try:
        for i, step in enumerate(scenario.get("steps", [])):
            op, args = step[0], step[1:]
            if op == "sleep":
                time.sleep(args[0])
                continue
            if op == "lame_duck":
                # SIGUSR2: the server enters lame duck mode (its clients'
                # INFO updates are what the following reads record).
                srv.proc.send_signal(signal.SIGUSR2)
                continue
            if op == "reload":
                # The outcome as the server logs it: "reloaded" or the refusal.
                events.append({"step": f"{i}:reload", "outcome": srv.reload(args[0])})
                continue
            name = args[0]
            if op == "open":
                conns[name] = Conn(srv.port)
                lines = conns[name].read_info()
            elif op == "send":
                conns[name].send(args[1])
                continue
            elif op == "send_fn":
                conns[name].send(args[1](conns[name]))
                continue
            elif op == "sync":
                lines = conns[name].sync()
            elif op == "read":
                lines = conns[name].read_idle()
            elif op == "close":
                conns.pop(name).close()
                continue
            else:
                raise ValueError(f"unknown step {op!r} in {scenario['name']}")
            events.append({"step": f"{i}:{op}:{name}",
                           "lines": canonical_order([normalise_line(l, scenario, name) for l in lines],
                                                    scenario.get("events_unordered", False))})
        for name, conn in conns.items():
            lines = conn.sync() if not conn.closed else []
            events.append({"step": f"end:{name}",
                           "lines": [normalise_line(l, scenario, name) for l in lines],
                           "async_info": [normalise_line(l, scenario, name) for l in conn.async_info]})
        for path in scenario.get("monitor", []):
            events.append({"step": f"GET {path}", "http": http_get(srv.monitor_url + path)})
    finally:
        for c in conns.values():
            c.close()
    return events


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record_mqtt(target: str, scenario: dict) -> list:
    """Runs an MQTT scenario (see mqtt_scenarios.py) on a fresh server."""
    import tempfile

    port = free_port()
    store = tempfile.mkdtemp(prefix="natrix-diff-mqtt-")
    config = (f'server_name: "mqtt-diff"\njetstream {{ store_dir: "{store}" }}\n'
              f'mqtt {{ listen: "127.0.0.1:{port}"\n{scenario.get("mqtt_block", "")}\n}}\n'
              f'{scenario.get("mqtt_config", "")}\n')
    try:
        srv = Server(target, config=config)
    except (StartError, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else repr(e)
        return [{"step": "start", "error": first}]
    try:
        deadline = time.monotonic() + SYNC_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        try:
            return [{"step": "run", "observations": scenario["run"](srv.port, port)}]
        except Exception as e:  # a scenario's failure is a difference, not a crash
            return [{"step": "run", "error": f"{type(e).__name__}: {e}"}]
    finally:
        srv.stop()


def record(target: str, scenario: dict) -> list:
    if "run" in scenario:
        return record_mqtt(target, scenario)
    try:
        srv = Server(target, args=scenario.get("args", ()), config=scenario.get("config"),
                     monitoring=bool(scenario.get("monitor")))
    except (StartError, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else repr(e)
        return [{"step": "start", "error": first}]
    try:
        return run_steps(srv, scenario)
    finally:
        srv.stop()


def diff(a, b, path: str, out: list) -> None:
    """Appends (path, a, b) for every place where a and b differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a:
                out.append((f"{path}.{k}", "<missing>", b[k]))
            elif k not in b:
                out.append((f"{path}.{k}", a[k], "<missing>"))
            else:
                diff(a[k], b[k], f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            if i >= len(a):
                out.append((f"{path}[{i}]", "<missing>", b[i]))
            elif i >= len(b):
                out.append((f"{path}[{i}]", a[i], "<missing>"))
            else:
                diff(a[i], b[i], f"{path}[{i}]", out)
    elif a != b or type_name(a) != type_name(b):
        out.append((path, a, b))


def compare(scenario: dict, ta: list, tb: list) -> list:
    out: list = []
    if len(ta) != len(tb):
        out.append(("events", f"{len(ta)} events", f"{len(tb)} events"))
    for ea, eb in zip(ta, tb):
        if ea.get("step") != eb.get("step"):
            out.append((f"{ea.get('step')}", ea, eb))
            continue
        diff({k: v for k, v in ea.items() if k != "step"},
             {k: v for k, v in eb.items() if k != "step"}, ea["step"], out)
    return out


def load_allowlist(path: Path) -> list[dict]:
    entries = json.loads(path.read_text())
    for e in entries:
        if not e.get("reason"):
            raise SystemExit(f"allowlist entry without a reason: {e}")
    return entries


def allowed(scenario: str, path: str, allowlist: list[dict]) -> dict | None:
    for e in allowlist:
        if fnmatch.fnmatchcase(scenario, e["scenario"]) and fnmatch.fnmatchcase(path, e["path"]):
            return e
    return None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", default="natrix", help="server under test (natrix)")
    p.add_argument("--b", default="nats-server", help="reference server (nats-server)")
    p.add_argument("--only", nargs="*", help="run only these scenarios")
    p.add_argument("--allowlist", default=str(HERE / "allowlist.json"))
    p.add_argument("--report", help="also write the JSON report here")
    p.add_argument("--show", action="store_true", help="print both transcripts of every scenario")
    opts = p.parse_args()
    allowlist = load_allowlist(Path(opts.allowlist))
    used = set()
    passed = failed = 0
    report = []
    printed: set = set()
    print(f"differential: {opts.a} (left) vs {opts.b} (right)")
    for sc in SCENARIOS:
        if opts.only and sc["name"] not in opts.only:
            continue
        ta, tb = record(opts.a, sc), record(opts.b, sc)
        diffs = compare(sc, ta, tb)
        bad = []
        for path, va, vb in diffs:
            entry = allowed(sc["name"], path, allowlist)
            if entry:
                used.add(id(entry))
            else:
                bad.append((path, va, vb))
        status = "FAIL" if bad else "ok"
        print(f"  {status:4} {sc['name']}" + (f"  ({len(diffs) - len(bad)} allowed)" if len(diffs) > len(bad) else ""))
        repeats = 0
        for path, va, vb in bad:
            # The same INFO difference shows on every connection of every
            # scenario: print it in full once per run, then only count it.
            key = (re.sub(r"^.*?\.(INFO\.|async_info)", r"\1", path), json.dumps(va), json.dumps(vb))
            if (".INFO." in path or ".async_info" in path) and key in printed:
                repeats += 1
                continue
            printed.add(key)
            print(f"         {path}\n           {opts.a}: {json.dumps(va)}\n           {opts.b}: {json.dumps(vb)}")
        if repeats:
            print(f"         (+ {repeats} INFO differences as shown above)")
        if opts.show:
            print(json.dumps({opts.a: ta, opts.b: tb}, indent=1))
        report.append({"scenario": sc["name"], "ok": not bad,
                       "differences": [{"path": x, opts.a: y, opts.b: z, "allowed": (x, y, z) not in bad}
                                       for x, y, z in diffs]})
        passed += not bad
        failed += bool(bad)
    for e in allowlist:
        if id(e) not in used and not opts.only:
            print(f"  note: allowlist entry no longer needed: {e['scenario']} {e['path']}")
    if opts.report:
        Path(opts.report).write_text(json.dumps(report, indent=1))
    print(f"differential: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
