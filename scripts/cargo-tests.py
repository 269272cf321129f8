#!/usr/bin/env python3
"""Runs the workspace's test executables, grouped by kind, from one build.

`cargo test -p X` and `cargo test --exclude X` select different packages, so
cargo unifies dependency features differently and rebuilds half the
dependency tree for each. Instead the caller builds every test target once
(`cargo test --workspace --no-run --message-format=json`) and this script runs
the executables that build produced, the way cargo would (cwd and
CARGO_MANIFEST_DIR set to the package), summing results per kind.

usage: cargo-tests.py BUILD_JSON LOG_DIR CONFORMANCE_PACKAGE
prints one line per kind: "<kind>\t<passed>\t<failed>"
"""

import json
import os
import re
import subprocess
import sys

RESULT = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed")


def package_name(package_id):
    """`path+file:///w/conformance#natrix-conformance@0.1.0` -> natrix-conformance;
    `path+file:///w/natrix-sim#0.1.0` (name = directory) -> natrix-sim."""
    location, _, fragment = package_id.partition("#")
    if "@" in fragment:
        return fragment.split("@")[0]
    return location.rstrip("/").split("/")[-1]


def executables(build_json):
    with open(build_json, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.startswith("{"):
                continue
            msg = json.loads(line)
            if msg.get("reason") == "compiler-artifact" and msg.get("profile", {}).get("test") and msg.get("executable"):
                yield package_name(msg["package_id"]), msg["target"]["name"], msg["executable"], os.path.dirname(msg["manifest_path"])


def main():
    build_json, log_dir, conformance = sys.argv[1:4]
    totals = {}
    for package, target, exe, pkg_dir in executables(build_json):
        kind = "rust/async-nats" if package == conformance else "rust/workspace tests"
        env = dict(os.environ, CARGO_MANIFEST_DIR=pkg_dir, CARGO_PKG_NAME=package)
        log = os.path.join(log_dir, f"test-{package}-{target}.log")
        try:
            proc = subprocess.run([exe], cwd=pkg_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
            out, rc = proc.stdout.decode(errors="replace"), proc.returncode
        except subprocess.TimeoutExpired as e:
            out, rc = (e.stdout or b"").decode(errors="replace") + "\n[timed out after 900 s]\n", -1
        with open(log, "w", encoding="utf-8") as f:
            f.write(out)
        passed = failed = 0
        for line in out.splitlines():
            m = RESULT.match(line)
            if m:
                passed, failed = passed + int(m.group(1)), failed + int(m.group(2))
        if rc != 0 and failed == 0:
            failed = 1
        status = "ok" if rc == 0 else "FAILED"
        print(f"  {status:6} {package}::{target}: {passed} passed, {failed} failed", file=sys.stderr)
        if rc != 0:
            tail = [l for l in out.splitlines() if l.startswith(("test ", "thread ", "failures:")) or "panicked" in l]
            for l in (tail or out.splitlines())[-25:]:
                print(f"         {l}", file=sys.stderr)
        p, f = totals.get(kind, (0, 0))
        totals[kind] = (p + passed, f + failed)
    for kind, (p, f) in totals.items():
        print(f"{kind}\t{p}\t{f}")


if __name__ == "__main__":
    main()
