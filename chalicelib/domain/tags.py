"""Customer preference tags (DESIGN.md §6, seed 002 §5 (一), §4 (一)). Pure: no AWS.

A tag is a reading of what the dealer's events say about one customer: test drives,
negotiations, the packages of the vehicles they took delivery of, the handover form and the
services. `evaluate` reads them whole every time something changes, so a tag is carried exactly
while its condition holds, whatever order the events came in, and dropped when it stops holding.
Each carried tag names its evidence: the events and the numbers that made it hold.

The rules (labels, thresholds, talking points) live in `data/tag_rules.json`; `load_rules`
refuses a bad file at start, naming the rule.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

RULES_FILE = Path(__file__).with_name("data") / "tag_rules.json"
DAYS_PER_MONTH = 365.25 / 12  # a maintenance gap in months: its days over this
CYCLE_SERVICES = ("first_service", "maintenance")


# --- what the events said --------------------------------------------------------------------


@dataclass(frozen=True)
class TestDrive:
    __test__ = False  # not a pytest class, whatever its name says

    at: datetime
    model: str
    minutes: int


@dataclass(frozen=True)
class Negotiation:
    """The customer's bargaining over one model: a later record of the same model replaces it."""

    at: datetime
    model: str
    rounds: int


@dataclass(frozen=True)
class Service:
    at: datetime
    kind: str
    km: int
    items: int
    repair_order_id: str


@dataclass(frozen=True)
class Vehicle:
    """One of the customer's vehicles at this dealer, as its delivery, handover and services say."""

    vin: str
    packages: tuple[str, ...] = ()
    interval_km: int = 10000
    interval_months: int = 12
    core_need: str | None = None
    concerns: tuple[str, ...] = ()
    services: tuple[Service, ...] = ()


@dataclass(frozen=True)
class Signals:
    test_drives: tuple[TestDrive, ...] = ()
    negotiations: tuple[Negotiation, ...] = ()
    vehicles: tuple[Vehicle, ...] = ()


Evidence = dict[str, Any]


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- conditions ------------------------------------------------------------------------------


class _Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TestDriveAtLeast(_Condition):
    __test__ = False

    minutes: int = Field(ge=1)

    def check(self, s: Signals) -> list[Evidence] | None:
        found = [d for d in s.test_drives if d.minutes >= self.minutes]
        return [_drive(d) for d in sorted(found, key=lambda d: d.at)] or None


class PackagesAtLeast(_Condition):
    count: int = Field(ge=1)
    of: tuple[str, ...] = Field(min_length=1)

    def check(self, s: Signals) -> list[Evidence] | None:
        for vehicle in sorted(s.vehicles, key=lambda v: v.vin):
            named = sorted(set(vehicle.packages) & set(self.of))
            if len(named) >= self.count:
                return [{"source": "vehicle.delivered", "vin": vehicle.vin, "packages": named}]
        return None


class MaintenanceGapsOverPlan(_Condition):
    last: int = Field(ge=1)
    over_plan_ratio: float = Field(gt=1)

    def check(self, s: Signals) -> list[Evidence] | None:
        for vehicle in sorted(s.vehicles, key=lambda v: v.vin):
            gaps = maintenance_gaps(vehicle)[-self.last :]
            if len(gaps) == self.last and all(self._over(vehicle, g) for g in gaps):
                return [{"source": "service.completed", "vin": vehicle.vin, **g} for g in gaps]
        return None

    def _over(self, vehicle: Vehicle, gap: Evidence) -> bool:
        return bool(
            gap["km"] >= self.over_plan_ratio * vehicle.interval_km
            or gap["months"] >= self.over_plan_ratio * vehicle.interval_months
        )


class ServicesItemsAtMost(_Condition):
    min_services: int = Field(ge=1)
    max_items: int = Field(ge=0)

    def check(self, s: Signals) -> list[Evidence] | None:
        services = sorted((sv for v in s.vehicles for sv in v.services), key=lambda sv: sv.at)
        if len(services) < self.min_services or any(sv.items > self.max_items for sv in services):
            return None
        return [
            {
                "source": "service.completed",
                "repair_order_id": sv.repair_order_id,
                "at": _iso(sv.at),
                "items": sv.items,
            }
            for sv in services
        ]


class RoundsAtLeast(_Condition):
    rounds: int = Field(ge=0)

    def check(self, s: Signals) -> list[Evidence] | None:
        found = [n for n in s.negotiations if n.rounds >= self.rounds]
        return [_negotiation(n) for n in sorted(found, key=lambda n: n.at)] or None


class RoundsAtMost(_Condition):
    """Every negotiation the customer had took at most `rounds` rounds (and there was one)."""

    rounds: int = Field(ge=0)

    def check(self, s: Signals) -> list[Evidence] | None:
        if not s.negotiations or any(n.rounds > self.rounds for n in s.negotiations):
            return None
        return [_negotiation(n) for n in sorted(s.negotiations, key=lambda n: n.at)]


class HandoverMentions(_Condition):
    words: tuple[str, ...] = Field(min_length=1)

    def check(self, s: Signals) -> list[Evidence] | None:
        from chalicelib.domain.triage import fold

        for vehicle in sorted(s.vehicles, key=lambda v: v.vin):
            spaced = fold(" ".join([vehicle.core_need or "", *vehicle.concerns]))
            compact = spaced.replace(" ", "")
            said = sorted({w for w in self.words if _mentions(fold(w), spaced, compact)})
            if said:
                return [{"source": "handover.submitted", "vin": vehicle.vin, "words": said}]
        return None


def _mentions(word: str, spaced: str, compact: str) -> bool:
    """Chinese inside the text with spaces removed; English as a whole word ("space", not "spacious")."""
    if word.isascii():
        return re.search(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", spaced) is not None
    return bool(word) and word.replace(" ", "") in compact


def _drive(d: TestDrive) -> Evidence:
    return {
        "source": "sales.test_drive_completed",
        "at": _iso(d.at),
        "model": d.model,
        "duration_min": d.minutes,
    }


def _negotiation(n: Negotiation) -> Evidence:
    return {"source": "sales.negotiation_recorded", "at": _iso(n.at), "model": n.model, "rounds": n.rounds}


CONDITIONS: dict[str, type[_Condition]] = {
    "test_drive_minutes_at_least": TestDriveAtLeast,
    "packages_at_least": PackagesAtLeast,
    "maintenance_gaps_over_plan": MaintenanceGapsOverPlan,
    "services_items_at_most": ServicesItemsAtMost,
    "negotiation_rounds_at_least": RoundsAtLeast,
    "negotiation_rounds_at_most": RoundsAtMost,
    "handover_mentions": HandoverMentions,
}


def maintenance_gaps(vehicle: Vehicle) -> list[Evidence]:
    """The gaps between the vehicle's consecutive first services and maintenances, oldest first:
    kilometres and months (days over the mean month) from one to the next."""
    cycle = sorted((sv for sv in vehicle.services if sv.kind in CYCLE_SERVICES), key=lambda sv: sv.at)
    return [
        {
            "from_repair_order_id": a.repair_order_id,
            "repair_order_id": b.repair_order_id,
            "km": b.km - a.km,
            "months": round((b.at - a.at).total_seconds() / 86400 / DAYS_PER_MONTH, 2),
            "plan_km": vehicle.interval_km,
            "plan_months": vehicle.interval_months,
        }
        for a, b in itertools.pairwise(cycle)
    ]


# --- the rule file ---------------------------------------------------------------------------


class Localised(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    zh_cn: str = Field(alias="zh-CN", min_length=1)
    en: str = Field(min_length=1)

    def as_json(self) -> dict[str, str]:
        return {"zh-CN": self.zh_cn, "en": self.en}


class When(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    any_of: tuple[dict[str, dict[str, Any]], ...] | None = None
    all_of: tuple[dict[str, dict[str, Any]], ...] | None = None

    @model_validator(mode="after")
    def _one(self) -> When:
        if (self.any_of is None) == (self.all_of is None) or not (self.any_of or self.all_of):
            raise ValueError("`when` takes one non-empty list: any_of or all_of")
        return self


class TagRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tag: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
    label: Localised
    source: str = Field(min_length=1)
    talking_point: Localised
    when: When
    mode: Literal["any_of", "all_of"] = "any_of"
    conditions: tuple[Any, ...] = ()

    @model_validator(mode="after")
    def _build(self) -> TagRule:
        mode: Literal["any_of", "all_of"] = "any_of" if self.when.any_of is not None else "all_of"
        built = []
        for entry in self.when.any_of or self.when.all_of or ():
            if len(entry) != 1:
                raise ValueError("each condition is one {name: parameters}")
            ((name, params),) = entry.items()
            if name not in CONDITIONS:
                raise ValueError(f"unknown condition {name!r} (one of {', '.join(CONDITIONS)})")
            built.append(CONDITIONS[name].model_validate(params))
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "conditions", tuple(built))
        return self

    def evidence(self, signals: Signals) -> list[Evidence] | None:
        """What makes the tag hold for these signals, or None when it does not."""
        found: list[Evidence] = []
        for condition in self.conditions:
            seen = condition.check(signals)
            if seen is None and self.mode == "all_of":
                return None
            found += seen or []
        return found or None


class RuleError(ValueError):
    """The tag rule file is wrong; the message names the rule."""


@dataclass(frozen=True)
class TagRules:
    rules: tuple[TagRule, ...]
    by_tag: dict[str, TagRule] = field(default_factory=dict)


def load_rules(raw: Any) -> TagRules:
    """The rules from the file's data; a bad rule fails here, named, before anything uses it."""
    if not isinstance(raw, dict) or not isinstance(raw.get("tags"), list) or not raw["tags"]:
        raise RuleError("tag rules: the file needs a non-empty `tags` list")
    rules: list[TagRule] = []
    for position, entry in enumerate(raw["tags"]):
        name = entry.get("tag") if isinstance(entry, dict) else None
        named = f"tag rule {name!r}" if name else f"tag rule #{position + 1}"
        try:
            rule = TagRule.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'rule'}: {e['msg']}" for e in exc.errors()
            )
            raise RuleError(f"{named}: {problems}") from None
        if any(r.tag == rule.tag for r in rules):
            raise RuleError(f"{named}: appears twice")
        rules.append(rule)
    return TagRules(tuple(rules), {r.tag: r for r in rules})


@cache
def default_rules() -> TagRules:
    return load_rules(json.loads(RULES_FILE.read_text(encoding="utf-8")))


# --- carrying tags ---------------------------------------------------------------------------


def evaluate(signals: Signals, rules: TagRules | None = None) -> dict[str, list[Evidence]]:
    """Every tag that holds, with its evidence."""
    found: dict[str, list[Evidence]] = {}
    for rule in (rules or default_rules()).rules:
        evidence = rule.evidence(signals)
        if evidence:
            found[rule.tag] = evidence
    return found


@dataclass(frozen=True)
class Change:
    tag: str
    change: Literal["added", "dropped"]
    at: datetime


def carry(
    current: dict[str, dict[str, Any]], holding: dict[str, list[Evidence]], now: datetime
) -> tuple[dict[str, dict[str, Any]], list[Change]]:
    """The tags to carry from now on (`{tag: {since, evidence}}`; a tag still held keeps its
    `since` and takes the new evidence) and what changed."""
    carried: dict[str, dict[str, Any]] = {}
    changes: list[Change] = []
    for tag, evidence in sorted(holding.items()):
        since = current[tag]["since"] if tag in current else _iso(now)
        carried[tag] = {"since": since, "evidence": evidence}
        if tag not in current:
            changes.append(Change(tag, "added", now))
    changes += [Change(tag, "dropped", now) for tag in sorted(set(current) - set(holding))]
    return carried, changes


def shown(tag: str, rules: TagRules | None = None) -> dict[str, Any]:
    """How a tag reads where the work is: its labels and talking point."""
    rule = (rules or default_rules()).by_tag.get(tag)
    if rule is None:  # a tag of an older rule file: shown by name until it is dropped
        return {"tag": tag, "label": {"zh-CN": tag, "en": tag}, "talking_point": None}
    return {"tag": tag, "label": rule.label.as_json(), "talking_point": rule.talking_point.as_json()}
