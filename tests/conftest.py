"""Shared fixtures. Environment read at import time is set here, before any app module loads."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

# What the machine's shell or ~/.aws may carry (a stack's CLM_AWS_ENDPOINT or CLM_API_PORT, a profile,
# an endpoint_url in ~/.aws/config, retry settings, moto's server mode) would point the tests at
# whatever runs there: every run starts from the same environment. Only the tests' own knobs stay.
_KEPT = ("CLM_FUZZ_", "CLM_FAULT_", "CLM_FIGURES_DIR", "AWS_CA_BUNDLE")
for _name in [n for n in os.environ if n.startswith(("CLM_", "AWS_", "POWERTOOLS_", "MOTO_"))]:
    if not _name.startswith(_KEPT):
        del os.environ[_name]
os.environ.pop("TEST_SERVER_MODE", None)
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "cn-north-1",
        "AWS_REGION": "cn-north-1",
        "AWS_CONFIG_FILE": os.devnull,  # never the developer's profiles, regions or endpoints
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "CLM_STAGE": "test",
        "POWERTOOLS_METRICS_NAMESPACE": "CLM",
        "POWERTOOLS_SERVICE_NAME": "clm",
    }
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "events"
SHARED_EVENTS = ROOT.parent / "shared" / "events"
NOW = datetime(2026, 11, 20, 2, 5, tzinfo=UTC)


FIGURES = "CLM_FIGURES_DIR"


def pytest_configure(config: pytest.Config) -> None:
    """A directory for the figures tests report (`show_figures`), made by the process that prints
    the summary; `pytest -n` workers inherit its name."""
    if not os.environ.get(FIGURES):
        import tempfile

        os.environ[FIGURES] = tempfile.mkdtemp(prefix="clm-figures-")


def show_figures(name: str, lines: list[str]) -> None:
    """Figures a test measured (the fault and fuzz counts), shown at the end of the run, passed or
    failed: a worker's own output never reaches the terminal under `pytest -n`."""
    Path(os.environ[FIGURES], f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    import shutil

    folder = Path(os.environ[FIGURES])
    found = sorted(folder.glob("*.txt"))
    if found:
        terminalreporter.section("figures")
        for path in found:
            terminalreporter.write(path.read_text(encoding="utf-8"))
    shutil.rmtree(folder, ignore_errors=True)


def example(event_type: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / f"{event_type}.json").read_text())
    return loaded


def reset_process_state() -> None:
    """Forget every cached client, binding and partner: each test gets a clean process."""
    from chalicelib import runtime

    runtime.reset()


def pin_both(instant: datetime | None) -> None:
    """Move business and housekeeping time together (as the real world does)."""
    from chalicelib import clock

    clock.pin(instant)
    clock.pin_system(instant)


_state_dirs = itertools.count()


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Each test sees the same process environment, whatever ran before it or beside it.

    `clm` run in-process finds a local stack through `.clm/` in the working directory: a `make run`
    in this checkout (or one killed there, whose pid came back) would take the test's commands.
    CLM_CREDENTIALS points it at a directory of the test's own, where no stack ever announces
    itself. What a test changes in os.environ without monkeypatch (the CLI sets AWS_ENDPOINT_URL
    when it finds a stack) is undone, and the settings built from it forgotten.
    """
    state = tmp_path_factory.getbasetemp() / "clm-state" / str(next(_state_dirs))
    monkeypatch.setenv("CLM_CREDENTIALS", str(state / "local-credentials.json"))
    before = dict(os.environ)
    yield
    if dict(os.environ) != before:
        os.environ.clear()
        os.environ.update(before)
        reset_process_state()


@pytest.fixture
def clock_at() -> Iterator[Any]:
    """Pin both clocks (default NOW); the fixture returns a setter for moving them."""
    pin_both(NOW)
    yield pin_both
    pin_both(None)


@pytest.fixture
def aws_stack(clock_at: Any) -> Iterator[dict[str, str]]:
    """A mocked AWS account with the stage's resources created from `infra/`."""
    from moto import mock_aws

    from clm.local.moto_speedups import (
        atomic_dynamodb,
        fast_responses,
        fast_transactions,
        shared_symmetric_keys,
    )

    atomic_dynamodb()  # each request atomic, as on DynamoDB (moto has no locks)
    fast_responses()  # as the local stack answers (checked against moto's own serializer when asked)
    fast_transactions()  # as the local stack writes them (checked against moto's own in its test)
    shared_symmetric_keys()  # no RSA key pair made for each test's KMS key
    with mock_aws():
        reset_process_state()
        from clm.local.provision import provision

        # No alarms or dashboard: nothing reads them (test_infra_source provisions them in full).
        yield provision("test", monitoring=False)
        reset_process_state()


class Harness:
    """The app under `chalice.test.Client` on a mocked account, with the workers driven by hand."""

    def __init__(self, client: Any) -> None:
        import app as app_module
        from chalicelib.inbound import partners
        from clm.local.stack import QueuePoller, StreamPoller

        self.client = client
        self.app = app_module.app
        self.creds = {
            pid: partners.add(pid, kind, pid)
            for pid, kind in (
                ("dealer-a", "dealer"),
                ("dealer-b", "dealer"),
                ("finance-demo", "finance"),
                ("hq", "hq"),
            )
        }
        self.stream = StreamPoller(self.app.handler_map["table_stream"])
        self.queue = QueuePoller(self.app.handler_map["work_queue"])
        self.counter = 0

    def post(
        self,
        partner_id: str,
        payload: Any,
        *,
        msg_id: str | None = None,
        body: bytes | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Any:
        from chalicelib import clock
        from tests.support import dumps, signed_headers

        self.counter += 1
        raw = body if body is not None else dumps(payload)
        msg_id = msg_id or f"msg_{self.counter}"
        ts = timestamp if timestamp is not None else int(clock.now().timestamp())
        key = secret or (
            self.creds[partner_id].webhook_secret
            if partner_id in self.creds
            else self.creds["dealer-a"].webhook_secret
        )
        sent = signed_headers(key, raw, msg_id, ts, content_type)
        sent.update(headers or {})
        return self.client.http.post(f"/webhooks/{partner_id}", headers=sent, body=raw)

    def get(self, path: str, partner_id: str = "dealer-a", api_key: str | None = None) -> Any:
        key = api_key if api_key is not None else self.creds[partner_id].api_key
        return self.client.http.get(path, headers={"authorization": f"Bearer {key}"})

    def drain(self, rounds: int = 20) -> None:
        """Run stream and queue handlers until nothing is left (what Lambda would do, in order)."""
        for _ in range(rounds):
            busy = self.stream.step()
            busy = self.queue.step_now() or busy
            if not busy:
                return
        raise AssertionError("work did not settle")


@pytest.fixture
def harness(aws_stack: dict[str, str]) -> Iterator[Harness]:
    from chalice.test import Client

    import app as app_module

    with Client(app_module.app, stage_name="test") as client:
        yield Harness(client)
