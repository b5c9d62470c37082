"""Create the resources of `infra/resources.json` on an AWS endpoint (the embedded one, or a mock).

The CloudFormation template is the single definition: deployment merges it into the Chalice
package, and this module reads the same file and makes the same resources with plain API calls
(moto's CloudFormation skips alarms and subscriptions, and is slower).

What only the merged package defines (Chalice's functions and API) does not exist here: the local
stack runs the handlers in threads. Alarms on those functions are skipped (`skipped` names them);
any other resource that needs one is an error. Encryption settings (the table's and the topics'
KMS key, SQS-managed SSE) are passed through: moto records them and encrypts nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from chalicelib import aws
from chalicelib.settings import get_settings

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "resources.json"
SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def parameters(template: Path = TEMPLATE) -> dict[str, str]:
    """The template's parameters with their defaults (as CloudFormation would take them)."""
    declared = json.loads(template.read_text()).get("Parameters", {})
    return {name: str(spec["Default"]) for name, spec in declared.items() if "Default" in spec}


class Provisioner:
    def __init__(
        self,
        stage: str,
        template: Path = TEMPLATE,
        overrides: dict[str, str] | None = None,
        monitoring: bool = True,
    ) -> None:
        settings = get_settings()
        self.monitoring = monitoring
        self.template = json.loads(template.read_text())
        # The resources this file defines (the others are fragments merged into Chalice's).
        self.own = {name for name, resource in self.template["Resources"].items() if "Type" in resource}
        self.params = {
            **parameters(template),
            **(overrides or {}),
            "Stage": stage,
            "AWS::Region": settings.region,
            "AWS::AccountId": settings.account,
            "AWS::Partition": "aws-cn" if settings.region.startswith("cn-") else "aws",
            "AWS::StackName": f"clm-{stage}",
        }
        self.refs: dict[str, str] = {}
        self.attrs: dict[tuple[str, str], str] = {}
        self.skipped: list[str] = []  # alarms on resources only the merged package has (its functions)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if "Ref" in value:
                name = value["Ref"]
                return self.params.get(name) or self.refs[name]
            if "Fn::GetAtt" in value:
                logical, attr = value["Fn::GetAtt"]
                return self.attrs[(logical, attr)]
            if "Fn::Sub" in value:
                return SUB_VARIABLE.sub(lambda m: str(self._variable(m[1])), value["Fn::Sub"])
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _variable(self, name: str) -> str:
        """A `${Name}` or `${Logical.Attribute}` of `Fn::Sub`."""
        if name in self.params:
            return self.params[name]
        if "." in name:
            logical, attr = name.split(".", 1)
            return self.attrs[(logical, attr)]
        return self.refs[name]

    def run(self) -> dict[str, str]:
        """Create every resource, each after those it refers to (else in template order)."""
        makers: dict[str, Callable[[str, dict[str, Any]], None]] = {
            "AWS::DynamoDB::Table": self.table,
            "AWS::KMS::Key": self.kms_key,
            "AWS::KMS::Alias": self.kms_alias,
            "AWS::SNS::Topic": self.topic,
            "AWS::SQS::Queue": self.queue,
            "AWS::CloudWatch::Alarm": self.alarm,
            "AWS::CloudWatch::Dashboard": self.dashboard,
        }
        resources = self.template["Resources"]
        for logical in self.order():
            resource = resources[logical]
            if not self.monitoring and resource["Type"] in MONITORING:
                continue
            outside = self.outside(resource)
            if outside and resource["Type"] == "AWS::CloudWatch::Alarm":
                self.skipped.append(logical)  # it watches a Chalice function: there is none locally
                continue
            if outside:
                raise ValueError(f"the local stack cannot create {logical}: it needs {sorted(outside)}")
            maker = makers.get(resource["Type"])
            if maker is None:
                raise ValueError(f"the local stack cannot create {resource['Type']} ({logical})")
            maker(logical, self.resolve(resource.get("Properties", {})))
        return dict(self.refs)

    def outside(self, resource: dict[str, Any]) -> set[str]:
        """What a resource refers to that neither this file nor CloudFormation defines."""
        return {name for name in _referenced(resource) if name not in self.params and name not in self.own}

    def order(self) -> list[str]:
        """The file's own resources, each after the resources it refers to."""
        resources = self.template["Resources"]
        done: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in done:
                return
            if name in visiting:
                raise ValueError(f"{name} refers to itself through other resources")
            visiting.add(name)
            for needed in sorted(_referenced(resources[name]) & self.own):
                visit(needed)
            visiting.discard(name)
            done.append(name)

        for name in resources:
            if name in self.own:
                visit(name)
        return done

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
        sse = props.get("SSESpecification")
        if sse:
            args["SSESpecification"] = {
                "Enabled": sse["SSEEnabled"],
                **{key: sse[key] for key in ("SSEType", "KMSMasterKeyId") if key in sse},
            }
        try:
            described = ddb.create_table(**args)["TableDescription"]
        except ddb.exceptions.ResourceInUseException:
            described = ddb.describe_table(TableName=props["TableName"])["Table"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(TableName=props["TableName"], TimeToLiveSpecification=ttl)
        pitr = props.get("PointInTimeRecoverySpecification")
        if pitr:
            ddb.update_continuous_backups(TableName=props["TableName"], PointInTimeRecoverySpecification=pitr)
        self.refs[logical] = props["TableName"]
        self.attrs[(logical, "Arn")] = described["TableArn"]
        if described.get("LatestStreamArn"):
            self.attrs[(logical, "StreamArn")] = described["LatestStreamArn"]

    def kms_key(self, logical: str, props: dict[str, Any]) -> None:
        """The key, or the one a kept local stack already has (what it sealed needs it), found by
        the alias the template gives it. Its key policy is left out: moto does not enforce one."""
        kms = aws.client("kms")
        for alias in self._aliases_of(logical):
            try:
                found = kms.describe_key(KeyId=alias)["KeyMetadata"]
            except kms.exceptions.NotFoundException:
                continue
            if found.get("KeyState") == "Enabled":
                self.refs[logical] = found["KeyId"]
                self.attrs[(logical, "Arn")] = found["Arn"]
                return
        key = kms.create_key(Description=props.get("Description", logical))["KeyMetadata"]
        self.refs[logical] = key["KeyId"]
        self.attrs[(logical, "Arn")] = key["Arn"]

    def _aliases_of(self, logical: str) -> Iterator[str]:
        for resource in self.template["Resources"].values():
            props = resource.get("Properties", {})
            if resource.get("Type") == "AWS::KMS::Alias" and props.get("TargetKeyId") == {"Ref": logical}:
                yield self.resolve(props["AliasName"])

    def kms_alias(self, logical: str, props: dict[str, Any]) -> None:
        kms = aws.client("kms")
        try:
            kms.create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
        except kms.exceptions.AlreadyExistsException:
            kms.update_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
        self.refs[logical] = props["AliasName"]

    def topic(self, logical: str, props: dict[str, Any]) -> None:
        attributes = {key: str(props[key]) for key in ("KmsMasterKeyId",) if key in props}
        arn = aws.client("sns").create_topic(Name=props["TopicName"], Attributes=attributes)["TopicArn"]
        self.refs[logical] = arn
        self.attrs[(logical, "TopicName")] = props["TopicName"]

    def queue(self, logical: str, props: dict[str, Any]) -> None:
        sqs = aws.client("sqs")
        names = (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "RedrivePolicy",
            "DelaySeconds",
            "SqsManagedSseEnabled",
        )
        attributes = {
            key: json.dumps(value) if isinstance(value, dict | bool) else str(value)
            for key, value in props.items()
            if key in names
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
            "Metrics",
            "EvaluationPeriods",
            "DatapointsToAlarm",
            "Threshold",
            "ComparisonOperator",
            "TreatMissingData",
            "AlarmActions",
            "OKActions",
        )
        aws.client("cloudwatch").put_metric_alarm(**{k: v for k, v in props.items() if k in allowed})
        self.refs[logical] = props["AlarmName"]

    def dashboard(self, logical: str, props: dict[str, Any]) -> None:
        aws.client("cloudwatch").put_dashboard(
            DashboardName=props["DashboardName"], DashboardBody=props["DashboardBody"]
        )
        self.refs[logical] = props["DashboardName"]


def _referenced(value: Any) -> set[str]:
    """The names a resource (or part of one) refers to: `Ref`, `Fn::GetAtt`, `Fn::Sub`, `DependsOn`."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else str(inner).split(".", 1)[0])
            elif key == "Fn::Sub" and isinstance(inner, str):
                found |= {m[1].split(".", 1)[0] for m in SUB_VARIABLE.finditer(inner)}
            elif key == "DependsOn":
                found |= {inner} if isinstance(inner, str) else set(inner)
            else:
                found |= _referenced(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _referenced(inner)
    return found


MONITORING = frozenset({"AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard"})


def provision(
    stage: str | None = None, overrides: dict[str, str] | None = None, *, monitoring: bool = True
) -> dict[str, str]:
    """Create the stage's resources on the configured endpoint; returns logical id -> physical id.

    `monitoring=False` leaves out the alarms and the dashboard: the code never reads them, so
    the tests' mocked accounts (hundreds of them, one per test) go without."""
    return Provisioner(stage or get_settings().stage, overrides=overrides, monitoring=monitoring).run()
