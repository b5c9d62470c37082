"""`make bench` keeps working as the app changes: its in-process ingest figure runs on a few events
with AWS stubbed as the bench stubs it (every webhook answered 202). No timing is judged here.

Once, the webhook path began sealing payloads under a KMS data key, the bench's stub answered that
call with `{}`, and every bench request got a 500 until someone ran `make bench`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench import cold_start

RUN = (
    "import json, bench.ingest as b\n"
    "b.EVENTS = 25\n"  # at least the 20 warm-up events
    "figures, note = b.ingest_vs_baseline()\n"
    "print(json.dumps(sorted(figures)))\n"
)


def test_the_ingest_bench_serves_every_webhook_with_aws_stubbed() -> None:
    done = subprocess.run(
        [sys.executable, "-c", RUN],
        cwd=cold_start.ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CLM_"))},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["ingest_vs_baseline"]
