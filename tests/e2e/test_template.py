"""The template `make package` deploys, read as CloudFormation would: every function there, with
the memory the local stack assumes, its event source pointed at the real resource, and a role
that allows what the code calls and little else (the defects a new user found, each caught)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from clm.local import stream_filter

ROOT = Path(__file__).resolve().parents[2]
MEMORY_MB = 512  # what the local stack's Lambda contexts report (clm/local/stack.py)
# What CLM's Lambdas call: PynamoDB's item operations and transactions, the stream and queue
# event sources, SNS topics and SMS, the KMS key that seals secrets.
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
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
}
UNSCOPED = {"sns:Publish", "sns:CheckIfPhoneNumberIsOptedOut", "dynamodb:ListStreams"}  # SMS has no ARN


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("package")
    env = {**os.environ, "CLM_STAGE": "dev", "AWS_DEFAULT_REGION": "cn-north-1"}
    chalice = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "chalice"
    subprocess.run(
        [str(chalice), "package", "--stage", "dev", "--merge-template", "infra/resources.json", str(out)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    loaded: dict[str, Any] = json.loads((out / "sam.json").read_text())
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
