"""How `clm` finds the local stack running here (`.clm/local-stack.json`), and what is no stack."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from clm.local.stack import STACK_FILE, running_stack


@pytest.fixture
def bound() -> Iterator[socket.socket]:
    """A port of the test's own that takes no connections (bound, never listening): nobody else gets it."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held


def announce(state_dir: Path, pid: int, api_port: int) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    where = {
        "api_url": f"http://127.0.0.1:{api_port}",
        "aws_endpoint": "http://127.0.0.1:1",
        "credentials": str(state_dir / "local-credentials.json"),
        "pid": pid,
    }
    (state_dir / STACK_FILE).write_text(json.dumps(where))


def test_a_stack_whose_process_runs_and_whose_api_listens_is_found(tmp_path: Path) -> None:
    with socket.socket() as api:
        api.bind(("127.0.0.1", 0))
        api.listen()
        port = api.getsockname()[1]
        announce(tmp_path, os.getpid(), port)
        found = running_stack(tmp_path)
    assert found is not None and found["api_url"] == f"http://127.0.0.1:{port}"


def test_a_killed_stack_s_file_is_no_stack_even_when_its_pid_was_given_to_another_process(
    tmp_path: Path, bound: socket.socket
) -> None:
    announce(tmp_path, os.getpid(), bound.getsockname()[1])  # a live pid: this process, not a stack
    assert running_stack(tmp_path) is None


def test_a_stack_whose_process_is_gone_is_no_stack(tmp_path: Path, bound: socket.socket) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    announce(tmp_path, gone.pid, bound.getsockname()[1])
    assert running_stack(tmp_path) is None
    assert running_stack(tmp_path / "nothing-here") is None


def test_clm_in_the_tests_never_finds_a_stack_announced_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `make run` in this checkout (or another session's stack) must not take the tests' commands."""
    from clm import cli

    with socket.socket() as api:
        api.bind(("127.0.0.1", 0))
        api.listen()
        announce(tmp_path / ".clm", os.getpid(), api.getsockname()[1])
        monkeypatch.chdir(tmp_path)
        assert running_stack(Path(".clm")) is not None  # what `clm` would find here by default
        assert cli._local_stack() is None and cli._local_endpoint() is None
