"""(d) `import app` in a fresh interpreter against `import boto3` plus one DynamoDB client."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

from bench.common import ROOT

RUNS = 5
APP = "import time; t = time.perf_counter(); import app; print(time.perf_counter() - t)"
BOTO = (
    "import time; t = time.perf_counter(); import boto3; boto3.client('dynamodb', region_name='cn-north-1'); "
    "print(time.perf_counter() - t)"
)


def _time(code: str) -> float:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "CLM_STAGE": "bench"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def run() -> tuple[dict[str, float], str]:
    _time(APP)  # compile .pyc once, as a deployed package would ship them
    _time(BOTO)
    app_times, boto_times = [], []
    for _ in range(RUNS):
        app_times.append(_time(APP))
        boto_times.append(_time(BOTO))
    a, b = statistics.median(app_times), statistics.median(boto_times)
    return {
        "import_vs_boto3": a / b
    }, f"median of {RUNS}: import app {a * 1e3:.0f} ms, boto3 + client {b * 1e3:.0f} ms"
