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


def serve(port: int, notifications: Path) -> None:
    from moto.server import ThreadedMotoServer

    from clm.local import moto_speedups
    from clm.local.watch import record_publishes

    moto_speedups.install()
    moto_speedups.atomic_dynamodb()
    moto_speedups.fast_responses()
    record_publishes(notifications)  # what `clm watch` shows
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    def until_orphaned() -> None:
        sys.stdin.read()  # returns when the parent closes the pipe, or dies
        stop.set()

    threading.Thread(target=until_orphaned, daemon=True).start()
    print("embedded AWS ready", flush=True)
    stop.wait()
    server.stop()


if __name__ == "__main__":
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every AWS call
    serve(int(sys.argv[1]), Path(sys.argv[2]))
