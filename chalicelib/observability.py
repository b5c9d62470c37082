"""Logger and metrics shared by every handler (Powertools). No personal data in either."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="clm")
metrics = Metrics(namespace="CLM", service="clm")

LOGGED_ID_CHARS = 64


def cut(value: str | None) -> str | None:
    """An identifier as logs may carry it: unauthenticated input is never logged whole."""
    return value if value is None or len(value) <= LOGGED_ID_CHARS else value[:LOGGED_ID_CHARS] + "…"


ERROR_CHARS = 300


def error_summary(error: BaseException) -> str:
    """A failure as logs, the inbox and the outbox keep it: its type and message, phone numbers
    masked (an SNS or validation error may echo one back), cut short."""
    from chalicelib.domain.masking import mask_phones_in

    text = mask_phones_in(f"{type(error).__name__}: {error}")
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS] + "…"


def count(name: str, value: float = 1, unit: str = "Count", **dimensions: str) -> None:
    """Emit one metric now (a Count unless `unit` says otherwise: Seconds, Percent, None), with its
    own dimensions.

    Workers use this instead of the shared `metrics` object: on the local stack the API and the
    workers run in threads of one process, and Powertools keeps that object's metric set and
    dimensions per process.
    """
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(
        name=name, unit=MetricUnit(unit), value=value, namespace="CLM", default_dimensions={"service": "clm"}
    ) as metric:
        for key, dimension in dimensions.items():
            metric.add_dimension(name=key, value=dimension)
