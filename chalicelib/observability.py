"""Logger and metrics shared by every handler (Powertools). No personal data in either."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="clm")
metrics = Metrics(namespace="CLM", service="clm")
