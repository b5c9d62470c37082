"""The local stack keeps its data across restarts, as DynamoDB Local does with `-dbPath`.

In the embedded AWS process, the state of the services CLM uses (DynamoDB with its stream, SQS,
SNS, KMS, whose key seals the partners' secrets) is written to `.clm/aws-state.pickle` when it
changed, at most every `EVERY` seconds, and once more when the process stops; the next start
loads it before serving. A clean stop (Ctrl-C) keeps everything; a crash loses at most the
last `EVERY` seconds. `clm local --fresh` (`make run FRESH=1`) starts empty.

A snapshot is moto's own objects, pickled (written to a temporary file, then renamed, so a
crash mid-write leaves the previous one). It is kept only for the same moto version and the
same table definition in `infra/`: a changed table (say, a new index) starts fresh, with a line
that says so. What a stop loses: records on the table's stream that no consumer had read yet;
their events stay `pending` and the sweep re-drives them (DESIGN.md §9), so nothing is lost.
"""

from __future__ import annotations

import copyreg
import hashlib
import io
import json
import logging
import os
import pickle
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

FILE_NAME = "aws-state.pickle"
SERVICES = ("dynamodb", "sqs", "sns", "kms")
EVERY = 2.0
READ_ONLY = ("Get", "Describe", "List", "Query", "Scan", "Receive", "BatchGet")

log = logging.getLogger("clm.local.persist")
_writes = 0  # requests that may have changed state, since the process started


def _load_private_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(pem, password=None)


def _reduce_private_key(key: Any) -> tuple[Any, tuple[bytes]]:
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return _load_private_key, (pem,)


@lru_cache(maxsize=1)
def _private_key_types() -> tuple[type, ...]:
    """The classes cryptography makes private keys of (its Rust types, known only by an instance)."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    return (type(rsa.generate_private_key(65537, 1024)), type(ec.generate_private_key(ec.SECP256R1())))


def _pickler(out: io.BytesIO) -> pickle.Pickler:
    """A pickler for moto's objects: locks are made anew, KMS's private keys travel as PEM."""
    table = copyreg.dispatch_table.copy()
    table[type(threading.Lock())] = lambda _: (threading.Lock, ())
    table[type(threading.RLock())] = lambda _: (threading.RLock, ())
    for concrete in _private_key_types():
        table[concrete] = _reduce_private_key
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = table
    return pickler


def fingerprint() -> str:
    """What a snapshot must match to be loaded: moto's version and the table CLM deploys."""
    import moto

    template = Path(__file__).resolve().parents[2] / "infra" / "resources.json"
    resources = json.loads(template.read_text(encoding="utf-8"))["Resources"]
    tables = {k: v for k, v in resources.items() if v.get("Type") == "AWS::DynamoDB::Table"}
    text = json.dumps([moto.__version__, tables], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _backends() -> dict[str, Any]:
    from moto.backends import get_backend

    return {name: get_backend(name) for name in SERVICES}  # type: ignore[call-overload]


def _snapshot() -> dict[str, Any]:
    """Every region backend of every account, per service, as plain dicts."""
    return {
        name: {account: dict(dict.items(per_account)) for account, per_account in dict.items(backend_dict)}
        for name, backend_dict in _backends().items()
    }


def save(path: Path) -> None:
    """Write the state now, consistently for DynamoDB (its requests wait meanwhile)."""
    from clm.local.moto_speedups import dynamodb_lock

    out = io.BytesIO()
    with dynamodb_lock():
        _pickler(out).dump({"fingerprint": fingerprint(), "state": _snapshot()})
    partial = path.with_suffix(".tmp")
    partial.write_bytes(out.getvalue())
    os.replace(partial, path)


def restore(path: Path) -> bool:
    """Load a kept state into moto before it serves; False (and a line saying why) if none fits."""
    if not path.exists():
        return False
    try:
        kept = pickle.loads(path.read_bytes())
    except Exception as exc:  # a snapshot from a broken run: start fresh, say so
        log.warning("local state %s unreadable (%s): starting fresh", path, type(exc).__name__)
        return False
    if kept.get("fingerprint") != fingerprint():
        log.warning("local state %s is for another table definition or moto: starting fresh", path)
        return False
    backends = _backends()
    for name, accounts in kept["state"].items():
        for account, regions in accounts.items():
            per_account = backends[name][account]
            for region, backend in regions.items():
                dict.__setitem__(per_account, region, backend)
    return True


def _count_writes() -> None:
    """Count requests that may change state (everything but reads), to save only after changes."""
    from moto.core.responses import BaseResponse

    from clm.local.moto_speedups import around_call_action

    def counted(response: Any, proceed: Callable[[], Any]) -> Any:
        global _writes
        try:
            action = response._get_action()
        except Exception:
            action = ""
        if not action.startswith(READ_ONLY):
            _writes += 1
        return proceed()

    around_call_action(BaseResponse, "_clm_counted", counted)


def keep(path: Path, stop: threading.Event, every: float = EVERY) -> threading.Thread:
    """Save after changes, at most every `every` seconds, and once more when `stop` is set."""
    _count_writes()

    def loop() -> None:
        saved = -1
        while True:
            stopping = stop.wait(every)
            if _writes != saved:
                seen = _writes
                try:
                    save(path)
                    saved = seen
                except Exception as exc:  # e.g. a dict changed while pickled: try again next time
                    log.warning("could not save the local state (%s: %s); retrying", type(exc).__name__, exc)
            if stopping:
                return

    thread = threading.Thread(target=loop, name="keep-state", daemon=True)
    thread.start()
    return thread


def forget(state_dir: Path) -> None:
    """`--fresh`: the next start is empty."""
    (state_dir / FILE_NAME).unlink(missing_ok=True)
