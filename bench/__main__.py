"""`make bench`: CLM's timing and cost figures, each a ratio taken within one run.

Writes `bench/results.json` ({"name": value}) and prints a table. Never part of `make test`:
timings are measured here, asserted nowhere.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench import burst, cold_start, ingest, local_scaling, sweeps

RESULTS = Path(__file__).resolve().parent / "results.json"
TARGETS = {
    "ddb_requests_per_event": 2.0,
    "ingest_vs_baseline": 1.5,
    "local_scaling": 1.5,
    "burst_apply_ratio": 2.0,
    "redrive_per_event": 0.05,
    "apply_requests_per_event": 5.0,
    "cold_webhook_vs_boto3": 1.4,
    "cold_init_pyc_ratio": 1.4,
    "sweep_items_ratio": 1.0,
    "sweep_scans": 0.0,
    "sms_rate_error": 0.01,
}


def main(argv: list[str]) -> int:
    only = set(argv)
    results: dict[str, float] = {}
    details: dict[str, str] = {}
    for name, run in (
        ("requests", ingest.requests_per_event),
        ("ingest", ingest.ingest_vs_baseline),
        ("apply", burst.apply_requests),
        ("burst", burst.run),
        ("scaling", local_scaling.run),
        ("import", cold_start.run),
        ("pyc", cold_start.pyc_run),
        ("sweeps", sweeps.run),
    ):
        if only and name not in only:
            continue
        figures, note = run()
        results.update(figures)
        details[name] = note
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    previous.update({k: round(v, 3) for k, v in results.items()})
    RESULTS.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")
    print(f"\n{'figure':<32}{'value':>10}{'target':>10}  ok")
    for name, value in sorted(results.items()):
        target = TARGETS.get(name)
        verdict = "" if target is None else ("yes" if value <= target else "NO")
        shown = "" if target is None else f"<= {target:g}"
        print(f"{name:<32}{value:>10.3f}{shown:>10}  {verdict}")
    for name, note in details.items():
        print(f"  {name}: {note}")
    print(f"\nwritten to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
