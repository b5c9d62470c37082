"""`make run` keeps its data across a clean restart and a crash; `--fresh` starts empty."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import example
from tests.e2e.conftest import PATIENCE, RunningStack, launch, new_vin, stop

pytestmark = pytest.mark.e2e


def delivery(vin: str) -> dict[str, Any]:
    payload = example("vehicle.delivered")
    payload["data"] = {**payload["data"], "vin": vin, "customer": {**payload["data"]["customer"], "id": vin}}
    return payload


def applied(stack: RunningStack, webhook_id: str) -> dict[str, Any]:
    return stack.settled_outcome("dealer-demo", webhook_id, stack.credentials["dealer-demo"]["api_key"])


def saved(stack: RunningStack, previous: tuple[int, int] | None = None) -> tuple[int, int]:
    """Wait until the embedded AWS has written its state anew (each save replaces the file), and
    return that save's mark; with no `previous`, the mark of the file as it is."""
    state = stack.workdir / ".clm" / "aws-state.pickle"
    deadline = time.monotonic() + PATIENCE
    while True:
        try:
            found = state.stat()
            mark = (found.st_ino, found.st_mtime_ns)
        except FileNotFoundError:
            mark = (0, 0)
        if previous is None or mark != previous:
            return mark
        assert time.monotonic() < deadline, f"the embedded AWS saved nothing within {PATIENCE} s"
        time.sleep(0.1)


def vehicle(stack: RunningStack, vin: str) -> int:
    return stack.get(
        f"/dealers/dealer-demo/vehicles/{vin}", stack.credentials["dealer-demo"]["api_key"]
    ).status


def test_events_tasks_partners_and_queued_work_survive_a_restart_and_a_crash(tmp_path: Path) -> None:
    first = launch(tmp_path)
    ports = (first.aws_port, first.api_port)
    try:
        vin = new_vin("LKEPT")
        assert first.post_event("dealer-demo", delivery(vin), webhook_id="msg_kept_1").status == 202
        assert applied(first, "msg_kept_1")["outcome"] == "applied"
        added = json.loads(first.bare_cli("partner", "add", "dealer-kept", "--kind", "dealer").stdout)
        tasks = [
            t for t in json.loads(first.bare_cli("tasks", "dealer-demo", "--json").stdout) if t["vin"] == vin
        ]
        assert len(tasks) == 3
    finally:
        stop(first)

    second = launch(tmp_path, ports=ports)  # a clean restart (Ctrl-C, then `make run`)
    try:
        assert any("data kept from the last run" in line for line in second.output)
        assert applied(second, "msg_kept_1")["outcome"] == "applied"  # the outcome, and its dedup record
        assert second.post_event("dealer-demo", delivery(vin), webhook_id="msg_kept_1").status == 200
        assert vehicle(second, vin) == 200
        kept = [
            t for t in json.loads(second.bare_cli("tasks", "dealer-demo", "--json").stdout) if t["vin"] == vin
        ]
        assert [t["task_id"] for t in kept] == [t["task_id"] for t in tasks]
        assert second.credentials["dealer-kept"]["api_key"] == added["api_key"]
        key = added["api_key"]  # its key and secret still work: the KMS key that seals them was kept
        assert second.get("/dealers/dealer-kept/tasks", key).status == 200
        assert (
            second.post_event(
                "dealer-kept", delivery(new_vin("LKEPT")), secret=added["webhook_secret"]
            ).status
            == 202
        )

        later = new_vin("LKEPT")
        assert second.post_event("dealer-demo", delivery(later), webhook_id="msg_kept_2").status == 202
        assert applied(second, "msg_kept_2")["outcome"] == "applied"
        # A save that ends after this point may have begun before it; one begun after that save ended
        # holds everything up to here. Saves follow writes: a write before each makes sure it comes.
        mark = saved(second)
        for _ in range(2):
            assert second.post_event("dealer-demo", delivery(new_vin("LKEPT"))).status == 202
            mark = saved(second, mark)
        os.killpg(second.process.pid, signal.SIGKILL)  # a crash: the stack and its embedded AWS at once
        second.process.wait(timeout=10)
    finally:
        if second.process.poll() is None:
            stop(second)

    third = launch(tmp_path, ports=ports)
    try:
        assert vehicle(third, later) == 200  # written seconds before the crash: kept
        assert applied(third, "msg_kept_2")["outcome"] == "applied"
    finally:
        stop(third)

    fresh = launch(tmp_path, "--fresh", ports=ports)
    try:
        assert any("(empty;" in line for line in fresh.output)
        assert vehicle(fresh, vin) == 404 and vehicle(fresh, later) == 404
        listed = [p["partner_id"] for p in json.loads(fresh.bare_cli("partner", "list", "--json").stdout)]
        assert listed == [
            "dealer-demo",
            "finance-demo",
            "hq",
        ]  # the demo partners, with their old credentials
        assert fresh.post_event("dealer-demo", delivery(vin)).status == 202
    finally:
        stop(fresh)
