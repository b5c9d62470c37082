"""One botocore session for the whole process, and lazily created clients from it.

Importing this module imports nothing from boto3: cold starts pay for AWS only when a
request needs it. PynamoDB, Powertools and our own calls all share these clients.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from chalicelib import runtime
from chalicelib.settings import get_settings

if TYPE_CHECKING:
    import botocore.session

_lock = threading.Lock()
_session: botocore.session.Session | None = None
_clients: dict[str, Any] = {}
# The service models botocore parsed (files shipped with it, the same whatever the endpoint): kept
# when `reset` forgets the session, so a new one does not read and parse them again.
_models: Any = None


def session() -> botocore.session.Session:
    global _session, _models
    if _session is None:
        with _lock:
            if _session is None:
                import botocore.session

                made = botocore.session.get_session()
                if _models is None:
                    _models = made.get_component("data_loader")
                else:
                    made.register_component("data_loader", _models)
                _session = made
    return _session


def client(service: str) -> Any:
    """A cached low-level client for `service`, pointed at the configured endpoint."""
    found = _clients.get(service)
    if found is not None:
        return found
    settings = get_settings()
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)
    if service == "dynamodbstreams":
        # botocore >= 1.44 picks account-based stream endpoints, which moto does not route yet.
        config = config.merge(Config(account_id_endpoint_mode="disabled"))
    made = session().create_client(
        service, region_name=settings.region, endpoint_url=settings.endpoint_url, config=config
    )
    with _lock:
        return _clients.setdefault(service, made)


@runtime.keeps_state
def reset() -> None:
    """Forget every client (tests switch endpoints and mocks; the CLI switches stacks)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None
