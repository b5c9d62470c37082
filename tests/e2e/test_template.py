"""The template `make package` deploys, read as CloudFormation would: every function there, with
the memory the local stack assumes, its event source pointed at the real resource, and a role
that allows what the code calls and little else (the defects a new user found, each caught);
encryption at rest with CLM's key, alarms to ops on what the code really emits, a dashboard,
and cfn-lint's approval."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clm.local import stream_filter

ROOT = Path(__file__).resolve().parents[2]
MEMORY_MB = 512  # what the local stack's Lambda contexts report (clm/local/stack.py)
# What CLM's Lambdas call: PynamoDB's item operations and transactions, the stream and queue
# event sources, SNS topics and SMS, the KMS key that seals secrets and data keys (GenerateDataKey,
# Decrypt), with which the table and the topics are encrypted too (DynamoDB reads and SNS publishes
# ask KMS on the caller's behalf).
NEEDED = {
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:Query",
    "dynamodb:BatchWriteItem",
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sns:Publish",
    "sns:CheckIfPhoneNumberIsOptedOut",
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
}
UNSCOPED = {"sns:Publish", "sns:CheckIfPhoneNumberIsOptedOut", "dynamodb:ListStreams"}  # SMS has no ARN


BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
OPS = [{"Ref": "OpsTopic"}]
KEY_ARN = {"Fn::GetAtt": ["SecretsKey", "Arn"]}


@pytest.fixture(scope="module")
def package(packaged: Path) -> Path:
    """The packaged app's directory (`sam.json` beside `deployment.zip`), as `make package` leaves it."""
    return packaged


@pytest.fixture(scope="module")
def template(package: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((package / "sam.json").read_text())
    return loaded


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: r["Properties"]
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function"
    }


def test_every_function_is_there_with_the_local_stack_s_memory(template: dict[str, Any]) -> None:
    import app

    functions = _functions(template)
    handlers = {props["Handler"] for props in functions.values()}
    assert "app.app" in handlers
    workers = [h.func for h in app.app.handler_map.values() if hasattr(h, "func")]
    assert len(workers) == 4  # the stream, the work queue and two schedules
    for handler in workers:
        assert f"{handler.__module__}.{handler.__name__}" in handlers
    assert {props["MemorySize"] for props in functions.values()} == {MEMORY_MB}


def test_the_event_sources_point_at_the_table_s_stream_and_the_work_queue(template: dict[str, Any]) -> None:
    functions = _functions(template)
    (stream,) = functions["TableStream"]["Events"].values()
    assert stream["Properties"]["Stream"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    filters = [json.loads(f["Pattern"]) for f in stream["Properties"]["FilterCriteria"]["Filters"]]
    assert filters == stream_filter.patterns()  # what the local stack applies
    (queue,) = functions["WorkQueue"]["Events"].values()
    # Chalice names the queue by its ARN; the function waits for the queue to exist.
    assert queue["Properties"]["Queue"] == {
        "Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:clm-dev-work"
    }
    queue_name = template["Resources"]["WorkQueueSqs"]["Properties"]["QueueName"]
    assert queue_name == {"Fn::Sub": "clm-${Stage}-work"}
    assert "WorkQueueSqs" in template["Resources"]["WorkQueue"]["DependsOn"]
    assert queue["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert template["Resources"]["WorkQueueSqs"]["Type"] == "AWS::SQS::Queue"


def test_each_role_allows_what_the_code_calls_and_scopes_it_to_clm_s_resources(
    template: dict[str, Any],
) -> None:
    roles = {
        name: r["Properties"] for name, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"
    }
    used = {f["Role"]["Fn::GetAtt"][0] for f in _functions(template).values()}
    assert used <= set(roles)
    for name in used:
        allowed: set[str] = set()
        for policy in roles[name]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow"
                actions = set(statement["Action"])
                assert not any("*" in a for a in actions), statement
                if statement["Resource"] == "*":
                    assert actions <= UNSCOPED, statement
                allowed |= actions
        assert allowed == NEEDED, (NEEDED - allowed, allowed - NEEDED)  # all it calls, nothing else


def test_every_aws_call_in_the_code_is_one_the_role_allows() -> None:
    """Direct client calls (`aws.client("kms").encrypt(...)`, `sns.publish(...)`) read off the source."""
    names = {"encrypt": "Encrypt", "decrypt": "Decrypt", "publish": "Publish"}
    found = set()
    for path in (ROOT / "chalicelib").rglob("*.py"):
        text = path.read_text()
        for service, op in re.findall(r'aws\.client\("([a-z]+)"\)\.([a-z_]+)\(', text):
            found.add(f"{service}:{names.get(op, ''.join(p.title() for p in op.split('_')))}")
    assert found, "the source makes direct calls"
    assert found <= NEEDED, found - NEEDED


def test_cfn_lint_passes_on_the_packaged_template(package: Path) -> None:
    """In the regions CLM deploys to (China, as `make package` defaults) and in the reference one."""
    linted = subprocess.run(
        [str(BIN / "cfn-lint"), "--regions", "cn-north-1", "us-east-1", "--", str(package / "sam.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (linted.returncode, linted.stdout, linted.stderr) == (0, "", "")


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == kind}


def test_the_table_is_kept_encrypted_with_clm_s_key_recoverable_and_expiring(
    template: dict[str, Any],
) -> None:
    from pynamodb.attributes import TTLAttribute

    from chalicelib.store.models import Item

    table = template["Resources"]["Table"]
    props = table["Properties"]
    assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": KEY_ARN}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    (ttl,) = [a.attr_name for a in Item.get_attributes().values() if isinstance(a, TTLAttribute)]
    assert props["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
    key = template["Resources"]["SecretsKey"]
    for kept in (table, key):  # the table outlives the stack, so must the key it cannot be read without
        assert (kept["DeletionPolicy"], kept["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_topics_are_encrypted_and_alarms_may_publish_to_them(template: dict[str, Any]) -> None:
    from chalicelib.settings import TOPIC_KEYS, resource_names

    topics = _of_type(template, "AWS::SNS::Topic")
    names = {r["Properties"]["TopicName"]["Fn::Sub"] for r in topics.values()}
    assert names == {resource_names("${Stage}")[key] for key in TOPIC_KEYS}
    assert all(r["Properties"]["KmsMasterKeyId"] == KEY_ARN for r in topics.values())
    statements = template["Resources"]["SecretsKey"]["Properties"]["KeyPolicy"]["Statement"]
    (alarms,) = [s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert set(alarms["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    queues = _of_type(template, "AWS::SQS::Queue")
    assert queues and all(r["Properties"]["SqsManagedSseEnabled"] is True for r in queues.values())


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in _of_type(template, "AWS::CloudWatch::Alarm").items()}


def test_every_alarm_tells_ops_what_it_means_and_what_to_do(template: dict[str, Any]) -> None:
    alarms = _alarms(template)
    assert alarms
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == OPS, name
        assert 80 <= len(alarm["AlarmDescription"]) <= 1024, name  # meaning and action; CloudWatch's limit
        assert alarm["AlarmName"]["Fn::Sub"].startswith("clm-${Stage}-"), name


def test_each_function_has_an_errors_and_a_throttles_alarm(template: dict[str, Any]) -> None:
    watched: dict[str, set[str]] = {}
    for alarm in _alarms(template).values():
        if alarm.get("Namespace") == "AWS/Lambda":
            (dimension,) = alarm["Dimensions"]
            assert dimension["Name"] == "FunctionName"
            assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 1)
            assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
            watched.setdefault(dimension["Value"]["Ref"], set()).add(alarm["MetricName"])
    assert watched == {name: {"Errors", "Throttles"} for name in _functions(template)}


# --- what the code emits (chalicelib/observability.py: namespace CLM, dimension service=clm) --------


def _calls(tree: ast.AST) -> Iterator[ast.Call]:
    return (node for node in ast.walk(tree) if isinstance(node, ast.Call))


def _text(node: ast.expr) -> str | None:
    """A literal string argument, or None for a computed one (any value)."""
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _method_calls(statements: list[ast.stmt]) -> list[tuple[str, ast.Call]]:
    """The `x.method(...)` calls that are statements of this list themselves (not nested deeper)."""
    return [
        (stmt.value.func.attr, stmt.value)
        for stmt in statements
        if isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Call)
        and isinstance(stmt.value.func, ast.Attribute)
    ]


def _name(call: ast.Call) -> str | None:
    """A metric's or a dimension's name: the first argument, or `name=`."""
    given = call.args[:1] + [k.value for k in call.keywords if k.arg == "name"]
    return _text(given[0]) if given else None


def _names(call: ast.Call, statements: list[ast.stmt]) -> list[str]:
    """A metric's names: a literal, or each literal a variable assigned beside the call may hold
    (`name = "EventsAccepted" if ... else "EventsDuplicate"`)."""
    literal = _name(call)
    if literal is not None:
        return [literal]
    given = call.args[:1] + [k.value for k in call.keywords if k.arg == "name"]
    if not given or not isinstance(given[0], ast.Name):
        return []
    variable = given[0].id
    return [
        text
        for stmt in statements
        if isinstance(stmt, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == variable for t in stmt.targets)
        for node in ast.walk(stmt.value)
        if isinstance(node, ast.Constant) and isinstance(text := node.value, str)
    ]


def emitted() -> dict[str, list[dict[str, str | None]]]:
    """Every metric the code emits, with the dimensions of each emission besides `service`
    (a computed value is None), read off the source: `count(...)` and the API's `metrics` object."""
    found: dict[str, list[dict[str, str | None]]] = {}
    for path in (ROOT / "chalicelib").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for call in _calls(tree):
            if isinstance(call.func, ast.Name) and call.func.id == "count" and call.args:
                name = _text(call.args[0])
                dims = {
                    k.arg: _text(k.value) for k in call.keywords if k.arg and k.arg not in ("value", "unit")
                }
                if name is not None:
                    found.setdefault(name, []).append(dims)
        for node in ast.walk(tree):
            for field in ("body", "orelse", "finalbody"):
                statements = getattr(node, field, None)
                if not isinstance(statements, list):
                    continue
                # `metrics.add_dimension(...)` applies to the `add_metric` beside it (the flush clears both).
                calls = _method_calls(statements)
                added: dict[str, str | None] = {
                    str(_name(c)): None for method, c in calls if method == "add_dimension"
                }
                for method, call in calls:
                    for metric in _names(call, statements) if method == "add_metric" else []:
                        found.setdefault(metric, []).append(dict(added))
    return found


def _is_emitted(namespace: str, name: str, dimensions: dict[str, str]) -> bool:
    """Whether the code emits exactly this series (CloudWatch matches every dimension, no subset)."""
    from chalicelib.observability import metrics

    if namespace != "CLM" or dimensions.pop("service", None) != metrics.service:
        return False
    return any(
        set(dims) == set(dimensions) and all(v is None or dimensions[k] == v for k, v in dims.items())
        for dims in emitted().get(name, [])
    )


def _metric_stats(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    if "Metrics" in alarm:
        stats = [m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m]
        assert [m for m in alarm["Metrics"] if m.get("ReturnData", True)] and all(
            "SEARCH" not in m.get("Expression", "") for m in alarm["Metrics"]
        )
    else:
        stats = [alarm]
    return [
        (s["Namespace"], s["MetricName"], {d["Name"]: d["Value"] for d in s.get("Dimensions", [])})
        for s in stats
    ]


def test_alarms_on_clm_s_metrics_watch_series_the_code_emits(template: dict[str, Any]) -> None:
    for name, alarm in _alarms(template).items():
        for namespace, metric, dims in _metric_stats(alarm):
            if namespace == "CLM":
                assert _is_emitted(namespace, metric, dict(dims)), (name, metric, dims)


def _watching(template: dict[str, Any], namespace: str, metric: str) -> list[dict[str, Any]]:
    return [
        a for a in _alarms(template).values() if any(s[:2] == (namespace, metric) for s in _metric_stats(a))
    ]


def test_the_operational_alarms_are_there(template: dict[str, Any]) -> None:
    (dlq,) = _watching(template, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dlq["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}
    ]
    assert (dlq["Threshold"], dlq["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    (red,) = _watching(template, "CLM", "RedAlertsRaised")
    assert (red["Threshold"], red["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")  # any
    for metric in ("SmsFailed", "SlaBreaches"):
        assert len(_watching(template, "CLM", metric)) == 1, metric


def test_the_401_alarm_counts_every_reason_a_webhook_is_answered_401(template: dict[str, Any]) -> None:
    """The reasons are those the webhook path raises `Unauthenticated` with (EMF has no wildcard)."""
    source = ast.parse((ROOT / "chalicelib" / "service" / "ingest.py").read_text())
    reasons = {
        _text(c.args[0])
        for c in _calls(source)
        if isinstance(c.func, ast.Attribute) and c.func.attr == "Unauthenticated" and c.args
    }
    (alarm,) = _watching(template, "CLM", "EventsRejected")
    stats = _metric_stats(alarm)
    assert reasons and {dims["reason"] for _, _, dims in stats} == reasons
    (total,) = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    assert all(f"FILL({m['Id']}, 0)" in total["Expression"] for m in alarm["Metrics"] if "MetricStat" in m)


def test_the_dashboard_shows_ingest_reminders_alerts_breaches_and_kpis(template: dict[str, Any]) -> None:
    from chalicelib.service.kpis import METRIC_NAMES

    (dashboard,) = _of_type(template, "AWS::CloudWatch::Dashboard").values()
    text = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    variables = set(re.findall(r"\$\{([^}]+)\}", text))
    resources = set(template["Resources"]) | set(template["Parameters"])
    assert {v.split(".")[0] for v in variables if not v.startswith("AWS::")} <= resources
    body = json.loads(re.sub(r"\$\{[^}]+\}", "x", text))
    widgets = [w["properties"] for w in body["widgets"] if w["type"] == "metric"]
    assert all(w["region"] == "x" for w in widgets)
    rows = [row for w in widgets for row in w["metrics"]]
    assert all(
        isinstance(row, list) and row for row in rows
    )  # each series a row (a list), as CloudWatch reads
    shown: set[str] = set()
    for row in rows:
        if isinstance(row[0], dict):  # a SEARCH (any dimensions: it finds what there is)
            shown |= set(re.findall(r'MetricName="(\w+)"', row[0]["expression"]))
            continue
        names = [part for part in row if isinstance(part, str)]
        if names[0] == "CLM":  # an explicit series must be one the code emits
            assert _is_emitted("CLM", names[1], dict(zip(names[2::2], names[3::2], strict=True))), row
        shown.add(names[1])
    wanted = {"EventsAccepted", "EventsDuplicate", "EventsRejected", "EventsIgnored", "RemindersFired"}
    wanted |= {"RemindersFailed", "SmsFailed", "RedAlertsRaised", "SlaBreaches"}
    wanted |= {metric for metric, _, _ in METRIC_NAMES.values()}
    assert wanted <= shown, wanted - shown
    for status in ("sent", "deferred", "suppressed"):
        assert ["CLM", "RemindersFired", "service", "clm", "status", status] in [r[:6] for r in rows]
    kpi_searches = [
        r[0]["expression"] for r in rows if isinstance(r[0], dict) and "Kpi" in r[0]["expression"]
    ]
    assert len(kpi_searches) == len(METRIC_NAMES) and all("dealer_id" in e for e in kpi_searches)
