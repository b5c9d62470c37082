"""(c) Per-event ingest time through the local stack's HTTP API at 20,000 items against 1,000."""

from __future__ import annotations

import http.client
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import delivered_body, free_port, signed
from bench.ingest import quiet

EVENTS = 150
SMALL, LARGE = 1_000, 20_000


def fill(total: int, start: int) -> int:
    """Add filler items (timelines, open tasks in the due index) until the table holds `total`."""
    from chalicelib import aws
    from chalicelib.settings import get_settings

    ddb = aws.client("dynamodb")
    table = get_settings().table_name
    count = ddb.scan(TableName=table, Select="COUNT")["Count"]
    n = start
    while count < total:
        batch = []
        for _ in range(min(25, total - count)):
            n += 1
            item = {
                "pk": {"S": f"VEH#FILL{n:09d}"},
                "sk": {"S": f"T#2026-01-01T00:00:00.000Z#fill#{n}"},
                "et": {"S": "timeline"},
                "event_type": {"S": "odometer.reported"},
                "summary": {"S": '{"odometer_km": 1000}'},
            }
            if n % 5 == 0:
                item.update(
                    {"gsi1pk": {"S": f"DUE#{n % 4}"}, "gsi1sk": {"S": f"2099-01-01T00:00:00.000Z#{n}"}}
                )
            batch.append({"PutRequest": {"Item": item}})
        ddb.batch_write_item(RequestItems={table: batch})
        count += len(batch)
    return n


def measure(api_port: int, secret: str, offset: int) -> float:
    from chalicelib import clock

    times = []
    for i in range(EVENTS):
        n = offset + i
        body = delivered_body(n)
        headers = signed(secret, body, f"msg_scale_{n}", int(clock.now().timestamp()))
        conn = http.client.HTTPConnection("127.0.0.1", api_port, timeout=10)
        start = time.perf_counter()
        conn.request("POST", "/webhooks/dealer-demo", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        times.append(time.perf_counter() - start)
        conn.close()
        assert response.status == 202, response.status
    return statistics.median(times[10:])


def measure_reads(api_port: int, api_key: str, rounds: int = 30) -> float:
    """Median time of one vehicle view through the read API (a partition Query of a fixed size)."""
    vin = json.loads(delivered_body(0))["data"]["vin"]
    times = []
    for _ in range(rounds):
        conn = http.client.HTTPConnection("127.0.0.1", api_port, timeout=10)
        start = time.perf_counter()
        conn.request(
            "GET", f"/dealers/dealer-demo/vehicles/{vin}", headers={"authorization": f"Bearer {api_key}"}
        )
        response = conn.getresponse()
        response.read()
        times.append(time.perf_counter() - start)
        conn.close()
        assert response.status == 200, response.status
    return statistics.median(times)


def run() -> tuple[dict[str, float], str]:
    from chalicelib.local.stack import LocalStack

    creds_dir = Path(tempfile.mkdtemp(prefix="clm-bench-"))
    stack = LocalStack(free_port(), free_port(), credentials=creds_dir / "credentials.json")
    saved = dict(os.environ)
    try:
        with quiet((1, 2)):
            stack.start()
            creds = json.loads((creds_dir / "credentials.json").read_text())["dealer-demo"]
            secret, api_key = creds["webhook_secret"], creds["api_key"]
            last = fill(SMALL, 0)
            stack.wait_idle()
            small = measure(stack.api_port, secret, 0)
            stack.wait_idle()
            small_read = measure_reads(stack.api_port, api_key)
            fill(LARGE, last)
            stack.wait_idle()
            large = measure(stack.api_port, secret, 100_000)
            stack.wait_idle()
            large_read = measure_reads(stack.api_port, api_key)
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)
    return (
        {"local_scaling": large / small, "local_read_scaling": large_read / small_read},
        f"median HTTP ingest over {EVENTS} events: {small * 1e3:.2f} ms at {SMALL} items, "
        f"{large * 1e3:.2f} ms at {LARGE} items; a vehicle view {small_read * 1e3:.1f} ms, "
        f"{large_read * 1e3:.1f} ms",
    )
