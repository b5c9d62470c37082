"""The README's walk-through does what it says: every command in it, run in order against a fresh stack."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import PATIENCE, ROOT, launch, stop

pytestmark = pytest.mark.e2e

READS = {
    "event",
    "tasks",
    "vehicle",
    "customer",
    "info",
    "kpis",
    "partner list",
    "dlq",
}  # polled until they show it ("within 2 s" is the claim; a busy machine gets PATIENCE)


def walk_through() -> list[tuple[list[str], list[str]]]:
    """The walk-through's `clm` commands, each with the parts of output its `# →` line promises."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Walk-through (local stack)", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    steps: list[tuple[list[str], list[str]]] = []
    for line in block.splitlines():
        if line.startswith(".venv/bin/clm "):
            steps.append((shlex.split(line, comments=True)[1:], []))
        elif line.startswith("# → "):
            assert steps, "an expectation before any command"
            steps[-1][1].extend(part.strip() for part in line[len("# → ") :].split("…"))
        else:
            assert line.startswith("make run") or not line.strip(), (
                f"a walk-through line the test cannot run: {line}"
            )
    return steps


def shows(output: str, parts: list[str]) -> bool:
    """Every promised part, in order."""
    at = 0
    for part in parts:
        found = output.find(part, at)
        if found < 0:
            return False
        at = found + len(part)
    return True


def watch_until(command: list[str], env: dict[str, str], promised: list[str]) -> str:
    """`clm watch`'s output once it shows every promised part (or PATIENCE passed), after Ctrl-C."""
    watcher = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert watcher.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(watcher.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    deadline = time.monotonic() + PATIENCE
    try:
        while not shows("".join(lines), promised) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        watcher.send_signal(2)
        watcher.wait(timeout=PATIENCE)
        reader.join(timeout=5)
    return "".join(lines)


def test_the_walk_through_does_what_the_readme_says(tmp_path: Path) -> None:
    steps = walk_through()
    assert len(steps) >= 15
    stack = launch(tmp_path)
    env = {
        k: v for k, v in stack.env.items() if k not in ("CLM_AWS_PORT", "CLM_API_PORT", "CLM_AWS_ENDPOINT")
    }
    env["CLM_CREDENTIALS"] = str(tmp_path / ".clm" / "local-credentials.json")  # as if run in the project
    try:
        for args, promised in steps:
            command = [sys.executable, "-m", "clm.cli", *args]
            if args[0] == "watch":  # runs until Ctrl-C: read what it prints until it showed all, then stop it
                output = watch_until(command, env, promised)
                assert shows(output, promised), (args, promised, output[-3000:])
                continue
            deadline = time.monotonic() + (PATIENCE if args[0] in READS else 0)
            while True:
                done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
                if done.returncode == 0 and shows(done.stdout, promised):
                    break
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"`clm {shlex.join(args)}` did not show {promised}:\n{done.stdout}{done.stderr}"
                    )
                time.sleep(0.2)
    finally:
        stop(stack)
    assert os.path.exists(tmp_path / ".clm" / "aws-state.pickle")  # and what it did was kept
