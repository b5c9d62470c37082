"""Shared fixtures. Environment read at import time is set here, before any app module loads."""

from __future__ import annotations

import os

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "cn-north-1",
        "AWS_REGION": "cn-north-1",
        "CLM_STAGE": "test",
        "POWERTOOLS_METRICS_NAMESPACE": "CLM",
        "POWERTOOLS_SERVICE_NAME": "clm",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "events"
SHARED_EVENTS = ROOT.parent / "shared" / "events"
NOW = datetime(2026, 11, 20, 2, 5, tzinfo=UTC)


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

    from clm.local.moto_speedups import atomic_dynamodb, fast_responses, fast_transactions

    atomic_dynamodb()  # each request atomic, as on DynamoDB (moto has no locks)
    fast_responses()  # as the local stack answers (checked against moto's own serializer when asked)
    fast_transactions()  # as the local stack writes them (checked against moto's own in its test)
    with mock_aws():
        reset_process_state()
        from clm.local.provision import provision

        yield provision("test")
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
