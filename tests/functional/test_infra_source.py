"""One source of truth (issue 13, item 3): the table keys, indexes, topics and queues the code uses
exist in `infra/resources.json` (what AWS gets) and on the local stack built from it.

"What the code uses" is read from the code: the PynamoDB models' keys and index classes, the TTL
attribute, the idempotency layer's key attributes, and the resource names in `chalicelib.settings`.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STAGE = "test"  # what the `aws_stack` fixture provisions (tests/conftest.py)


def _keys(schema: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """A key schema as attribute -> HASH/RANGE (order-free: DynamoDB and PynamoDB list them differently)."""
    return {k["AttributeName"]: k["KeyType"] for k in schema}


def _indexes(indexes: Sequence[Mapping[str, Any]], name: str, schema: str, projection: str) -> dict[str, Any]:
    return {i[name]: (_keys(i[schema]), i[projection]["ProjectionType"]) for i in indexes}


def used_by_the_code() -> dict[str, Any]:
    """The table layout the models query and write, read off the PynamoDB classes."""
    from pynamodb.attributes import TTLAttribute

    from chalicelib.store.models import Item

    schema = Item._get_schema()
    (ttl,) = {a.attr_name for a in Item.get_attributes().values() if isinstance(a, TTLAttribute)}
    return {
        "attributes": {a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]},
        "keys": _keys(schema["key_schema"]),
        "gsi": _indexes(schema["global_secondary_indexes"], "index_name", "key_schema", "projection"),
        "lsi": _indexes(schema["local_secondary_indexes"], "index_name", "key_schema", "projection"),
        "ttl": ttl,
    }


def _template() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "infra" / "resources.json").read_text())
    return loaded


def _of_type(kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in _template()["Resources"].values() if r.get("Type") == kind]


def _names(kind: str, field: str) -> set[str]:
    from clm.local.provision import Provisioner

    resolver = Provisioner(STAGE)  # resolves `Fn::Sub` names as the local stack does; creates nothing
    return {resolver.resolve(props[field]) for props in _of_type(kind)}


def test_the_code_s_table_layout_is_the_template_s(aws_stack: dict[str, str]) -> None:
    from chalicelib.settings import get_settings

    code = used_by_the_code()
    assert code["gsi"] and code["lsi"]  # the code does use indexes: the comparison below means something
    (table,) = _of_type("AWS::DynamoDB::Table")
    assert _names("AWS::DynamoDB::Table", "TableName") == {get_settings().table_name}
    assert {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]} == code[
        "attributes"
    ]
    assert _keys(table["KeySchema"]) == code["keys"]
    assert _indexes(table["GlobalSecondaryIndexes"], "IndexName", "KeySchema", "Projection") == code["gsi"]
    assert _indexes(table["LocalSecondaryIndexes"], "IndexName", "KeySchema", "Projection") == code["lsi"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": code["ttl"], "Enabled": True}
    assert table["StreamSpecification"]  # the table-stream handler reads it


def test_the_local_stack_s_table_is_the_code_s(aws_stack: dict[str, str]) -> None:
    from chalicelib import aws
    from chalicelib.settings import get_settings

    code = used_by_the_code()
    ddb = aws.client("dynamodb")
    name = get_settings().table_name
    table = ddb.describe_table(TableName=name)["Table"]
    assert {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]} == code[
        "attributes"
    ]
    assert _keys(table["KeySchema"]) == code["keys"]
    assert _indexes(table["GlobalSecondaryIndexes"], "IndexName", "KeySchema", "Projection") == code["gsi"]
    assert _indexes(table["LocalSecondaryIndexes"], "IndexName", "KeySchema", "Projection") == code["lsi"]
    ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert (ttl["AttributeName"], ttl["TimeToLiveStatus"]) == (code["ttl"], "ENABLED")
    assert table["LatestStreamArn"]
    assert table["SSEDescription"]["SSEType"] == "KMS"  # passed through from the template


def test_the_idempotency_layer_uses_the_table_s_keys_and_ttl() -> None:
    """Powertools writes its records into the same table: its attribute names must be the table's."""
    source = ast.parse((ROOT / "chalicelib" / "outbound" / "deliver.py").read_text())
    (layer,) = [
        node
        for node in ast.walk(source)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "DynamoDBPersistenceLayer"
    ]
    given = {k.arg: k.value.value for k in layer.keywords if isinstance(k.value, ast.Constant)}
    code = used_by_the_code()
    assert code["keys"] == {given["key_attr"]: "HASH", given["sort_key_attr"]: "RANGE"}
    assert given["expiry_attr"] == code["ttl"]


def test_the_code_s_topics_and_queues_are_in_the_template_and_on_the_local_stack(
    aws_stack: dict[str, str],
) -> None:
    from chalicelib import aws
    from chalicelib.settings import QUEUE_KEYS, TOPIC_KEYS, get_settings

    settings = get_settings()
    topics = {settings.topics[key].rsplit(":", 1)[1] for key in TOPIC_KEYS}
    queues = {settings.queue_urls[key].rsplit("/", 1)[1] for key in QUEUE_KEYS}
    assert len(topics) == len(TOPIC_KEYS) and len(queues) == len(QUEUE_KEYS)
    assert topics <= _names("AWS::SNS::Topic", "TopicName")
    assert queues <= _names("AWS::SQS::Queue", "QueueName")
    listed = {t["TopicArn"] for t in aws.client("sns").list_topics()["Topics"]}
    assert {settings.topics[key] for key in TOPIC_KEYS} <= listed  # the very ARNs the code publishes to
    sqs = aws.client("sqs")
    for key in QUEUE_KEYS:
        assert sqs.get_queue_url(QueueName=settings.queue_urls[key].rsplit("/", 1)[1])["QueueUrl"]
        sqs.get_queue_attributes(QueueUrl=settings.queue_urls[key], AttributeNames=["QueueArn"])


def test_the_code_s_key_alias_is_in_the_template_and_on_the_local_stack(aws_stack: dict[str, str]) -> None:
    from chalicelib import aws
    from chalicelib.settings import get_settings

    alias = get_settings().kms_key_id
    assert alias in _names("AWS::KMS::Alias", "AliasName")
    assert aws.client("kms").describe_key(KeyId=alias)["KeyMetadata"]["KeyState"] == "Enabled"


def test_the_local_stack_creates_every_resource_of_the_template_but_alarms_on_chalice_s_functions(
    aws_stack: dict[str, str],
) -> None:
    """Nothing of `infra/` is left out locally except what watches a function (there is none here)."""
    from clm.local.provision import Provisioner

    provisioner = Provisioner(STAGE)
    made = provisioner.run()  # again, as a kept local stack does at each start: nothing is duplicated
    assert set(made) | set(provisioner.skipped) == provisioner.own
    resources = _template()["Resources"]
    for name in provisioner.skipped:
        assert resources[name]["Type"] == "AWS::CloudWatch::Alarm"
        assert resources[name]["Properties"]["Namespace"] == "AWS/Lambda"
    assert set(made) >= set(aws_stack)
    assert made["SecretsKey"] == aws_stack["SecretsKey"]  # a kept stack keeps the key its secrets need
    from chalicelib import aws

    cloudwatch = aws.client("cloudwatch")
    alarms = {a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    alarms |= {a["AlarmName"] for a in cloudwatch.describe_alarms()["CompositeAlarms"]}
    wanted = {
        provisioner.resolve(resources[name]["Properties"]["AlarmName"])
        for name in made
        if resources[name]["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert wanted and wanted <= alarms
    assert cloudwatch.get_dashboard(DashboardName=f"clm-{STAGE}")["DashboardName"] == f"clm-{STAGE}"
