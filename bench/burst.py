"""(e) A burst on the local stack, over real HTTP: is it applied about as fast as it is accepted?

600 mixed events (10 % deliveries, 50 % odometer readings, 20 % services, 20 % handover and
feedback) for 60 vehicles, sent by 32 concurrent senders; each vehicle's events in their natural
order, vehicles interleaved. Figures:

- `burst_apply_ratio`: seconds until every outcome is final ÷ seconds until every event was
  accepted (both from the first send);
- `redrive_per_event`: work-queue messages sent during the burst (retries and re-drives, counted
  from the stack's `WorkQueued` metric) ÷ events accepted;
- `burst_accept_per_s`: events accepted per second.

The stack runs in its own process (as `make run` does) with its minute sweep switched off, so
that no sweep falls inside the timed window.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import ROOT, free_port, signed
from bench.ingest import quiet

VEHICLES = 60
SENDERS = 32
EXAMPLES = ROOT / "examples" / "events"


def _example(event_type: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / f"{event_type}.json").read_text())
    return loaded


def vehicle_events(vin: str, delivered_at: datetime, fleet: bool = False) -> list[dict[str, Any]]:
    """Ten events of one vehicle: delivery, 5 readings, 2 services, handover submit and confirm.

    Each vehicle is its own customer's, as a dealer's customers mostly own one car; `fleet` gives
    every vehicle to the examples' one customer instead (whose tag refresh then reads them all)."""
    out: list[dict[str, Any]] = []
    delivery = _example("vehicle.delivered")
    delivery["data"].update(vin=vin, delivered_at=delivery_time(delivered_at))
    if not fleet:
        delivery["data"]["customer"]["id"] = f"C-{vin[-7:]}"
    out.append(delivery)
    for day in range(1, 6):
        reading = _example("odometer.reported")
        reading["data"].update(vin=vin, odometer_km=100 * day, read_at=delivery_time(delivered_at, day))
        out.append(reading)
    for n, day in enumerate((6, 7)):
        service = _example("service.completed")
        service["data"].update(
            vin=vin,
            repair_order_id=f"RO-{vin[-6:]}-{n}",
            kind="maintenance",
            odometer_km=600 + 100 * n,
            completed_at=delivery_time(delivered_at, day),
        )
        out.append(service)
    for event_type in ("handover.submitted", "handover.confirmed"):
        event = _example(event_type)
        event["data"]["vin"] = vin
        out.append(event)
    return out


def delivery_time(base: datetime, days: int = 0) -> str:
    return (base + timedelta(days=days)).isoformat()


class StackProcess:
    """`clm local` in a subprocess on free ports; its output kept for reading metrics."""

    def __init__(self, sweep_seconds: str = "86400") -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="clm-burst-"))
        self.api_port, self.aws_port = free_port(), free_port()
        env = {
            **os.environ,
            "CLM_AWS_PORT": str(self.aws_port),
            "CLM_API_PORT": str(self.api_port),
            "CLM_SWEEP_SECONDS": sweep_seconds,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
        }
        for name in ("AWS_ENDPOINT_URL", "CLM_STAGE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.pop(name, None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "clm.cli", "local"],
            cwd=self.workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if "CLM ready" in line:
                break
        else:
            raise RuntimeError("the stack did not start:\n" + "".join(self.output[-30:]))
        self.reader = threading.Thread(target=lambda: self.output.extend(self.process.stdout), daemon=True)  # type: ignore[arg-type]
        self.reader.start()
        self.credentials = json.loads((self.workdir / ".clm" / "local-credentials.json").read_text())

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def metric_sum(self, name: str, since: int = 0) -> float:
        total = 0.0
        for line in self.output[since:]:
            if line.startswith('{"_aws"') and f'"{name}"' in line:
                total += sum(json.loads(line)[name])
        return total


def _post(api_port: int, secret: str, event: dict[str, Any], webhook_id: str) -> int:
    import http.client

    body = json.dumps(event, ensure_ascii=False).encode()
    headers = signed(secret, body, webhook_id, int(time.time()))
    for _ in range(3):
        connection = http.client.HTTPConnection("127.0.0.1", api_port, timeout=30)
        try:
            connection.request("POST", "/webhooks/dealer-demo", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        except ConnectionError:
            time.sleep(0.05)  # counted below as a refused connection
        finally:
            connection.close()
    return 0


def _outcome(api_port: int, api_key: str, webhook_id: str) -> str:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", api_port, timeout=30)
    try:
        connection.request(
            "GET",
            f"/partners/dealer-demo/events/{webhook_id}",
            headers={"Authorization": f"Bearer {api_key}"},
        )
        response = connection.getresponse()
        found = json.loads(response.read())
        return str(found.get("outcome"))
    finally:
        connection.close()


def _wait_final(port: int, api_key: str, ids: list[str], deadline: float) -> list[str]:
    """Wait until every outcome is final (what is still pending at the deadline).

    An outcome once final stays final, so each round asks, in the order of acceptance, only
    until the first one still pending: the stack is not kept busy answering about hundreds of
    events to learn that one is left (asking all of them every round took a share of the CPU
    the burst is applied with)."""
    left = list(ids)
    while left and time.monotonic() < deadline:
        while left and _outcome(port, api_key, left[0]) in ("applied", "ignored", "dead_lettered"):
            left.pop(0)
        if left:
            time.sleep(0.1)
    return left


def run(fleet: bool = False) -> tuple[dict[str, float], str]:
    stack = StackProcess()
    try:
        creds = stack.credentials["dealer-demo"]
        secret, api_key = creds["webhook_secret"], creds["api_key"]
        base = datetime.now(UTC) - timedelta(days=30)
        tag = secrets.token_hex(3).upper()  # hex digits: a valid VIN alphabet
        sequences = []
        for n in range(VEHICLES):
            vin = f"LBRST{tag}{n:06d}"
            sequences.append(
                [(f"burst-{vin}-{i}", e) for i, e in enumerate(vehicle_events(vin, base, fleet))]
            )
        ids = [webhook_id for sequence in sequences for webhook_id, _ in sequence]
        queued_before = len(stack.output)
        started = time.monotonic()
        statuses: list[int] = []
        sent: list[str] = []  # in the order they were accepted

        def send(sequence: list[tuple[str, dict[str, Any]]]) -> None:
            for webhook_id, event in sequence:
                statuses.append(_post(stack.api_port, secret, event, webhook_id))
                sent.append(webhook_id)

        with ThreadPoolExecutor(max_workers=SENDERS) as pool:
            list(pool.map(send, sequences))
        accepted_in = time.monotonic() - started
        pending = _wait_final(stack.api_port, api_key, sent, time.monotonic() + 600)
        final_in = time.monotonic() - started
        time.sleep(1.0)  # let the last metric lines reach the output
        queued = stack.metric_sum("WorkQueued", queued_before)
    finally:
        stack.stop()
    accepted = sum(1 for s in statuses if s == 202)
    refused = sum(1 for s in statuses if s == 0)
    unfinished = len(pending)  # still pending at the deadline
    return (
        {
            "burst_apply_ratio": final_in / accepted_in,
            "redrive_per_event": queued / max(accepted, 1),
            "burst_accept_per_s": accepted / accepted_in,
        },
        f"{accepted} of {len(ids)} accepted in {accepted_in:.1f} s by {SENDERS} senders "
        f"({refused} connections refused), every outcome final after {final_in:.1f} s "
        f"({unfinished} still pending); {queued:g} work-queue messages",
    )


MIX = {  # the burst's mix: share of each event type
    "vehicle.delivered": 0.1,
    "odometer.reported": 0.5,
    "service.completed": 0.2,
    "handover.submitted": 0.1,
    "handover.confirmed": 0.1,
}


def _apply_all(
    secret: str,
    base: datetime,
    calls: list[str],
    counts: dict[str, list[int]],
    refreshes: dict[str, list[int]],
) -> None:
    from chalicelib import clock
    from chalicelib.service import work
    from chalicelib.service.ingest import ingest
    from chalicelib.service.process import process
    from chalicelib.store.inbox import InboxRef

    for n in range(10):
        vin = f"LBRSTAPPLY{n:07d}"
        for i, event in enumerate([*vehicle_events(vin, base), *care_events(vin, n, base)]):
            body = json.dumps(event, ensure_ascii=False).encode()
            webhook_id = f"apply-{n}-{i}"
            ingest("dealer-demo", signed(secret, body, webhook_id, int(clock.now().timestamp())), body)
            calls.clear()
            assert process(InboxRef("dealer-demo", webhook_id)) == "applied"
            counts[event["type"]].append(len(calls))
            # What the table stream then asks of the tag refresh, for each signal the event wrote.
            refs = [work.from_stream_record(_inserted(key)) for key in _written_keys(calls)]
            calls.clear()
            for ref in refs:
                if ref is not None and ref["kind"] == "tags":
                    work.handle(ref)
            refreshes[event["type"]].append(len(calls))


def _written_keys(calls: list[Any]) -> list[tuple[str, str]]:
    """The keys the recorded BatchWriteItem requests put."""
    keys = []
    for name, params in calls:
        if name == "BatchWriteItem":
            for requests in params["RequestItems"].values():
                for request in requests:
                    item = request.get("PutRequest", {}).get("Item")
                    if item:
                        keys.append((item["pk"]["S"], item["sk"]["S"]))
    return keys


def _inserted(key: tuple[str, str]) -> dict[str, Any]:
    return {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": key[0]}, "sk": {"S": key[1]}}}}


CARE = ("complaint.opened", "complaint.solution_proposed", "lead.captured", "lead.followed_up")


def care_events(vin: str, n: int, base: datetime) -> list[dict[str, Any]]:
    """A red complaint and its solution, a lead and its conversion, about the vehicle (informational:
    not in the burst's mix)."""
    at = base + timedelta(days=8)
    out = []
    for event_type in CARE:
        event = _example(event_type)
        data = event["data"]
        data.update({k: v for k, v in {"complaint_id": f"CP-{n}", "lead_id": f"LD-{n}"}.items() if k in data})
        if "vin" in data:
            data["vin"] = vin
        for name in ("opened_at", "captured_at", "at"):
            if name in data:
                data[name] = (at + timedelta(hours=CARE.index(event_type))).isoformat()
        out.append(event)
    return out


def apply_requests() -> tuple[dict[str, float], str]:
    """AWS requests made to apply one event of the burst's mix (stream and queue polling left out),
    counted at botocore on moto; the delivery's and the reading's counts beside it."""
    from collections import defaultdict

    from bench.common import fake_aws_env, reset

    fake_aws_env()
    from moto import mock_aws

    with mock_aws():
        reset()
        from chalicelib import aws
        from chalicelib.inbound import partners
        from clm.local.provision import provision

        provision("bench")
        creds = partners.add("dealer-demo", "dealer")
        calls: list[Any] = []
        for service in ("dynamodb", "sns", "sqs", "kms"):
            aws.client(service).meta.events.register(
                f"provide-client-params.{service}",
                lambda model, params, **_: calls.append((model.name, params)),
            )
        counts: dict[str, list[int]] = defaultdict(list)
        refreshes: dict[str, list[int]] = defaultdict(list)
        base = datetime.now(UTC) - timedelta(days=30)
        with quiet():
            _apply_all(creds.webhook_secret, base, calls, counts, refreshes)
        reset()
    mean = {t: sum(c) / len(c) for t, c in counts.items()}
    refresh = {t: sum(c) / len(c) for t, c in refreshes.items()}
    mix = sum(share * mean[t] for t, share in MIX.items())
    care = sum(mean[t] for t in CARE) / len(CARE)
    return (
        {
            "apply_requests_per_event": mix,
            "care_requests_per_event": care,
            "tag_refresh_requests_per_event": sum(share * refresh[t] for t, share in MIX.items()),
        },
        "per event type: "
        + ", ".join(f"{t} {mean[t]:g}" for t in MIX)
        + "; care events (not in the mix): "
        + ", ".join(f"{t} {mean[t]:g}" for t in CARE)
        + "; tag refreshes after the mix's events (table stream): "
        + ", ".join(f"{t} {refresh[t]:g}" for t in MIX if refresh[t]),
    )
