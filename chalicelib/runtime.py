"""The process's state, built once and forgotten together.

Settings, AWS clients, the table binding, the partner caches and the idempotency layer are each
built lazily on first use and kept for the life of the process (a warm Lambda). Whoever switches
what they point at (tests between mocks, the CLI between stacks, the local stack and the bench
when they start) calls `reset()` once, and everything that was built is forgotten: no caller has
to know which module holds what. A module that keeps state registers how to forget it.
"""

from __future__ import annotations

from collections.abc import Callable

_forgetters: list[Callable[[], None]] = []


def keeps_state(forget: Callable[[], None]) -> Callable[[], None]:
    """Register how a module forgets what it built (a decorator, or a plain call)."""
    if forget not in _forgetters:
        _forgetters.append(forget)
    return forget


def reset() -> None:
    """Forget every client, binding, setting and cache this process built."""
    for forget in list(_forgetters):
        forget()
