"""The store: the only package that knows the table layout (see `models`)."""

from __future__ import annotations

from typing import Any, Literal

from chalicelib import runtime

# What handing a lost or failed unit of work to the retry queue came to: `exhausted` when it has
# used up its attempts (the caller dead-letters it), `skipped` when it is no longer waiting.
Redrive = Literal["redriven", "exhausted", "skipped"]

_bound_to: tuple[str, str | None] | None = None


def bind() -> None:
    """Point every model at the configured table and share the process's DynamoDB client.

    Idempotent and cheap when nothing changed; tests and the CLI call `unbind()` first when
    they switch endpoints.
    """
    global _bound_to
    from chalicelib.settings import get_settings

    settings = get_settings()
    target = (settings.table_name, settings.endpoint_url)
    if _bound_to == target:
        return
    from chalicelib import aws
    from chalicelib.store.models import ALL_MODELS

    ddb = aws.client("dynamodb")
    for model in ALL_MODELS:
        model.Meta.table_name = settings.table_name
        model.Meta.region = settings.region
        model.Meta.host = settings.endpoint_url
        model._connection = None
        connection: Any = model._get_connection().connection
        connection._client = ddb
    _bound_to = target


def conditional_update(item: Any, actions: list[Any], condition: Any) -> bool:
    """Apply an update under `condition`; False (not an error) when the condition does not hold.

    On success `item` holds the item as it now is (PynamoDB reads back ALL_NEW).
    """
    from pynamodb.exceptions import UpdateError

    try:
        item.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def put_if_absent(item: Any) -> bool:
    """Write an item unless one with its key exists; False (not an error) when one does."""
    from pynamodb.exceptions import PutError

    bind()
    try:
        item.save(condition=type(item).pk.does_not_exist())
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def due_in(queue: str, shards: int, upper: str, limit: int) -> list[Any]:
    """Items of a sharded due-index queue (`<queue>#<shard>`) sorted up to `upper`: a page per shard."""
    from chalicelib.store.models import Item

    bind()
    found: list[Any] = []
    for shard in range(shards):
        found += Item.due_index.query(f"{queue}#{shard}", Item.gsi1sk <= upper, limit=limit)
    return found


class IncompleteWrite(Exception):
    """DynamoDB kept handing writes back unprocessed; `unprocessed` names their keys."""

    def __init__(self, unprocessed: set[tuple[str, str]]) -> None:
        super().__init__(f"{len(unprocessed)} write(s) left unprocessed")
        self.unprocessed = unprocessed


def write_all(puts: list[Any], deletes: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
    """Put items (unconditionally) and delete keys, 25 to a request (BatchWriteItem), in order:
    the last item goes out in the last request.

    What DynamoDB hands back unprocessed is sent again with backoff; what still is after that
    raises `IncompleteWrite`. Not atomic: every item written this way must be idempotent to write
    again (derived keys, same values).
    """
    import time

    from chalicelib import aws
    from chalicelib.settings import get_settings

    bind()
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for pk, sk in deletes:
        unique[(pk, sk)] = {"DeleteRequest": {"Key": {"pk": {"S": pk}, "sk": {"S": sk}}}}
    for item in puts:
        unique.pop((item.pk, item.sk), None)
        unique[(item.pk, item.sk)] = {"PutRequest": {"Item": item.serialize()}}
    requests = list(unique.values())
    table = get_settings().table_name
    ddb = aws.client("dynamodb")
    for start in range(0, len(requests), 25):
        pending: dict[str, Any] = {table: requests[start : start + 25]}
        for attempt in range(8):
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                break
            time.sleep(0.05 * 2**attempt)
        else:
            left = {
                (
                    r[kind]["Item" if kind == "PutRequest" else "Key"]["pk"]["S"],
                    r[kind]["Item" if kind == "PutRequest" else "Key"]["sk"]["S"],
                )
                for r in pending.get(table, [])
                for kind in r
            }
            left |= {(item.pk, item.sk) for item in puts[start + 25 :]}
            raise IncompleteWrite(left)


class BadCursor(ValueError):
    """A `next` cursor this API did not issue for this list."""


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    """A page's `next`: the key the next page starts after (opaque to clients)."""
    if not key:
        return None
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(
    cursor: str | None, pk: str, sk_prefix: str, names: tuple[str, ...] = ("pk", "sk")
) -> dict[str, Any] | None:
    """The key a cursor names, if it is one issued for this list (partition `pk`, items under
    `sk_prefix`); `BadCursor` otherwise, whatever the client sent."""
    if not cursor:
        return None
    import base64
    import binascii
    import json

    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError) as exc:
        raise BadCursor("the cursor is not one this API issued") from exc
    if not (
        isinstance(key, dict)
        and set(key) == set(names)
        and all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values())
        and key["sk"]["S"].startswith(sk_prefix)
    ):
        raise BadCursor("the cursor is not one this API issued")
    if key["pk"]["S"] != pk:
        raise BadCursor("the cursor belongs to another list")
    return key


@runtime.keeps_state
def unbind() -> None:
    global _bound_to
    _bound_to = None


def ping() -> None:
    """One cheap read that fails when the table does not answer (health checks)."""
    bind()
    from chalicelib import aws
    from chalicelib.settings import get_settings

    aws.client("dynamodb").get_item(
        TableName=get_settings().table_name, Key={"pk": {"S": "HEALTH"}, "sk": {"S": "HEALTH"}}
    )
