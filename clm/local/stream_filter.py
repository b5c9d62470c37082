"""The table stream's event filters (`FilterCriteria` of its event source in `infra/`), applied
by the local stack as Lambda applies them: a record that matches no filter never reaches the
handler, and is not retried.

Only the parts of Lambda's filter syntax the template uses are understood: a pattern is a JSON
object whose leaves are lists of allowed values, each an exact value or `{"prefix": ...}`.
Anything else raises, so that a filter the local stack would read differently fails loudly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clm.local.provision import TEMPLATE


def patterns(template: Path = TEMPLATE) -> list[dict[str, Any]]:
    """The stream event source's filter patterns (none: every record passes)."""
    resources = json.loads(template.read_text())["Resources"]
    events = resources["TableStream"]["Properties"]["Events"]
    source = events["TableStreamDynamodbEventSource"]["Properties"]
    return [json.loads(f["Pattern"]) for f in source.get("FilterCriteria", {}).get("Filters", [])]


def _allowed(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        if set(rule) != {"prefix"}:
            raise ValueError(f"unsupported filter rule {rule!r}")
        return isinstance(value, str) and value.startswith(rule["prefix"])
    return bool(rule == value)


def matches(pattern: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """Whether the record matches the pattern: every field the pattern names matches one of its
    allowed values (a field the record lacks matches nothing)."""
    for field, rule in pattern.items():
        if field not in record:
            return False
        value = record[field]
        if isinstance(rule, dict):
            if not isinstance(value, Mapping) or not matches(rule, value):
                return False
        elif isinstance(rule, list):
            if not any(_allowed(r, value) for r in rule):
                return False
        else:
            raise ValueError(f"unsupported filter {field}: {rule!r}")
    return True


def passes(filters: list[dict[str, Any]], record: Mapping[str, Any]) -> bool:
    """Lambda's rule: with no filters every record passes; else a record must match one."""
    return not filters or any(matches(p, record) for p in filters)
