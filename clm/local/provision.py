"""Create the resources of `infra/resources.json` on an AWS endpoint (the embedded one, or a mock).

The CloudFormation template is the single definition: deployment merges it into the Chalice
package, and this module reads the same file and makes the same resources with plain API calls
(moto's CloudFormation skips alarms and subscriptions, and is slower).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalicelib import aws
from chalicelib.settings import get_settings

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "resources.json"


def parameters(template: Path = TEMPLATE) -> dict[str, str]:
    """The template's parameters with their defaults (as CloudFormation would take them)."""
    declared = json.loads(template.read_text()).get("Parameters", {})
    return {name: str(spec["Default"]) for name, spec in declared.items() if "Default" in spec}


class Provisioner:
    def __init__(
        self, stage: str, template: Path = TEMPLATE, overrides: dict[str, str] | None = None
    ) -> None:
        settings = get_settings()
        self.template = json.loads(template.read_text())
        self.params = {
            **parameters(template),
            **(overrides or {}),
            "Stage": stage,
            "AWS::Region": settings.region,
            "AWS::AccountId": settings.account,
            "AWS::Partition": "aws-cn" if settings.region.startswith("cn-") else "aws",
        }
        self.refs: dict[str, str] = {}
        self.attrs: dict[tuple[str, str], str] = {}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if "Ref" in value:
                name = value["Ref"]
                return self.params.get(name) or self.refs[name]
            if "Fn::GetAtt" in value:
                logical, attr = value["Fn::GetAtt"]
                return self.attrs[(logical, attr)]
            if "Fn::Sub" in value:
                return re.sub(
                    r"\$\{([^}]+)\}",
                    lambda m: str(self.params.get(m[1]) or self.refs[m[1]]),
                    value["Fn::Sub"],
                )
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def run(self) -> dict[str, str]:
        """Create every resource in template order (dependencies come first in the file)."""
        makers: dict[str, Callable[[str, dict[str, Any]], None]] = {
            "AWS::DynamoDB::Table": self.table,
            "AWS::KMS::Key": self.kms_key,
            "AWS::KMS::Alias": self.kms_alias,
            "AWS::SNS::Topic": self.topic,
            "AWS::SQS::Queue": self.queue,
            "AWS::CloudWatch::Alarm": self.alarm,
        }
        for logical, resource in self.template["Resources"].items():
            if "Type" not in resource:
                continue  # properties merged into a resource of Chalice's (the API): the local gateway's own
            maker = makers.get(resource["Type"])
            if maker is None:
                raise ValueError(f"the local stack cannot create {resource['Type']} ({logical})")
            maker(logical, self.resolve(resource.get("Properties", {})))
        return dict(self.refs)

    def table(self, logical: str, props: dict[str, Any]) -> None:
        ddb = aws.client("dynamodb")
        stream = props.get("StreamSpecification")
        args: dict[str, Any] = {
            "TableName": props["TableName"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
            "GlobalSecondaryIndexes": props.get("GlobalSecondaryIndexes", []),
        }
        if props.get("LocalSecondaryIndexes"):
            args["LocalSecondaryIndexes"] = props["LocalSecondaryIndexes"]
        if stream:
            args["StreamSpecification"] = {"StreamEnabled": True, **stream}
        if props.get("SSESpecification"):
            args["SSESpecification"] = {"Enabled": props["SSESpecification"]["SSEEnabled"]}
        try:
            described = ddb.create_table(**args)["TableDescription"]
        except ddb.exceptions.ResourceInUseException:
            described = ddb.describe_table(TableName=props["TableName"])["Table"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(TableName=props["TableName"], TimeToLiveSpecification=ttl)
        self.refs[logical] = props["TableName"]
        self.attrs[(logical, "Arn")] = described["TableArn"]
        if described.get("LatestStreamArn"):
            self.attrs[(logical, "StreamArn")] = described["LatestStreamArn"]

    def kms_key(self, logical: str, props: dict[str, Any]) -> None:
        kms, description = aws.client("kms"), props.get("Description", logical)
        for listed in kms.list_keys()["Keys"]:  # a kept local stack already has its key: the secrets need it
            found = kms.describe_key(KeyId=listed["KeyId"])["KeyMetadata"]
            if found.get("Description") == description and found.get("KeyState") == "Enabled":
                self.refs[logical] = found["KeyId"]
                self.attrs[(logical, "Arn")] = found["Arn"]
                return
        key = kms.create_key(Description=description)["KeyMetadata"]
        self.refs[logical] = key["KeyId"]
        self.attrs[(logical, "Arn")] = key["Arn"]

    def kms_alias(self, logical: str, props: dict[str, Any]) -> None:
        kms = aws.client("kms")
        try:
            kms.create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
        except kms.exceptions.AlreadyExistsException:
            kms.update_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
        self.refs[logical] = props["AliasName"]

    def topic(self, logical: str, props: dict[str, Any]) -> None:
        arn = aws.client("sns").create_topic(Name=props["TopicName"])["TopicArn"]
        self.refs[logical] = arn
        self.attrs[(logical, "TopicName")] = props["TopicName"]

    def queue(self, logical: str, props: dict[str, Any]) -> None:
        sqs = aws.client("sqs")
        attributes = {
            key: json.dumps(value) if isinstance(value, dict) else str(value)
            for key, value in props.items()
            if key in ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy", "DelaySeconds")
        }
        url = sqs.create_queue(QueueName=props["QueueName"], Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.refs[logical] = url
        self.attrs[(logical, "Arn")] = arn
        self.attrs[(logical, "QueueName")] = props["QueueName"]

    def alarm(self, logical: str, props: dict[str, Any]) -> None:
        allowed = (
            "AlarmName",
            "AlarmDescription",
            "Namespace",
            "MetricName",
            "Dimensions",
            "Statistic",
            "Period",
            "EvaluationPeriods",
            "Threshold",
            "ComparisonOperator",
            "TreatMissingData",
            "AlarmActions",
        )
        aws.client("cloudwatch").put_metric_alarm(**{k: v for k, v in props.items() if k in allowed})
        self.refs[logical] = props["AlarmName"]


def provision(stage: str | None = None, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Create the stage's resources on the configured endpoint; returns logical id -> physical id."""
    return Provisioner(stage or get_settings().stage, overrides=overrides).run()
