"""The local stack's partition-only Query gives exactly moto's answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def table(aws_stack: dict[str, str]) -> Iterator[tuple[Any, str]]:
    from chalicelib import aws
    from chalicelib.settings import get_settings
    from clm.local import moto_speedups

    ddb, name = aws.client("dynamodb"), get_settings().table_name
    for p in range(5):
        for r in range(30):
            item = {"pk": {"S": f"P#{p}"}, "sk": {"S": f"S#{r:03d}"}, "n": {"N": str(r)}}
            if r % 3 == 0:
                item.update({"gsi1pk": {"S": "Q"}, "gsi1sk": {"S": f"{r:03d}#{p}"}})
            if r % 2 == 0:  # the local index sorts backwards from the table: a different order to keep
                item["lsi1sk"] = {"S": f"{99 - r:03d}"}
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
    {
        "IndexName": "lsi1",
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "P#4"}},
        "ConsistentRead": True,
    },
    {
        "IndexName": "lsi1",
        "KeyConditionExpression": "pk = :p AND lsi1sk > :s",
        "FilterExpression": "n < :n",
        "ExpressionAttributeValues": {":p": {"S": "P#0"}, ":s": {"S": "080"}, ":n": {"N": "16"}},
        "ScanIndexForward": False,
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
    from clm.local import moto_speedups

    ddb, name = table
    before = run_all(ddb, name)
    moto_speedups.install()
    assert run_all(ddb, name) == before
    assert sum(len(r) for r in before) > 40


def test_fast_answers_are_moto_s_own(table: tuple[Any, str], monkeypatch: Any) -> None:
    """Every item operation, answered both ways and compared (a mismatch raises inside moto)."""
    ddb, name = table
    monkeypatch.setenv("CLM_VERIFY_FAST_RESPONSES", "1")
    key = {"pk": {"S": "P#1"}, "sk": {"S": "S#001"}}
    assert ddb.get_item(TableName=name, Key=key, ConsistentRead=True)["Item"]["n"] == {"N": "1"}
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "no"}, "sk": {"S": "no"}})
    ddb.put_item(
        TableName=name, Item={**key, "b": {"B": b"\x00\x01"}, "l": {"L": [{"S": "x"}, {"NULL": True}]}}
    )
    updated = ddb.update_item(
        TableName=name,
        Key=key,
        UpdateExpression="SET m = :m ADD n :one",
        ExpressionAttributeValues={":m": {"M": {"a": {"BOOL": True}}}, ":one": {"N": "1"}},
        ReturnValues="ALL_NEW",
    )
    assert updated["Attributes"]["b"] == {"B": b"\x00\x01"} and updated["Attributes"]["n"] == {"N": "1"}
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(TableName=name, Item=key, ConditionExpression="attribute_not_exists(pk)")
    got = ddb.batch_get_item(RequestItems={name: {"Keys": [key, {"pk": {"S": "P#2"}, "sk": {"S": "S#002"}}]}})
    assert len(got["Responses"][name]) == 2
    ddb.batch_write_item(RequestItems={name: [{"DeleteRequest": {"Key": key}}]})
    assert ddb.delete_item(TableName=name, Key=key, ReturnValues="ALL_OLD").get("Attributes") is None
    assert ddb.scan(TableName=name, Limit=3)["Count"] == 3
    assert run_all(ddb, name)


def _transactions(ddb: Any, name: str, prefix: str) -> list[Any]:
    """A put, update, delete and condition check that all hold; one whose condition fails; one
    naming an item twice; one with a bad update expression: the answers and the items after."""

    def key(n: int) -> dict[str, Any]:
        return {"pk": {"S": f"{prefix}#T"}, "sk": {"S": f"S#{n}"}}

    ddb.put_item(TableName=name, Item={**key(1), "n": {"N": "1"}})
    ddb.put_item(TableName=name, Item={**key(2), "n": {"N": "2"}})
    attempts = [
        [
            {"Put": {"TableName": name, "Item": {**key(3), "n": {"N": "3"}}}},
            {
                "Update": {
                    "TableName": name,
                    "Key": key(1),
                    "UpdateExpression": "SET n = n + :one",
                    "ConditionExpression": "n = :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
            {"Delete": {"TableName": name, "Key": key(2)}},
            {
                "ConditionCheck": {
                    "TableName": name,
                    "Key": key(4),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ],
        [
            {"Put": {"TableName": name, "Item": {**key(5), "n": {"N": "5"}}}},
            {
                "Delete": {
                    "TableName": name,
                    "Key": key(1),
                    "ConditionExpression": "n = :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ],
        [
            {"Put": {"TableName": name, "Item": {**key(6), "n": {"N": "6"}}}},
            {"Delete": {"TableName": name, "Key": key(6)}},
        ],
        [
            {"Put": {"TableName": name, "Item": {**key(7), "n": {"N": "7"}}}},
            {"Update": {"TableName": name, "Key": key(1), "UpdateExpression": "SET n = n + :missing"}},
        ],
    ]
    answers: list[Any] = []
    for items in attempts:
        try:
            ddb.transact_write_items(TransactItems=items)
            answers.append("ok")
        except ddb.exceptions.ClientError as exc:
            answers.append((exc.response["Error"]["Code"], exc.response.get("CancellationReasons")))
        found = ddb.query(
            TableName=name,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": f"{prefix}#T"}},
            ConsistentRead=True,
        )["Items"]
        answers.append(sorted((i["sk"]["S"], i["n"]["N"]) for i in found))
    return answers


def test_transactions_answer_and_write_exactly_as_moto_s_own(table: tuple[Any, str]) -> None:
    from clm.local import moto_speedups

    ddb, name = table
    moto_speedups.slow_transactions()
    try:
        theirs = _transactions(ddb, name, "moto")
    finally:
        moto_speedups.fast_transactions()
    ours = _transactions(ddb, name, "fast")
    assert json.dumps(ours).replace("fast#", "moto#") == json.dumps(theirs)
    assert theirs[0] == "ok" and theirs[1] == [("S#1", "2"), ("S#3", "3")]
    assert theirs[2][0] == "TransactionCanceledException" and theirs[3] == theirs[1]  # nothing written
    assert theirs[4][0] == "ValidationException" and theirs[5] == theirs[1]


def test_symmetric_keys_share_one_unused_key_pair_and_asymmetric_ones_get_their_own() -> None:
    from moto import mock_aws

    from clm.local.moto_speedups import shared_symmetric_keys

    shared_symmetric_keys()
    shared_symmetric_keys()  # installing twice changes nothing
    with mock_aws():
        import boto3

        kms = boto3.client("kms", region_name="cn-north-1")
        first, second = (kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
        sealed = kms.encrypt(KeyId=first, Plaintext=b"13800138000")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"13800138000"
        with pytest.raises(kms.exceptions.ClientError):  # each key still has its own material
            kms.decrypt(CiphertextBlob=sealed, KeyId=second)
        signing = [
            kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
            for _ in range(2)
        ]
        public = {kms.get_public_key(KeyId=key)["PublicKey"] for key in signing}
        assert len(public) == 2
