"""The local stack end to end: start it on free ports, post a signed event over HTTP, watch it land."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support import signed_headers

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get_json(url: str, api_key: str) -> Any:
    request = urllib.request.Request(url, headers={"authorization": f"Bearer {api_key}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.e2e
def test_signed_event_over_http_reaches_the_read_api_within_two_seconds(tmp_path: Path) -> None:
    aws_port, api_port = free_port(), free_port()
    env = {
        **os.environ,
        "CLM_AWS_PORT": str(aws_port),
        "CLM_API_PORT": str(api_port),
        "PYTHONUNBUFFERED": "1",
    }
    for name in (
        "AWS_ENDPOINT_URL",
        "CLM_STAGE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ):
        env.pop(name, None)
    clm = [sys.executable, "-m", "chalicelib.cli"]
    stack = subprocess.Popen(
        [*clm, "local"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert stack.stdout is not None
        deadline = time.monotonic() + 60
        for line in stack.stdout:
            if "CLM ready" in line:
                break
            assert time.monotonic() < deadline, "no 'CLM ready' within 60 s"
        else:
            pytest.fail("the stack exited before it was ready")
        # Keep reading its output (logs, EMF metrics) so a full pipe never blocks it.
        rest: list[str] = []
        reader = threading.Thread(target=lambda: rest.extend(stack.stdout), daemon=True)  # type: ignore[arg-type]
        reader.start()
        creds = json.loads((tmp_path / ".clm" / "local-credentials.json").read_text())
        assert set(creds) == {"dealer-demo", "finance-demo", "hq"}
        cli_env = {**env, "PYTHONPATH": str(ROOT), "CLM_AWS_ENDPOINT": f"http://127.0.0.1:{aws_port}"}
        sent = subprocess.run(
            [
                *clm,
                "send",
                str(ROOT / "examples" / "events" / "vehicle.delivered.json"),
                "--partner",
                "dealer-demo",
            ],
            cwd=tmp_path,
            env=cli_env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(sent.stdout)["status"] == 202
        accepted_at = time.monotonic()
        api = f"http://127.0.0.1:{api_port}"
        key = creds["dealer-demo"]["api_key"]
        while True:
            items = get_json(f"{api}/dealers/dealer-demo/tasks", key)["items"]
            if len(items) == 3:
                break
            assert time.monotonic() - accepted_at < 2.0, "the read API did not reflect the event within 2 s"
            time.sleep(0.05)
        vin = json.loads((ROOT / "examples" / "events" / "vehicle.delivered.json").read_text())["data"]["vin"]
        view = get_json(f"{api}/dealers/dealer-demo/vehicles/{vin}", key)
        assert view["timeline"][0]["type"] == "vehicle.delivered"
        info = json.loads(
            subprocess.run(
                [*clm, "info"], cwd=tmp_path, env=cli_env, capture_output=True, text=True, check=True
            ).stdout
        )
        assert info["api_url"] == api
        assert set(info["topics"]) == {"red_alerts", "staff_tasks", "ops"}
        # Ten copies of one delivery at once over HTTP: one acceptance, nine duplicates, no 5xx.
        body = (ROOT / "examples" / "events" / "handover.submitted.json").read_bytes()
        headers = signed_headers(
            creds["dealer-demo"]["webhook_secret"], body, "msg_e2e_burst", int(time.time())
        )

        def post(_: int) -> int:
            request = urllib.request.Request(f"{api}/webhooks/dealer-demo", data=body, headers=headers)
            with urllib.request.urlopen(request, timeout=10) as response:
                status: int = response.status
                return status

        with ThreadPoolExecutor(max_workers=10) as pool:
            assert sorted(pool.map(post, range(10))) == [200] * 9 + [202]
        posted_at = time.monotonic()
        while get_json(f"{api}/dealers/dealer-demo/tasks?status=done", key)["items"] == []:
            assert time.monotonic() - posted_at < 2.0, "the handover did not close its task within 2 s"
            time.sleep(0.05)
        swept = subprocess.run(
            [*clm, "sweep", "--at", "2030-01-01T00:00:00+08:00"],
            cwd=tmp_path,
            env=cli_env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(swept.stdout)["tasks_overdue"] == 2  # the handover form was submitted
        overdue = get_json(f"{api}/dealers/dealer-demo/tasks?status=overdue", key)["items"]
        assert sorted(t["kind"] for t in overdue) == ["delivery_feedback", "handover_confirm"]
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            stack.wait(timeout=20)
        except subprocess.TimeoutExpired:
            stack.kill()
            raise
        reader.join(timeout=5)
    out = "".join(rest)
    assert stack.returncode == 0, out
    assert "CLM stopped" in out
    assert '"EventsAccepted"' in out  # EMF metrics, as CloudWatch would receive them
