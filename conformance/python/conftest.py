"""pytest wiring: a ``server`` factory fixture that stops what it started."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from natrix_harness import Server  # noqa: E402


@pytest.fixture
def start_server():
    started = []

    def start(args=(), config=None, monitoring=False):
        srv = Server(args=args, config=config, monitoring=monitoring)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()
