"""(d) A cold webhook: a fresh interpreter imports the app and serves one signed `vehicle.delivered`,
against a fresh interpreter that imports boto3 and makes one DynamoDB client (the floor of any
Python Lambda that talks to DynamoDB).

`import app` alone would flatter us: the app imports lazily and its first request pays the rest
(pydantic models, botocore clients, the partner read and its KMS decrypt). AWS is stubbed at
botocore's `before-send`, answering the partner read, the decrypt and the inbox put, so the
figure is our code and our imports, not the network.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

from bench.common import ROOT, delivered_body, signed

RUNS = 7
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

WEBHOOK = r"""
import json, os, time
started = time.perf_counter()
import app
from chalicelib import aws
from botocore.awsrequest import AWSResponse

class Raw:
    def __init__(self, body): self.body = body
    def stream(self, **_): yield self.body

SECRET = os.environ["BENCH_SECRET"]
PARTNER = {"Item": {
    "pk": {"S": "PARTNER#dealer-bench"}, "sk": {"S": "PARTNER"}, "et": {"S": "partner"},
    "partner_id": {"S": "dealer-bench"}, "kind": {"S": "dealer"},
    "secrets": {"L": [{"M": {
        "ciphertext": {"S": "c2VhbGVk"}, "created_at": {"S": "2026-01-01T00:00:00.000000+0000"}
    }}]},
    "created_at": {"S": "2026-01-01T00:00:00.000000+0000"}, "version": {"N": "1"}}}

def answer(request, **_):
    target = request.headers.get("X-Amz-Target", b"")
    target = target.decode() if isinstance(target, bytes) else target
    if target.endswith(".GetItem"):
        body = PARTNER
    elif target.endswith(".Decrypt"):
        import base64
        body = {"Plaintext": base64.b64encode(SECRET.encode()).decode(), "KeyId": "k"}
    else:
        body = {}
    headers = {"content-type": "application/x-amz-json-1.0"}
    return AWSResponse(request.url, 200, headers, Raw(json.dumps(body).encode()))

aws.session().register("before-send", answer)
event = json.loads(os.environ["BENCH_EVENT"])
from chalice.local import LambdaContext
response = app.app(event, LambdaContext("api_handler", 512, max_runtime_ms=60_000))
elapsed = time.perf_counter() - started
assert response["statusCode"] == 202, response
print(elapsed)
"""
BOTO = (
    "import time; t = time.perf_counter(); import boto3; boto3.client('dynamodb', region_name='cn-north-1'); "
    "print(time.perf_counter() - t)"
)


def _event() -> str:
    """The API Gateway proxy event of one signed delivery, built outside the timed process."""
    import time

    from bench.ingest import _api_event

    body = delivered_body(1)
    headers = signed(SECRET, body, "msg_cold", int(time.time()))
    return json.dumps(_api_event("/webhooks/dealer-bench", "dealer-bench", headers, body))


def _time(code: str, extra: dict[str, str]) -> float:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "cn-north-1",
        "CLM_STAGE": "bench",
        "POWERTOOLS_METRICS_NAMESPACE": "CLM",
        **extra,
    }
    env.pop("AWS_ENDPOINT_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def run() -> tuple[dict[str, float], str]:
    extra = {"BENCH_SECRET": SECRET, "BENCH_EVENT": _event()}
    _time(WEBHOOK, extra)  # compile .pyc once, as a deployed package would ship them
    _time(BOTO, {})
    webhook_times, boto_times = [], []
    for _ in range(RUNS):  # interleaved pairs: machine drift hits both alike
        webhook_times.append(_time(WEBHOOK, extra))
        boto_times.append(_time(BOTO, {}))
    w, b = statistics.median(webhook_times), statistics.median(boto_times)
    return (
        {"cold_webhook_vs_boto3": w / b},
        f"median of {RUNS} pairs: import app + first signed delivery {w * 1e3:.0f} ms, "
        f"boto3 + client {b * 1e3:.0f} ms",
    )
