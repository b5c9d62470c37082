"""A Lambda's cold start runs without the cyclic collector, which comes back after the first answer."""

from __future__ import annotations

import json
import subprocess
import sys

from bench import cold_start

BEFORE = "import gc, json\nimport app\nheld = not gc.isenabled()\n"
AFTER = (
    "\nimport os\nprint(json.dumps({'held': held, 'enabled': gc.isenabled(), 'frozen': gc.get_freeze_count(),"
    " 'plugins': os.environ.get('PYDANTIC_DISABLE_PLUGINS')}))"
)


def run(env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", BEFORE + cold_start.WEBHOOK + AFTER],
        cwd=cold_start.ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    found: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def test_in_a_lambda_the_collector_waits_for_the_first_answer_then_skips_what_startup_built() -> None:
    seen = run(cold_start.webhook_environment())
    assert seen["held"] is True
    assert seen["enabled"] is True
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 10_000
    assert seen["plugins"] == "__all__"


def test_outside_a_lambda_the_collector_is_left_alone() -> None:
    env = cold_start.webhook_environment()
    env.pop("AWS_LAMBDA_FUNCTION_NAME")
    seen = run(env)
    assert seen == {"held": False, "enabled": True, "frozen": 0, "plugins": "__all__"}
