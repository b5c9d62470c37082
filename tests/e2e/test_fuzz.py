"""Schemathesis against the local stack over real HTTP, from the document the stack serves.

Each generated case is sent as it came (no credential: 401, or the gateway's own refusal), with a
wrong credential (401), and with real ones: a Standard Webhooks signature over the exact bytes sent
by a partner whose kind may send the event, an HQ key on the generated ids, the fuzz dealer's key
on its own records. So the fuzz reaches validation and the handlers. Every answer must keep to the
document (a documented status, its content type, its schema) and none may be a 5xx.

`make test` runs a short, derandomized fuzzing phase with a fixed seed, plus the webhook's positive
boundary cases (so valid events get through too); `make fuzz` sets `CLM_FUZZ_EXAMPLES` (cases per
operation; well over 1,000 in all), adds the whole coverage phase (boundary values, missing headers,
methods a route lacks) and draws a new seed unless `CLM_FUZZ_SEED` names one. The figures are
printed at the end, and written as JSON to `CLM_FUZZ_REPORT` if set.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chalicelib.inbound import signatures
from tests.conftest import show_figures
from tests.e2e.conftest import ROOT, RunningStack, new_vin

pytestmark = pytest.mark.e2e

LONG = "CLM_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("CLM_FUZZ_EXAMPLES", "12"))
WEBHOOK_FACTOR = 4
"""The webhook takes every event type: it gets this many times the examples of a read."""
SEED = os.environ.get("CLM_FUZZ_SEED") or ("" if LONG else "20261120")
COVERAGE = os.environ.get("CLM_FUZZ_COVERAGE", "1" if LONG else "0") == "1"

CONFORMANCE: list[Any] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
PARTNERS = {"dealer": "fuzz-dealer", "finance": "fuzz-finance", "hq": "fuzz-hq"}
"""The fuzz's own partners: what it sends never touches the demo partners other tests read."""
WRONG_KEY = "clm_" + "0" * 40
REFUSAL = {"/webhooks/payments/wechatpay": 401, "/webhooks/payments/alipay": 400}
"""A gateway's answer to a notification it did not sign (DESIGN.md §5: 401 `FAIL`, 400 `fail`)."""


class WebhookSigner(requests.auth.AuthBase):
    """Standard Webhooks headers over the body exactly as `requests` sends it, timestamped now."""

    def __init__(self, secret: str, msg_id: str, skew: int = 0) -> None:
        self.key = signatures.secret_key(secret)
        self.msg_id = msg_id
        self.skew = skew

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        raw = body.encode() if isinstance(body, str) else body
        assert isinstance(raw, bytes), type(raw)
        timestamp = int(time.time()) + self.skew
        request.headers["webhook-id"] = self.msg_id
        request.headers["webhook-timestamp"] = str(timestamp)
        request.headers["webhook-signature"] = signatures.sign(self.key, self.msg_id, timestamp, raw)
        return request


class Bearer(requests.auth.AuthBase):
    """An API key, set on the prepared request (so no generated or left-out header drops it)."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.key}"
        return request


@dataclass
class Tally:
    """What the fuzz sent and what came back, by variant of a case."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for (_, status), n in self.statuses.items() if status >= 500)

    def lines(self) -> list[str]:
        by_status, by_variant = Counter[int](), Counter[str]()
        for (variant, status), n in self.statuses.items():
            by_status[status] += n
            by_variant[variant] += n
        return [
            f"fuzz: {sum(self.cases.values())} generated cases over {len(self.cases)} operations, "
            f"{self.requests} requests, {self.server_errors} 5xx in {time.monotonic() - self.started:.0f} s "
            f"(examples={EXAMPLES}, coverage={'all' if COVERAGE else 'webhook positive'}, "
            f"seed={schema.config.seed}{'' if SEED else ', drawn'})",
            "fuzz: statuses " + " ".join(f"{s}:{n}" for s, n in sorted(by_status.items())),
            *(
                f"fuzz:   {variant} ({n}): "
                + " ".join(f"{s}:{k}" for (v, s), k in sorted(self.statuses.items()) if v == variant)
                for variant, n in sorted(by_variant.items())
            ),
            "fuzz: mean ms by variant "
            + " ".join(f"{v}:{1000 * self.seconds[v] / n:.0f}" for v, n in sorted(by_variant.items())),
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "cases": sum(self.cases.values()),
            "cases_by_operation": dict(sorted(self.cases.items())),
            "requests": self.requests,
            "server_errors": self.server_errors,
            "statuses": {f"{v} {s}": n for (v, s), n in sorted(self.statuses.items())},
        }


@dataclass
class Fuzz:
    stack: RunningStack
    credentials: dict[str, dict[str, str]]
    known: dict[str, str]
    """The fuzz dealer's own ids by path parameter name (a vehicle, a customer, a task …)."""
    kinds_of: dict[str, frozenset[str]]
    session: requests.Session
    tally: Tally = field(default_factory=Tally)

    def send(
        self,
        case: Case,
        variant: str,
        expect: Callable[[int], bool],
        auth: requests.auth.AuthBase | None = None,
        checks: list[Any] | None = None,
    ) -> None:
        response = case.call(base_url=self.stack.api, session=self.session, auth=auth)
        self.tally.statuses[(variant, response.status_code)] += 1
        self.tally.seconds[variant] += response.elapsed
        assert expect(response.status_code), (variant, response.status_code, response.text[:500])
        transport = {"base_url": self.stack.api, "session": self.session}
        case.validate_response(response, checks=checks or CONFORMANCE, transport_kwargs=transport)

    def run(self, case: Case) -> None:
        self.tally.cases[case.operation.label] += 1
        routed = all(_routes(value) for value in case.path_parameters.values())
        refused = _refusal(401, routed)
        if case.method.upper() != case.operation.method.upper():
            # A method the route lacks (the coverage phase tries them): 405, with `Allow`.
            self.send(case, "other-method", lambda s: s == 405 or case.method.upper() == "OPTIONS")
        elif case.path == "/webhooks/{partner_id}":
            self.webhook(case, refused)
        elif case.path in REFUSAL:
            self.send(case, "gateway-unsigned", _refusal(REFUSAL[case.path], routed))
        elif case.operation.definition.raw.get("security"):
            self.staff(case, refused)
        else:
            self.send(case, "open", lambda s: s == 200)

    def webhook(self, case: Case, refused: Callable[[int], bool]) -> None:
        # In the short run a boundary case goes signed only: its refusals are the fuzzed cases'.
        both = LONG or case.meta is None or case.meta.phase.name.value != "coverage"
        if both:
            self.send(case, "unsigned", refused)
        partner = PARTNERS[self._kind_for(case.body)]
        signed = case.derive()
        signed.path_parameters = {**case.path_parameters, "partner_id": partner}
        msg_id = f"fuzz_{secrets.token_hex(8)}"
        if both:
            # Every other case, the right secret but a stale timestamp: refused all the same.
            stale = sum(self.tally.cases.values()) % 2 == 0
            secret = self.credentials[partner]["webhook_secret"] if stale else signatures.new_secret()
            impostor = WebhookSigner(secret, msg_id, -(signatures.TOLERANCE_SECONDS + 60) if stale else 0)
            self.send(
                signed, "stale-signature" if stale else "bad-signature", lambda s: s == 401, auth=impostor
            )
        genuine = WebhookSigner(self.credentials[partner]["webhook_secret"], msg_id)
        self.send(signed, "signed", lambda s: s != 401, auth=genuine, checks=_with_rejection(signed))

    def staff(self, case: Case, refused: Callable[[int], bool]) -> None:
        self.send(case, "no-key", refused)
        self.send(case.derive(), "wrong-key", refused, auth=Bearer(WRONG_KEY))
        # HQ reads every dealer: the generated ids reach the handlers.
        hq = Bearer(self.credentials[PARTNERS["hq"]]["api_key"])
        self.send(case.derive(), "hq-key", lambda s: s != 401, auth=hq, checks=_with_rejection(case))
        # The dealer on its own records: ids that exist, so the answers carry real data.
        own = case.derive()
        own.path_parameters = {name: self.known.get(name, v) for name, v in case.path_parameters.items()}
        dealer = Bearer(self.credentials[PARTNERS["dealer"]]["api_key"])
        self.send(own, "dealer-key", lambda s: s != 401, auth=dealer, checks=_with_rejection(own))

    def _kind_for(self, body: Any) -> str:
        """A partner kind that may send the body's event type (any other stops at 403)."""
        event_type = body.get("type") if isinstance(body, dict) else None
        kinds = self.kinds_of.get(event_type) if isinstance(event_type, str) else None
        return sorted(kinds)[0] if kinds else "dealer"


def _routes(value: Any) -> bool:
    """Whether a path parameter's value keeps the request on its route (an empty, dotted or
    slashed segment may route nowhere: 404 before any credential is read)."""
    text = str(value)
    return bool(text) and text.strip(".") != "" and "/" not in text


def _refusal(status: int, routed: bool) -> Callable[[int], bool]:
    return (lambda s: s == status) if routed else (lambda s: s in (status, 404))


def _with_rejection(case: Case) -> list[Any]:
    """Also: invalid data is refused with a 4xx, unless the negated part was a header (the
    credential headers are set afresh on the wire, which may make the request valid again)."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_negative or meta.is_negative_at(ParameterLocation.HEADER):
        return CONFORMANCE
    return [*CONFORMANCE, negative_data_rejection]


def _seed(stack: RunningStack, credentials: dict[str, dict[str, str]]) -> dict[str, str]:
    """The fuzz dealer's own vehicle, customer, loan, complaint and tasks, from the example events
    (with ids of its own: the session's stack is shared)."""
    from chalicelib.events import EVENT_SPECS

    vin, customer, loan = new_vin("LFUZZ"), f"C-fz-{secrets.token_hex(4)}", f"LFZ{secrets.token_hex(5)}"
    first = [
        "vehicle.delivered",
        "loan.booked",
        "complaint.opened",
        "lead.captured",
        "dealer.feedback_opened",
    ]
    files = sorted(
        (ROOT / "examples" / "events").glob("*.json"),
        key=lambda p: (first.index(p.stem) if p.stem in first else len(first), p.stem),
    )
    webhook_id = ""
    for path in files:
        text = path.read_text(encoding="utf-8")
        for old, new in (
            ("LSVAU2180N2123456", vin),
            ("C-1001", customer),
            ("L20261120001", loan),
            ("dealer-demo", PARTNERS["dealer"]),
        ):
            text = text.replace(old, new)
        payload = json.loads(text)
        partner = PARTNERS[sorted(EVENT_SPECS[payload["type"]].kinds)[0]]
        webhook_id = f"fuzz_seed_{path.stem}_{secrets.token_hex(4)}"
        secret = credentials[partner]["webhook_secret"]
        answer = stack.post_event(partner, payload, secret=secret, webhook_id=webhook_id)
        assert answer.status == 202, (path.name, answer.status, answer.body[:300])
    key = credentials[PARTNERS["dealer"]]["api_key"]

    def a_task() -> str | None:
        items = stack.get(f"/dealers/{PARTNERS['dealer']}/tasks", key).json()["items"]
        return items[0]["task_id"] if items else None

    return {
        "dealer_id": PARTNERS["dealer"],
        "partner_id": PARTNERS["dealer"],
        "vin": vin,
        "customer_id": customer,
        "task_id": stack.wait_for(a_task, what="the seeded delivery's tasks"),
        "webhook_id": webhook_id,
    }


def _configure_gateways(stack: RunningStack, tmp: Path) -> None:
    """Both gateways as `clm gateway configure` sets them (the values the CLI test sets too)."""
    from tests.unit import test_gateways as gw

    wechat, alipay = tmp / "wechat.pem", tmp / "alipay.pem"
    wechat.write_text(gw.PLATFORM_PEM)
    alipay.write_text(gw.ALIPAY_PEM)
    stack.cli(
        *("gateway", "configure", "wechatpay", "--mchid", "1900000109"),
        *("--apiv3-key", gw.APIV3_KEY.decode(), "--platform-serial", "SERIAL-A"),
        *("--platform-public-key", str(wechat)),
    )
    stack.cli(
        *("gateway", "configure", "alipay", "--app-id", "2021000000000001"),
        *("--alipay-public-key", str(alipay)),
    )


@pytest.fixture(scope="module")
def fuzz(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    from chalicelib.events import EVENT_SPECS

    served = stack.request("GET", "/openapi.json").json()
    assert served == schema.raw_schema, "the fuzz runs on the document the stack serves"
    credentials = {name: stack.add_partner(name, kind) for kind, name in PARTNERS.items()}
    _configure_gateways(stack, tmp_path_factory.mktemp("fuzz-gateways"))
    known = _seed(stack, credentials)
    with requests.Session() as session:
        found = Fuzz(stack, credentials, known, {t: s.kinds for t, s in EVENT_SPECS.items()}, session)
        yield found
    show_figures("fuzz", found.tally.lines())  # at the end of the run, passed or failed
    if os.environ.get("CLM_FUZZ_REPORT"):
        Path(os.environ["CLM_FUZZ_REPORT"]).write_text(json.dumps(found.tally.as_json(), indent=2) + "\n")


def _schema() -> Any:
    """The app's document, loaded at collection: the stack (and its port) comes later, and the
    fixture checks that the stack serves this very document."""
    from hypothesis.configuration import set_hypothesis_home_dir

    from chalicelib.api.openapi import document

    # Hypothesis keeps caches (source constants, Unicode tables) in `./.hypothesis`: outside the
    # work tree instead. No example database: each run generates afresh.
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "clm-hypothesis")
    webhook: dict[str, Any] = {
        "include-operation-id": "sendEvent",
        "generation": {"max-examples": EXAMPLES * WEBHOOK_FACTOR},
    }
    if not COVERAGE:
        # The webhook's positive boundary cases even so: random events are nearly all 422 (their
        # times must fall between 2000 and now), these are mostly valid ones, so handlers run too.
        webhook["phases"] = {"coverage": {"enabled": True, "generation": {"mode": "positive"}}}
    config = schemathesis.Config.from_dict(
        {
            "generation": {"max-examples": EXAMPLES, "deterministic": not LONG, "database": "none"},
            "phases": {"coverage": {"enabled": COVERAGE}},
            "operations": [webhook],
            # A slow or busy machine must not fail the run: only answers can.
            "suppress-health-check": ["all"],
            **({"seed": int(SEED)} if SEED else {}),
        }
    )
    return schemathesis.openapi.from_dict(json.loads(json.dumps(document())), config=config)


schema = _schema()

# schemathesis gives every operation's test one node id, and `pytest -n` runs one test per id: a
# worker would fuzz one operation of the fifteen. `make test` runs this file in a process of its own.
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("PYTEST_XDIST_WORKER")), reason="the fuzz runs in one process (make test does)"
)


def test_a_method_no_route_has_is_405_not_501(stack: RunningStack) -> None:
    """The standard library's server answers an unknown method (TRACE, QUERY …) 501, a 5xx."""
    for method in ("TRACE", "QUERY", "PROPFIND"):
        answer = stack.request(method, "/health")
        assert answer.status == 405 and answer.header_values("Allow") == ["GET"], method
    assert stack.request("TRACE", "/nowhere").status == 404


@schema.parametrize()
def test_fuzz(case: Case, fuzz: Fuzz) -> None:
    fuzz.run(case)
