"""Bench helpers: the example event, signed requests, and an environment like the tests'."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DELIVERED = ROOT / "examples" / "events" / "vehicle.delivered.json"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def fake_aws_env() -> None:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "cn-north-1",
            "AWS_REGION": "cn-north-1",
            "CLM_STAGE": "bench",
            "POWERTOOLS_SERVICE_NAME": "clm",
            "POWERTOOLS_METRICS_NAMESPACE": "CLM",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)


def delivered_body(n: int) -> bytes:
    """A distinct vehicle.delivered body per n (VIN varies), as a dealer would send it."""
    event: dict[str, Any] = json.loads(DELIVERED.read_text())
    event["data"]["vin"] = f"LSVAU2180N{n:07d}"
    return json.dumps(event, ensure_ascii=False).encode()


def reading_body(n: int, km: int, day: int) -> bytes:
    """An odometer reading for the vehicle of `delivered_body(n)`, `day` days after its delivery."""
    from datetime import datetime, timedelta

    event: dict[str, Any] = json.loads((ROOT / "examples" / "events" / "odometer.reported.json").read_text())
    delivered = json.loads(DELIVERED.read_text())["data"]["delivered_at"]
    read_at = datetime.fromisoformat(delivered) + timedelta(days=day + 1)
    event["data"].update(vin=f"LSVAU2180N{n:07d}", odometer_km=km, read_at=read_at.isoformat())
    return json.dumps(event, ensure_ascii=False).encode()


def signed(secret: str, body: bytes, msg_id: str, timestamp: int) -> dict[str, str]:
    from chalicelib.inbound import signatures

    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures.sign(signatures.secret_key(secret), msg_id, timestamp, body),
    }


def reset() -> None:
    from chalicelib import runtime

    runtime.reset()
