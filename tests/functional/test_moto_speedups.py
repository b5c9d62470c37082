"""The local stack's partition-only Query gives exactly moto's answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def table(aws_stack: dict[str, str]) -> Iterator[tuple[Any, str]]:
    from chalicelib import aws
    from chalicelib.local import moto_speedups
    from chalicelib.settings import get_settings

    ddb, name = aws.client("dynamodb"), get_settings().table_name
    for p in range(5):
        for r in range(30):
            item = {"pk": {"S": f"P#{p}"}, "sk": {"S": f"S#{r:03d}"}, "n": {"N": str(r)}}
            if r % 3 == 0:
                item.update({"gsi1pk": {"S": "Q"}, "gsi1sk": {"S": f"{r:03d}#{p}"}})
            ddb.put_item(TableName=name, Item=item)
    yield ddb, name
    moto_speedups.uninstall()


QUERIES: list[dict[str, Any]] = [
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "P#2"}}},
    {
        "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
        "ExpressionAttributeValues": {":p": {"S": "P#3"}, ":s": {"S": "S#01"}},
        "ScanIndexForward": False,
    },
    {
        "KeyConditionExpression": "pk = :p",
        "FilterExpression": "n > :n",
        "ExpressionAttributeValues": {":p": {"S": "P#1"}, ":n": {"N": "20"}},
        "Limit": 4,
    },
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "P#404"}}},
    {
        "IndexName": "gsi1",
        "KeyConditionExpression": "gsi1pk = :q",
        "ExpressionAttributeValues": {":q": {"S": "Q"}},
    },
]


def run_all(ddb: Any, name: str) -> list[list[dict[str, Any]]]:
    """Every query, paginated to the end (pages of 7), as the list of items and page keys seen."""
    out = []
    for query in QUERIES:
        seen: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            args = {"TableName": name, "Limit": 7, **query}
            if start:
                args["ExclusiveStartKey"] = start
            page = ddb.query(**args)
            seen += page["Items"] + [{"page_end": page.get("LastEvaluatedKey")}]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        out.append(seen)
    return out


def test_partition_queries_answer_exactly_as_moto_does(table: tuple[Any, str]) -> None:
    from chalicelib.local import moto_speedups

    ddb, name = table
    before = run_all(ddb, name)
    moto_speedups.install()
    assert run_all(ddb, name) == before
    assert sum(len(r) for r in before) > 40
