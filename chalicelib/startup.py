"""A Lambda cold start without the garbage collector walking half-built modules.

A cold start imports a few hundred modules and builds botocore clients and pydantic validators:
hundreds of thousands of objects, none of them garbage, that the cyclic collector would walk
again and again (about a tenth of a cold webhook on this machine, `make bench`). In a Lambda
(`AWS_LAMBDA_FUNCTION_NAME` set by its runtime) the collector is therefore off from the first
import of `chalicelib` until the first invocation has answered; then everything built so far is
frozen (`gc.freeze`: never scanned again, and not copied on write) and the collector resumes for
what invocations create. Elsewhere (tests, the CLI, the local stack) the collector is left alone.

CLM uses no pydantic plugins, so every process turns their discovery off: pydantic would
otherwise scan the entry points of every installed distribution when it builds the first model.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from typing import Any

_held = False


def begin() -> None:
    """Hold the collector off, in a Lambda only, until `settle()`; no pydantic plugin discovery."""
    global _held
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and gc.isenabled():
        gc.disable()
        _held = True


def settle() -> None:
    """Freeze what the cold start built and let the collector run again (once; cheap after)."""
    global _held
    if _held:
        _held = False
        gc.freeze()
        gc.enable()


def settle_after_first_invocation(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware for every handler type: the first invocation ends the cold start."""
    try:
        return get_response(event)
    finally:
        settle()
