"""(c) The local stack as data grows: per-event HTTP ingest and one vehicle view at 20,000 items
against 1,000, on two stacks side by side.

Both stacks run in their own processes with their minute sweep switched off (no sweep in a timed
window), and the sizes are interleaved round by round, so a busy machine hits both alike; the
figure is the ratio of the medians over every round.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
from typing import Any

from bench.burst import StackProcess
from bench.common import delivered_body, signed

ROUNDS = 8
EVENTS_PER_ROUND = 20
READS_PER_ROUND = 10
SMALL, LARGE = 1_000, 20_000


def _ddb(stack: StackProcess) -> Any:
    import botocore.session

    return botocore.session.get_session().create_client(
        "dynamodb",
        region_name="cn-north-1",
        endpoint_url=f"http://127.0.0.1:{stack.aws_port}",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def fill(stack: StackProcess, total: int) -> None:
    """Add filler items (timelines, open tasks in the due index) until the table holds `total`."""
    ddb = _ddb(stack)
    table = "clm-local"
    count = ddb.scan(TableName=table, Select="COUNT")["Count"]
    n = 0
    while count < total:
        batch = []
        for _ in range(min(25, total - count)):
            n += 1
            item = {
                "pk": {"S": f"VEH#fill#FILL{n:09d}"},
                "sk": {"S": f"T#2026-01-01T00:00:00.000Z#fill#{n}"},
                "et": {"S": "timeline"},
                "event_type": {"S": "odometer.reported"},
                "summary": {"S": '{"odometer_km": 1000}'},
            }
            if n % 5 == 0:
                item.update({"gsi1pk": {"S": "DUE#0"}, "gsi1sk": {"S": f"2099-01-01T00:00:00.000Z#{n}"}})
            batch.append({"PutRequest": {"Item": item}})
        ddb.batch_write_item(RequestItems={table: batch})
        count += len(batch)


def _request(port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> float:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        start = time.perf_counter()
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        elapsed = time.perf_counter() - start
    finally:
        connection.close()
    assert response.status in (200, 202), response.status
    return elapsed


def ingest_round(stack: StackProcess, offset: int) -> list[float]:
    secret = stack.credentials["dealer-demo"]["webhook_secret"]
    times = []
    for n in range(offset, offset + EVENTS_PER_ROUND):
        body = delivered_body(n)
        headers = signed(secret, body, f"msg_scale_{n}", int(time.time()))
        times.append(_request(stack.api_port, "POST", "/webhooks/dealer-demo", body, headers))
    return times


def read_round(stack: StackProcess) -> list[float]:
    """One vehicle view through the read API (a partition Query of a fixed size)."""
    key = stack.credentials["dealer-demo"]["api_key"]
    vin = json.loads(delivered_body(0))["data"]["vin"]
    path = f"/dealers/dealer-demo/vehicles/{vin}"
    return [
        _request(stack.api_port, "GET", path, None, {"Authorization": f"Bearer {key}"})
        for _ in range(READS_PER_ROUND)
    ]


def _until_viewable(stack: StackProcess, timeout: float = 120.0) -> None:
    """Wait until the read API shows the vehicle the reads look at (its delivery applied)."""
    key = stack.credentials["dealer-demo"]["api_key"]
    vin = json.loads(delivered_body(0))["data"]["vin"]
    deadline = time.monotonic() + timeout
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", stack.api_port, timeout=30)
        try:
            connection.request(
                "GET", f"/dealers/dealer-demo/vehicles/{vin}", headers={"Authorization": f"Bearer {key}"}
            )
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        if response.status == 200:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the vehicle never showed on the read API")
        time.sleep(0.5)


def run() -> tuple[dict[str, float], str]:
    small, large = StackProcess(), StackProcess()
    try:
        fill(small, SMALL)
        fill(large, LARGE)
        for stack in (small, large):  # the vehicle the reads look at, and a warm API
            ingest_round(stack, 0)
        for stack in (small, large):
            _until_viewable(stack)
        ingest: dict[str, list[float]] = {"small": [], "large": []}
        reads: dict[str, list[float]] = {"small": [], "large": []}
        for r in range(ROUNDS):
            for name, stack in (
                (("small", small), ("large", large)) if r % 2 == 0 else (("large", large), ("small", small))
            ):
                ingest[name] += ingest_round(stack, 1000 + r * EVENTS_PER_ROUND)
                reads[name] += read_round(stack)
    finally:
        small.stop()
        large.stop()
    i_small, i_large = statistics.median(ingest["small"]), statistics.median(ingest["large"])
    r_small, r_large = statistics.median(reads["small"]), statistics.median(reads["large"])
    return (
        {"local_scaling": i_large / i_small, "local_read_scaling": r_large / r_small},
        f"median over {ROUNDS} interleaved rounds: HTTP ingest {i_small * 1e3:.2f} ms at {SMALL} items, "
        f"{i_large * 1e3:.2f} ms at {LARGE}; a vehicle view {r_small * 1e3:.1f} ms, {r_large * 1e3:.1f} ms",
    )
