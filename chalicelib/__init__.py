"""CLM: the customer-lifecycle hub (Chalice application package)."""

from chalicelib import startup as _startup

_startup.begin()  # first thing a Lambda imports from us: see `startup`
