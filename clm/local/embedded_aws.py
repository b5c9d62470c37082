"""The embedded AWS in a process of its own: moto's server, with the local stack's speed-ups.

`make run` starts it beside the API and the workers, so that moto's work (parsing, serialising,
scanning) runs on another core than ours instead of taking turns with it under one interpreter
lock. It stops when asked (SIGINT, SIGTERM) or when its parent goes away (its stdin closes).
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path


def serve(port: int, notifications: Path, state: Path, fresh: bool) -> None:
    from moto.server import ThreadedMotoServer

    from clm.local import moto_speedups, persist
    from clm.local.watch import record_publishes, record_reminders

    moto_speedups.install()
    moto_speedups.atomic_dynamodb()
    moto_speedups.fast_responses()
    moto_speedups.fast_transactions()
    record_publishes(notifications)  # what `clm watch` shows
    record_reminders(notifications)
    if fresh:
        state.unlink(missing_ok=True)
    kept = persist.restore(state)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    stop = threading.Event()
    keeper = persist.keep(state, stop)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    def until_orphaned() -> None:
        sys.stdin.read()  # returns when the parent closes the pipe, or dies
        stop.set()

    threading.Thread(target=until_orphaned, daemon=True).start()
    print("embedded AWS ready" + (" (kept state)" if kept else ""), flush=True)
    stop.wait()
    keeper.join(timeout=30)  # the last save
    server.stop()


if __name__ == "__main__":
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every AWS call
    serve(int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:] == ["--fresh"])
