"""Faults injected at the botocore level: DynamoDB throttling, SNS publish failures, a dying Lambda.

A fault is an HTTP answer in place of moto's (a 400 `ProvisionedThroughputExceededException`, a
500 `InternalError`...): botocore parses it, its standard retry mode retries it, and PynamoDB and
Powertools map it into their own errors exactly as they would a real one. Nothing reaches moto
when a fault is injected: the request never happened (a clean failure, never an ambiguous one
whose effect landed). A `kill` rule instead raises `Killed`, which no `except Exception` stops:
the Lambda died in that call, with no clean-up at all.

Faults are decided per logical call (botocore's `amz-sdk-invocation-id`): a call picked to fail
fails its first attempt, its first two, ..., or every attempt, so some throttles are absorbed by
botocore's retries and some reach the app (its own retries, the work queue, the DLQ). Each
decision is drawn from the seed, what the call is about (the operation and the table keys it
names, or the publish's target and message) and how many times that was asked before; not from
the order of all calls, which follows set iteration and so changes from process to process.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

EVERY_ATTEMPT = 1_000  # more attempts than any client makes
KEY_NAMES = frozenset({"pk", "sk", "gsi1pk"})


class Killed(BaseException):
    """The Lambda running this call died (timeout, out of memory): nothing after it ran."""


@dataclass(frozen=True)
class Rule:
    """Which calls may fail, how often, and how.

    `rate`: the share of logical calls that fail at least once; `attempts`: weights of how many
    of their attempts fail (1, 2, ..., the last weight: every attempt); `errors`: (status, code),
    used in turn; `about`: only calls whose identity (see `identity`) it accepts; `limit`: at
    most this many calls faulted; `kill`: raise `Killed` instead of answering."""

    service: str  # botocore's hyphenated service id: dynamodb, sns
    rate: float
    attempts: Sequence[float] = (0.0, 0.0, 1.0)
    errors: Sequence[tuple[int, str]] = ((400, "ProvisionedThroughputExceededException"),)
    operations: frozenset[str] | None = None  # None: every operation of the service
    about: Callable[[str], bool] | None = None
    limit: int | None = None
    kill: bool = False


@dataclass
class Tally:
    """What was injected, by `service.Operation`: logical calls seen, calls faulted, attempts
    faulted, calls that failed every attempt (the app saw those)."""

    calls: Counter[str] = field(default_factory=Counter)
    faulted_calls: Counter[str] = field(default_factory=Counter)
    faulted_attempts: Counter[str] = field(default_factory=Counter)
    surfaced: Counter[str] = field(default_factory=Counter)
    backoff_skipped_s: float = 0.0  # botocore's retry sleeps, skipped (a throttle backs off up to 1 s)

    def of(self, counter: Counter[str], service: str) -> int:
        return sum(n for name, n in counter.items() if name.split(".", 1)[0] == service)


def _error_body(service: str, code: str) -> tuple[dict[str, str], bytes]:
    """The error as the service's protocol spells it (DynamoDB: JSON 1.0; SNS: query XML)."""
    if service == "dynamodb":
        body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected fault"}
        return {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(body).encode()
    kind = "Receiver" if code == "InternalError" else "Sender"
    xml = (
        '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
        f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>injected fault</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    )
    return {"Content-Type": "text/xml"}, xml.encode()


def _keys(value: Any) -> Iterator[str]:
    """`name=value` of every key attribute named anywhere in a DynamoDB request."""
    if isinstance(value, dict):
        for name, inner in value.items():
            if name in KEY_NAMES and isinstance(inner, dict) and isinstance(inner.get("S"), str):
                yield f"{name}={inner['S']}"
            else:
                yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


def identity(service: str, operation: str, body: bytes) -> str:
    """What a call is about, the same in every run: the keys a DynamoDB request names (a Query:
    its string values too), or an SNS publish's target and message; never times or random ids."""
    if service == "dynamodb":
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return operation
        values = request.pop("ExpressionAttributeValues", {})
        found = sorted(_keys(request))
        if operation == "Query":
            found += sorted(f"{k}={v['S']}" for k, v in values.items() if isinstance(v, dict) and "S" in v)
        return "|".join([operation, *found])
    form = parse_qs((body or b"").decode())
    return "|".join(
        [operation, *(form.get(name, [""])[0] for name in ("TopicArn", "PhoneNumber", "Message"))]
    )


def _header(request: Any, name: str) -> str:
    value = request.headers.get(name, "")
    return value.decode() if isinstance(value, bytes) else str(value)


def _body(request: Any) -> bytes:
    body = request.body
    if isinstance(body, str):
        return body.encode()
    return body if isinstance(body, bytes) else b""


class Injector:
    """Answers some requests with an error instead of moto; see the module docstring."""

    def __init__(self, seed: int, rules: Sequence[Rule]) -> None:
        self.seed = seed
        self.rules = list(rules)
        self.tally = Tally()
        self.enabled = True
        self._asked: Counter[str] = Counter()  # identity -> logical calls so far
        self._used: Counter[int] = Counter()  # rule index -> calls faulted
        self._plans: dict[str, tuple[int, Rule]] = {}  # invocation id -> attempts that fail, and how
        self._lock = threading.Lock()

    def _plan(self, service: str, operation: str, about: str) -> tuple[int, Rule | None]:
        """How many attempts of a new logical call fail (0: none), under which rule."""
        for index, rule in enumerate(self.rules):
            if rule.service != service or (rule.operations is not None and operation not in rule.operations):
                continue
            if rule.about is not None and not rule.about(about):
                continue
            if rule.limit is not None and self._used[index] >= rule.limit:
                continue
            digest = hashlib.sha256(f"{self.seed}|{index}|{about}|{self._asked[about]}".encode()).digest()
            draw = random.Random(digest)
            if draw.random() >= rule.rate:
                return 0, None
            self._used[index] += 1
            weights = list(rule.attempts)
            failing = draw.choices(range(1, len(weights) + 1), weights)[0]
            return (EVERY_ATTEMPT if failing == len(weights) else failing), rule
        return 0, None

    def fault(self, event_name: str, request: Any) -> tuple[int, dict[str, str], bytes] | None:
        """The error answer for this attempt of a request, or None to let moto answer it."""
        _, service, operation = [*event_name.split("."), "", ""][:3]
        if not self.enabled or not any(rule.service == service for rule in self.rules):
            return None
        invocation = _header(request, "amz-sdk-invocation-id")
        retries = _header(request, "amz-sdk-request")  # attempt=2; max=3
        fields = dict(part.strip().split("=", 1) for part in retries.split(";") if "=" in part)
        attempt, last = int(fields.get("attempt", "1")), int(fields.get("max", "1") or 1)
        name = f"{service}.{operation}"
        with self._lock:
            if attempt == 1 or invocation not in self._plans:
                about = identity(service, operation, _body(request))
                self._asked[about] += 1
                self.tally.calls[name] += 1
                failing, rule = self._plan(service, operation, about)
                if rule is None:
                    return None
                self.tally.faulted_calls[name] += 1
                self._plans[invocation] = (failing, rule)
            failing, rule = self._plans[invocation]
            if attempt > failing:
                del self._plans[invocation]
                return None
            self.tally.faulted_attempts[name] += 1
            if attempt >= last or rule.kill:
                self.tally.surfaced[name] += 1  # botocore gives up after this attempt
                del self._plans[invocation]
            status, code = rule.errors[(self.tally.faulted_attempts[name] - 1) % len(rule.errors)]
        if rule.kill:
            raise Killed(f"the Lambda died in {name}")
        extra, body = _error_body(service, code)
        return status, {"x-amzn-RequestId": "injected", **extra}, body

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No faults inside."""
        before, self.enabled = self.enabled, False
        try:
            yield
        finally:
            self.enabled = before


def install(monkeypatch: Any, injector: Injector) -> None:
    """Put `injector` in front of moto's answers, and skip botocore's retry sleeps (counted)."""
    from botocore.awsrequest import AWSResponse
    from botocore.retries.standard import ExponentialBackoff
    from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

    answer = BotocoreStubber.__call__

    def stubbed(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        if self.enabled:
            found = injector.fault(event_name, request)
            if found is not None:
                status, headers, body = found
                return AWSResponse(request.url, status, headers, MockRawResponse(body))
        return answer(self, event_name, request, **kwargs)

    delay = ExponentialBackoff.delay_amount

    def no_sleep(self: Any, context: Any) -> float:
        injector.tally.backoff_skipped_s += delay(self, context)
        return 0.0

    monkeypatch.setattr(BotocoreStubber, "__call__", stubbed)
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", no_sleep)
