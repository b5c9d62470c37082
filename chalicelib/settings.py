"""Runtime settings, read from the environment once and cached.

Every resource name derives from the stage so that `infra/`, the Lambda environment and the
local stack agree without a lookup: the table is ``clm-<stage>``, topics and queues are
``clm-<stage>-<name>``. Explicit ``CLM_*`` variables win (the deployed template sets them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from chalicelib import runtime

MOTO_ACCOUNT = "123456789012"
TOPIC_KEYS = ("red_alerts", "staff_tasks", "ops")
QUEUE_KEYS = ("work", "dlq")
WORK_MAX_RECEIVES = 5  # the work queue's maxReceiveCount in infra/resources.json (a test keeps them equal)


def resource_names(stage: str) -> dict[str, str]:
    """The physical names of every resource of a stage (also used by `infra/` provisioning)."""
    prefix = f"clm-{stage}"
    return {
        "table": prefix,
        "red_alerts": f"{prefix}-red-alerts",
        "staff_tasks": f"{prefix}-staff-tasks",
        "ops": f"{prefix}-ops",
        "work": f"{prefix}-work",
        "dlq": f"{prefix}-dlq",
        "kms_alias": f"alias/{prefix}",
    }


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    account: str
    endpoint_url: str | None
    table_name: str
    topics: dict[str, str]
    queue_urls: dict[str, str]
    kms_key_id: str
    local_tz: str
    due_shards: int
    work_visibility_seconds: int
    work_consumer_seconds: int
    sms_brand: str
    sms_rate: int
    sms_run_seconds: float
    commission_lowered_factor: float
    payload_retention_days: int

    @property
    def stream_arn(self) -> str:
        return os.environ.get(
            "CLM_TABLE_STREAM_ARN",
            f"arn:aws:dynamodb:{self.region}:{self.account}:table/{self.table_name}/stream/local",
        )


def _queue_url(endpoint: str | None, region: str, account: str, name: str) -> str:
    suffix = ".cn" if region.startswith("cn-") else ""
    base = endpoint.rstrip("/") if endpoint else f"https://sqs.{region}.amazonaws.com{suffix}"
    return f"{base}/{account}/{name}"


def _positive_int(env: os._Environ[str] | dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of days, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Build settings from the environment; `runtime.reset()` after changing it (tests, CLI)."""
    env = os.environ
    stage = env.get("CLM_STAGE", "local")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "cn-north-1"
    account = env.get("CLM_AWS_ACCOUNT", MOTO_ACCOUNT)
    endpoint = env.get("AWS_ENDPOINT_URL") or None
    names = resource_names(stage)
    partition = "aws-cn" if region.startswith("cn-") else "aws"
    topics = {
        key: env.get(f"CLM_TOPIC_{key.upper()}", f"arn:{partition}:sns:{region}:{account}:{names[key]}")
        for key in TOPIC_KEYS
    }
    queues = {
        key: env.get(f"CLM_QUEUE_{key.upper()}", _queue_url(endpoint, region, account, names[key]))
        for key in QUEUE_KEYS
    }
    return Settings(
        stage=stage,
        region=region,
        account=account,
        endpoint_url=endpoint,
        table_name=env.get("CLM_TABLE_NAME", names["table"]),
        topics=topics,
        queue_urls=queues,
        kms_key_id=env.get("CLM_KMS_KEY_ID", names["kms_alias"]),
        local_tz=env.get("CLM_DEFAULT_TZ", "Asia/Shanghai"),
        # Partitions of the due index; fixed for a table's life. The local stack uses 1 (moto
        # scans the whole table per query, so fewer queries beat spread writes there).
        due_shards=int(env.get("CLM_DUE_SHARDS", "1" if stage == "local" else "4")),
        # The work queue's visibility timeout (infra/ parameter WorkVisibilityTimeout, passed to the
        # sweep's environment): work handed off more recently than this is on its way, not lost.
        work_visibility_seconds=int(env.get("CLM_WORK_VISIBILITY_SECONDS", "360")),
        work_consumer_seconds=int(env.get("CLM_WORK_CONSUMER_SECONDS", "60")),
        # The signature zh-CN SMS start with (【brand】), the account's SMS sends per second (SNS's
        # quota is per account), and how long one sweep may spend sending (the rest waits).
        sms_brand=env.get("CLM_SMS_BRAND", "CLM"),
        sms_rate=int(env.get("CLM_SMS_RATE", "20")),
        sms_run_seconds=float(env.get("CLM_SMS_RUN_SECONDS", "50")),
        # An advisor's commission factor when their month's after-sales satisfaction is below 85.
        commission_lowered_factor=float(env.get("CLM_COMMISSION_LOWERED_FACTOR", "0.9")),
        # Days a final inbox item keeps the raw webhook payload (PIPL); the dedup window (8) at least.
        payload_retention_days=_positive_int(env, "CLM_PAYLOAD_RETENTION_DAYS", 30),
    )


@runtime.keeps_state
def reset_settings() -> None:
    get_settings.cache_clear()
