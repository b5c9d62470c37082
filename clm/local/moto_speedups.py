"""Keep Queries on the embedded AWS from listing the whole table.

moto 5.2 answers every Query by listing and sorting the whole table, then keeping the items of
the partition asked for: a task list or a vehicle timeline cost 15 ms at 1,000 items and
220 ms at 20,000, a GSI Query (the sweep) 1 s for four at 20,000. DynamoDB reads one partition.
While a Query runs, this hands moto's own query code only the candidate items: the partition
for a base-table or local-index Query (moto stores items by hash key already), or the items whose index hash
attribute matches for a GSI Query (found without the sort and the typed comparisons). moto then
applies every condition, sort, filter, limit and page exactly as before.

Installed by the local stack only; `tests/functional/test_moto_speedups.py` checks that the
answers are identical with and without it.

`fast_responses` writes the JSON answers of DynamoDB's item operations directly: moto 5.2
serialises every answer by walking botocore's output shape, which costs most of a GetItem (7 of 9
ms for an item of 17 attributes). Those answers are DynamoDB JSON already; with
`CLM_VERIFY_FAST_RESPONSES=1` both are computed and compared (the test suite runs that way once).

`fast_transactions` answers TransactWriteItems without moto's copies of the whole table (one deep
copy per item of the transaction, to roll back: 57 ms for three puts at 1,000 items, 1.2 s at
20,000). It checks every condition first and writes only when all hold, keeping copies of the
items it touches alone, as DynamoDB's all-or-nothing needs no more.

`atomic_dynamodb` makes each DynamoDB request atomic on moto, as each is on DynamoDB: moto has
no locks, so two threads' conditional writes to one item could both pass their condition (two
"first" copies of one webhook accepted). The local stack and the tests both install it.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

_candidates: ContextVar[Any] = ContextVar("clm_query_candidates", default=None)


def _index_hash_attr(table: Any, index_name: str) -> str | None:
    for index in [*table.global_indexes, *table.indexes]:
        if index.name == index_name:
            for key in index.schema:
                if key["KeyType"] == "HASH":
                    name: str = key["AttributeName"]
                    return name
    return None


def install() -> None:
    from moto.dynamodb.models.table import Table

    if getattr(Table, "_clm_fast_queries", False):
        return
    original_query = Table.query
    original_all_items = Table.all_items

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if hash_key is None:
            return original_query(self, hash_key, *args, **kwargs)
        if index_name is None:
            wanted: Any = ("partition", hash_key)
        else:
            attr = _index_hash_attr(self, index_name)
            if attr is None:
                return original_query(self, hash_key, *args, **kwargs)
            # A local index shares the table's partition: its candidates are that partition.
            wanted = ("local", hash_key) if attr == self.hash_key_attr else ("index", attr, hash_key)
        token = _candidates.set(wanted)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _candidates.reset(token)

    def all_items(self: Any) -> Any:
        wanted = _candidates.get()
        if wanted is None:
            return original_all_items(self)
        if wanted[0] == "partition":
            found = self.items.get(wanted[1])
            if found is None:
                return []
            # Typed keys computed once per item: moto's own sort that follows then sees sorted input.
            return (
                sorted(found.values(), key=lambda item: item.range_key.cast_value)
                if self.range_key_attr
                else [found]
            )
        if wanted[0] == "local":
            return list(self.items.get(wanted[1], {}).values())  # moto sorts by the index's key itself
        _, attr, value = wanted
        every = (
            (item for group in self.items.values() for item in group.values())
            if self.range_key_attr
            else iter(self.items.values())
        )
        out = []
        for item in every:
            have = item.attrs.get(attr)
            if have is not None and have.type == value.type and have.value == value.value:
                out.append(item)
        return out  # moto sorts an index Query's matches itself

    Table._clm_originals = (original_query, original_all_items)  # type: ignore[attr-defined]
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    Table._clm_fast_queries = True  # type: ignore[attr-defined]


def uninstall() -> None:
    from moto.dynamodb.models.table import Table

    if getattr(Table, "_clm_fast_queries", False):
        Table.query, Table.all_items = Table._clm_originals  # type: ignore[attr-defined,method-assign]
        Table._clm_fast_queries = False  # type: ignore[attr-defined]


_dynamodb_lock = threading.RLock()


def dynamodb_lock() -> Any:
    """The lock every DynamoDB request holds on the local stack (a snapshot holds it too)."""
    return _dynamodb_lock


def around_call_action(handler: Any, flag: str, around: Callable[[Any, Callable[[], Any]], Any]) -> None:
    """Wrap a moto response handler's `call_action` once: `around(self, proceed)` runs each request."""
    if getattr(handler, flag, False):
        return
    original = handler.call_action

    def call_action(self: Any) -> Any:
        return around(self, lambda: original(self))

    handler.call_action = call_action
    setattr(handler, flag, True)


def atomic_dynamodb() -> None:
    """One DynamoDB request at a time on moto (in-process mock or server): conditions hold."""
    from moto.dynamodb.responses import DynamoHandler

    def one_at_a_time(_: Any, proceed: Callable[[], Any]) -> Any:
        with _dynamodb_lock:
            return proceed()

    around_call_action(DynamoHandler, "_clm_atomic", one_at_a_time)


ITEM_OPERATIONS = frozenset(
    {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem"}
)


def _plain(value: Any) -> Any:
    """A DynamoDB JSON answer as the wire carries it: no None members, binary values in base64."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    return value


class FastResponseMismatch(AssertionError):
    pass


def fast_responses() -> None:
    """Answer DynamoDB's item operations with plain JSON instead of moto's shape-walking serializer."""
    from moto.dynamodb.responses import DynamoResult

    if getattr(DynamoResult, "_clm_fast", False):
        return
    original = DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        operation = context.operation_model.name
        if operation not in ITEM_OPERATIONS or isinstance(self.result, Exception):
            return original(self, context)
        members = context.operation_model.output_shape.members
        answer = {k: v for k, v in _plain(self.result).items() if k in members}  # as the shape has them
        body = json.dumps(answer, separators=(",", ":"))
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        if os.environ.get("CLM_VERIFY_FAST_RESPONSES") == "1":
            status, their_headers, theirs = original(self, context)
            if json.loads(theirs) != json.loads(body) or status != 200:
                raise FastResponseMismatch(f"{operation}: {theirs[:300]!r} != {body[:300]}")
            headers = {**their_headers, **headers}
        return 200, headers, body

    DynamoResult._clm_originals = original  # type: ignore[attr-defined]
    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]
    DynamoResult._clm_fast = True  # type: ignore[attr-defined]


def fast_transactions() -> None:
    """TransactWriteItems on moto with moto's checks and answers, without copying the table."""
    import copy

    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, "_clm_fast_transactions", False):
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        targets: set[tuple[str, str]] = set()
        planned: list[tuple[str, dict[str, Any], str, dict[str, Any], Any]] = []
        errors: list[tuple[Any, Any, Any]] = []
        for entry in transact_items:  # 1: every check, as moto makes them, before any write
            if len(entry) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(entry.items()))
            failed_item: dict[str, Any] | None = None
            try:
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")
                table_name = op["TableName"]
                if op_type == "Put":
                    table = self.get_table(table_name)
                    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = op["Item"][table.range_key_attr]
                else:
                    key = op["Key"]
                target = (str(table_name), str(dict(sorted(key.items()))))
                if target in targets:
                    raise MultipleTransactionsException()
                targets.add(target)
                current = self.get_item(table_name, key)
                condition = op.get("ConditionExpression")
                if condition is not None:
                    holds = get_filter_expression(
                        condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                    ).expr(current)
                    if not holds:
                        if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                            failed_item = current.to_json()["Attributes"]
                        raise ConditionalCheckFailed(item=failed_item)
                planned.append((op_type, op, table_name, key, copy.deepcopy(current)))
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                raise
            except ConditionalCheckFailed as exc:
                errors.append(("ConditionalCheckFailed", str(exc.message), failed_item))
            except Exception as exc:
                errors.append((type(exc).__name__, str(exc), failed_item))
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
        done: list[tuple[str, dict[str, Any], Any]] = []
        try:  # 2: the writes; the conditions were checked, and no item is written twice
            for op_type, op, table_name, key, before in planned:
                names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                if op_type == "Put":
                    self.put_item(
                        table_name,
                        op["Item"],
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                    )
                elif op_type == "Delete":
                    self.delete_item(
                        table_name, key, expression_attribute_names=names, expression_attribute_values=values
                    )
                elif op_type == "Update":
                    self.update_item(
                        table_name,
                        key,
                        update_expression=op["UpdateExpression"],
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                    )
                done.append((table_name, key, before))
        except Exception as exc:
            for table_name, key, before in reversed(done):  # roll back the items written
                if before is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, before.to_json()["Attributes"])
            if isinstance(exc, MockValidationException):
                raise
            index = len(done)
            errors = [(None, None, None)] * len(transact_items)
            errors[index] = (type(exc).__name__, str(exc), None)
            raise TransactionCanceledException(errors) from exc

    DynamoDBBackend._clm_original_transact = DynamoDBBackend.transact_write_items  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    DynamoDBBackend._clm_fast_transactions = True  # type: ignore[attr-defined]


def slow_transactions() -> None:
    """moto's own TransactWriteItems again (tests compare the two)."""
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, "_clm_fast_transactions", False):
        DynamoDBBackend.transact_write_items = DynamoDBBackend._clm_original_transact  # type: ignore[attr-defined,method-assign]
        DynamoDBBackend._clm_fast_transactions = False  # type: ignore[attr-defined]


_shared_rsa: list[Any] = []  # one RSA key pair, made once per process


def shared_symmetric_keys() -> None:
    """moto 5 makes an RSA-2048 key pair for every KMS key it creates, a symmetric one too, where
    nothing ever uses it (encryption uses the key's own material): 0.1 s per `CreateKey`, paid by
    every mocked account the tests make. Symmetric keys share one pair instead; an asymmetric
    key still gets its own. Installed by the tests (the local stack creates one key, once)."""
    from moto.kms import models, utils

    if getattr(models.generate_private_key, "_clm_shared", False):
        return
    made = models.generate_private_key
    asymmetric = {
        str(spec.value) for spec in (utils.KeySpec.RSA_2048, utils.KeySpec.RSA_3072, utils.KeySpec.RSA_4096)
    }
    asymmetric |= set(utils.KeySpec.ecc_key_specs())

    def generate_private_key(key_spec: str) -> Any:
        if key_spec in asymmetric:
            return made(key_spec)
        if not _shared_rsa:
            _shared_rsa.append(made(key_spec))
        return _shared_rsa[0]

    generate_private_key._clm_shared = True  # type: ignore[attr-defined]
    models.generate_private_key = generate_private_key
