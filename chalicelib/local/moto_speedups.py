"""Keep base-table Queries on the embedded AWS flat as the table grows.

moto 5.2 answers every Query by listing and sorting the whole table, then keeping the partition
asked for: a task list or a vehicle timeline cost 15 ms at 1,000 items and 220 ms at 20,000.
DynamoDB reads one partition. While a base-table Query runs, this hands moto's query only that
partition (moto stores items by hash key already); everything else, GSI queries included, is
moto's own code. Installed by the local stack only; `tests/functional/test_moto_speedups.py`
checks results are identical with and without it.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

_partition: ContextVar[Any] = ContextVar("clm_query_partition", default=None)
_NONE = object()


def install() -> None:
    from moto.dynamodb.models.table import Table

    if getattr(Table, "_clm_partition_queries", False):
        return
    original_query = Table.query
    original_all_items = Table.all_items

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name is not None or hash_key is None:
            return original_query(self, hash_key, *args, **kwargs)
        token = _partition.set(hash_key)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _partition.reset(token)

    def all_items(self: Any) -> Any:
        hash_key = _partition.get()
        if hash_key is None:
            return original_all_items(self)
        found = self.items.get(hash_key, _NONE)
        if found is _NONE:
            return []
        if self.range_key_attr:
            return sorted(found.values(), key=lambda item: item.range_key)
        return [found]

    Table._clm_originals = (original_query, original_all_items)  # type: ignore[attr-defined]
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    Table._clm_partition_queries = True  # type: ignore[attr-defined]


def uninstall() -> None:
    from moto.dynamodb.models.table import Table

    if getattr(Table, "_clm_partition_queries", False):
        Table.query, Table.all_items = Table._clm_originals  # type: ignore[attr-defined,method-assign]
        Table._clm_partition_queries = False  # type: ignore[attr-defined]
