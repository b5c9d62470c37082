"""The local stack as a client meets it: one `clm local` process on free ports, real HTTP, real CLI.

The stack runs once per test session (starting it costs seconds); tests keep out of each other's
way by using VINs and partners of their own. Its automatic sweep is switched off
(`CLM_SWEEP_SECONDS`), so only the tests' own `clm sweep` moves tasks.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import signed_headers

ROOT = Path(__file__).resolve().parents[2]
VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
# How long the suite waits for what must happen: generous, since polling returns as soon as it has.
# A busy 2-core machine (a CPU hog, another suite) makes seconds of what takes milliseconds alone.
PATIENCE = 60.0
STARTUP = 180.0  # `clm local` until `CLM ready` (imports, moto, provisioning), on a cold, busy machine
LAUNCH_TRIES = 3  # a free port can be taken between choosing it and the stack binding it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def new_vin(prefix: str = "LTEST") -> str:
    """A VIN nobody else in the session uses."""
    return prefix + "".join(secrets.choice(VIN_ALPHABET) for _ in range(17 - len(prefix)))


@dataclass
class Answer:
    """An HTTP answer as it came off the wire: status, raw header lines, body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    api_port: int
    aws_port: int
    workdir: Path
    env: dict[str, str]
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def credentials(self) -> dict[str, dict[str, str]]:
        loaded: dict[str, dict[str, str]] = json.loads(
            (self.workdir / ".clm" / "local-credentials.json").read_text()
        )
        return loaded

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "clm.cli", *args],
            cwd=self.workdir,
            env={**self.env, "CLM_AWS_ENDPOINT": f"http://127.0.0.1:{self.aws_port}"},
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def bare_cli(self, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        """`clm` as a second terminal runs it: no endpoint, no ports; it must find the stack itself."""
        plain = {
            k: v for k, v in self.env.items() if k not in ("CLM_AWS_PORT", "CLM_API_PORT", "CLM_AWS_ENDPOINT")
        }
        return subprocess.run(
            [sys.executable, "-m", "clm.cli", *args],
            cwd=cwd or self.workdir,
            env={**plain, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Answer:
        """One request over a fresh connection; the answer's header lines exactly as sent."""
        connection = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=PATIENCE)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Answer(response.status, list(response.getheaders()), response.read())
        finally:
            connection.close()

    def get(self, path: str, api_key: str) -> Answer:
        return self.request("GET", path, headers={"Authorization": f"Bearer {api_key}"})

    def post_event(
        self,
        partner_id: str,
        payload: Any,
        *,
        secret: str | None = None,
        webhook_id: str | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Answer:
        raw = body if body is not None else json.dumps(payload, ensure_ascii=False).encode()
        key = secret or self.credentials[partner_id]["webhook_secret"]
        msg_id = webhook_id or f"msg_{secrets.token_hex(8)}"
        sent = signed_headers(key, raw, msg_id, int(time.time()), content_type)
        sent.update(headers or {})
        return self.request("POST", f"/webhooks/{partner_id}", body=raw, headers=sent)

    def add_partner(self, partner_id: str, kind: str = "dealer") -> dict[str, str]:
        added: dict[str, str] = json.loads(self.cli("partner", "add", partner_id, "--kind", kind).stdout)
        return added

    def wait_for(self, probe: Any, timeout: float = PATIENCE, what: str = "the stack") -> Any:
        """Poll `probe()` until it returns something truthy, within `timeout` seconds of now."""
        deadline = time.monotonic() + timeout
        while True:
            found = probe()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not happen within {timeout} s")
            time.sleep(0.05)

    def outcome(self, partner_id: str, webhook_id: str, api_key: str) -> Answer:
        return self.get(f"/partners/{partner_id}/events/{webhook_id}", api_key)

    def settled_outcome(self, partner_id: str, webhook_id: str, api_key: str) -> dict[str, Any]:
        """The event's outcome once processing has decided (or parked) it."""

        def decided() -> dict[str, Any] | None:
            found: dict[str, Any] = self.outcome(partner_id, webhook_id, api_key).json()
            if found["outcome"] != "pending" or found["reason"] == "awaiting_delivery":
                return found
            return None

        result: dict[str, Any] = self.wait_for(decided, what=f"an outcome for {webhook_id}")
        return result


def port_free(port: int) -> bool:
    """As `clm local` checks it (SO_REUSEADDR: a port in TIME_WAIT is free)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class PortTaken(Exception):
    """The stack could not bind a port chosen for it."""


def launch(workdir: Path, *args: str, ports: tuple[int, int] | None = None) -> RunningStack:
    """`clm local` in `workdir` on free ports (or the given ones), once it printed `CLM ready`.

    Free ports are chosen before the stack binds them, so another process may take one meanwhile:
    a start that fails on a taken port is tried again on new ones. Given ports (a restart) are
    waited for until free: the embedded AWS of a stack killed just before may still hold its own."""
    if ports is not None:
        deadline = time.monotonic() + PATIENCE
        while not all(port_free(port) for port in ports):
            assert time.monotonic() < deadline, f"ports {ports} still taken after {PATIENCE} s"
            time.sleep(0.1)
        return _launch_once(workdir, args, ports)
    for attempt in range(LAUNCH_TRIES):
        try:
            return _launch_once(workdir, args, (free_port(), free_port()))
        except PortTaken:
            if attempt == LAUNCH_TRIES - 1:
                raise
    raise AssertionError("unreachable")


def _launch_once(workdir: Path, args: tuple[str, ...], ports: tuple[int, int]) -> RunningStack:
    aws_port, api_port = ports
    env = {
        **os.environ,
        "CLM_AWS_PORT": str(aws_port),
        "CLM_API_PORT": str(api_port),
        "CLM_SWEEP_SECONDS": "86400",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(ROOT),
    }
    for name in (
        "AWS_ENDPOINT_URL",
        "CLM_STAGE",
        "CLM_CREDENTIALS",  # the stack keeps its state in `workdir/.clm`, where the tests look
        "CLM_AWS_ENDPOINT",
        "CLM_API_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "clm.cli", "local", *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a crash test can kill the stack and its AWS
    )
    running = RunningStack(process, api_port, aws_port, workdir, env)
    ready = threading.Event()

    def read() -> None:  # all along (logs, EMF metrics), so a full pipe never blocks the stack
        assert process.stdout is not None
        for line in process.stdout:
            running.output.append(line)
            if "CLM ready" in line:
                ready.set()

    running.reader = threading.Thread(target=read, daemon=True)
    running.reader.start()
    deadline = time.monotonic() + STARTUP
    while not ready.wait(0.1):
        if process.poll() is not None or time.monotonic() > deadline:
            _kill(running)  # never leave a half-started stack (and its embedded AWS) holding ports
            out = "".join(running.output)
            if "in use" in out or "did not start on port" in out or "Address already in use" in out:
                raise PortTaken(out[-2000:])
            pytest.fail(f"the stack was not ready within {STARTUP} s:\n{out[-5000:]}")
    return running


def _kill(running: RunningStack) -> None:
    """The stack's whole process group at once (the stack and its embedded AWS), and wait for it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(running.process.pid, signal.SIGKILL)
    running.process.wait(timeout=PATIENCE)
    if running.reader is not None:
        running.reader.join(timeout=5)


def stop(running: RunningStack) -> None:
    """Ctrl-C, as a person stops `make run`; it must stop cleanly."""
    running.process.send_signal(signal.SIGINT)
    try:
        running.process.wait(timeout=PATIENCE)
    except subprocess.TimeoutExpired:
        _kill(running)
        raise
    if running.reader is not None:
        running.reader.join(timeout=5)
    out = "".join(running.output)
    assert running.process.returncode == 0, out[-5000:]
    assert "CLM stopped" in out


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = launch(tmp_path_factory.mktemp("stack"))
    try:
        yield running
    finally:
        stop(running)


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make package`'s output for STAGE=dev, built once per run: the directory holding `sam.json`
    and `deployment.zip` (Chalice's zip after `clm.package`).

    Chalice builds in the checkout (its dependency cache in `.chalice/deployments`), so two builds
    at once would spoil each other's zip: under `pytest -n` the first worker to ask builds it,
    under a lock, where the others find it."""
    import fcntl

    from clm import package

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # every worker's base temp is under the run's
    out = shared / "packaged" / "dist"
    with open(shared / "packaged.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "built").exists():
            package.build(out, stage="dev")
            (out / "built").touch()
    return out
