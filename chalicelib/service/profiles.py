"""Customer profiles and their preference tags (DESIGN.md §6, §8; seed 002 §5 (一)).

Tags are kept current as events arrive, never by a sweep over all customers: each event that
tags read leaves what it said as a signal of the customer, in the event's own writes, and the
table stream then has the customer's tags read again from every signal (`domain.tags.evaluate`),
off the path that applies events. Read APIs show the tags, their evidence and
their history, and the tasks of the work where the advisor meets the customer carry them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.domain import tags as tag_rules
from chalicelib.domain.masking import mask_name, mask_phone
from chalicelib.observability import count
from chalicelib.store import profiles, records
from chalicelib.store.models import TagSignalItem

tag_rules.default_rules()  # validated at start: a bad rule file fails the cold start, naming the rule
ATTEMPTS = 5  # optimistic saves of one customer's tags before the refresh is retried from the queue
TAGGED_TASKS = frozenset(
    {
        "first_service_care_call",
        "maintenance_care_call",
        "first_service_booking",
        "maintenance_booking",
        "service_return_visit",
        "lead_follow_up",
    }
)


def _latest(items: list[TagSignalItem]) -> tuple[list[TagSignalItem], list[TagSignalItem]]:
    """The latest signal of each kind and ref, and the ones they supersede."""
    latest: dict[tuple[str, str], TagSignalItem] = {}
    superseded: list[TagSignalItem] = []
    for item in sorted(items, key=lambda i: (i.at, i.sk)):
        key = (item.kind, profiles.ref_of(item))
        if key in latest:
            superseded.append(latest[key])
        latest[key] = item
    return list(latest.values()), superseded


def _signals(items: list[TagSignalItem]) -> tag_rules.Signals:
    drives, deals = [], []
    vehicles: dict[str, dict[str, Any]] = {}
    for item in items:
        data = item.data or {}
        if item.kind == "drive":
            drives.append(tag_rules.TestDrive(item.at, data["model"], int(data["minutes"])))
        elif item.kind == "deal":
            deals.append(tag_rules.Negotiation(item.at, data["model"], int(data["rounds"])))
        elif item.kind in ("vehicle", "handover", "service"):
            vehicle = vehicles.setdefault(data["vin"], {"vin": data["vin"], "services": []})
            if item.kind == "vehicle":
                vehicle.update(
                    packages=tuple(data.get("packages") or ()),
                    interval_km=int(data.get("interval_km", 10000)),
                    interval_months=int(data.get("interval_months", 12)),
                )
            elif item.kind == "handover":
                vehicle.update(core_need=data.get("core_need"), concerns=tuple(data.get("concerns") or ()))
            else:
                vehicle["services"].append(
                    tag_rules.Service(
                        item.at, data["kind"], int(data["km"]), int(data["items"]), data["repair_order_id"]
                    )
                )
    built = tuple(
        tag_rules.Vehicle(**{**v, "services": tuple(v["services"])}) for _, v in sorted(vehicles.items())
    )
    return tag_rules.Signals(tuple(drives), tuple(deals), built)


class RefreshContended(RuntimeError):
    """Other refreshes of the customer kept saving first: this one is retried from the queue."""


def refresh(dealer_id: str, customer_id: str, now: datetime) -> str:
    """Carry the tags the customer's signals make hold, and bring the dealer's tag counts up to
    date with them (the table stream calls this after each new signal; idempotent).

    Returns `changed`, `unchanged` or `no_customer` (its signals wait for it to be created)."""
    for _ in range(ATTEMPTS):
        customer, items = profiles.read(dealer_id, customer_id)
        if customer is None:
            return "no_customer"
        latest, superseded = _latest(items)
        holding = tag_rules.evaluate(_signals(latest))
        current = customer.tags or {}
        carried, changes = tag_rules.carry(current, holding, now)
        if carried == current and not superseded:
            return "unchanged"
        history = [profiles.history_entry(c.tag, c.change, c.at) for c in changes]
        members = {c.tag: c.tag in carried for c in changes}
        if profiles.save_tags(customer, carried, history, members, superseded):
            for change in changes:
                count("TagsChanged", tag=change.tag, change=change.change)
            return "changed" if changes or carried != current else "unchanged"
    raise RefreshContended(f"tags of {dealer_id}/{customer_id} saved by others {ATTEMPTS} times")


def tags_view(tags: dict[str, Any] | None, evidence: bool = True) -> list[dict[str, Any]]:
    """The tags as read APIs show them: labels and talking point from the rules, since, evidence."""
    shown = []
    for tag, carried in sorted((tags or {}).items()):
        view = {**tag_rules.shown(tag), "since": carried["since"]}
        if evidence:
            view["evidence"] = carried["evidence"]
        shown.append(view)
    return shown


def profile(dealer_id: str, customer_id: str) -> dict[str, Any] | None:
    """The dealer's customer: contact (masked), preferences, vehicles, tags and their history."""
    customer, items = profiles.read(dealer_id, customer_id)
    if customer is None:
        return None
    vehicles = []
    for item in _latest(items)[0]:
        if item.kind == "vehicle":
            data = item.data or {}
            vehicles.append(
                {
                    "vin": data["vin"],
                    "model": data.get("model"),
                    "delivered_at": clock.iso(item.at),
                    "packages": data.get("packages") or [],
                }
            )
    return {
        "dealer_id": dealer_id,
        "customer_id": customer_id,
        "name": mask_name(customer.name),
        "phone": mask_phone(customer.phone),
        "preferences": {
            "locale": customer.locale,
            "preferred_channel": customer.preferred_channel,
            "sms_opt_out": bool(customer.sms_opt_out),
            "care_opt_out": bool(customer.care_opt_out),
            "birthday_on_file": customer.birthday is not None,
        },
        "vehicles": sorted(vehicles, key=lambda v: v["vin"]),
        "tags": tags_view(customer.tags),
        "tag_history": list(customer.tag_history or []),
    }


def tag_counts(dealer_id: str) -> dict[str, Any]:
    """How many of the dealer's customers carry each tag (every tag of the rules, 0 included)."""
    found = profiles.counts(dealer_id)
    return {
        "dealer_id": dealer_id,
        "items": [
            {"tag": r.tag, "label": r.label.as_json(), "customers": found.get(r.tag, 0)}
            for r in tag_rules.default_rules().rules
        ],
    }


def task_tags(dealer_id: str, listed: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """The customer's tags now (not as they were when the task opened) for each task of the work
    where the advisor or specialist meets the customer: by task id."""
    customers: dict[str, Any] = {}
    by_vin: dict[str, str | None] = {}
    out: dict[str, list[dict[str, Any]]] = {}
    for task in listed:
        if task.kind not in TAGGED_TASKS:
            continue
        customer_id = _customer_of(dealer_id, task, by_vin)
        if customer_id is None:
            out[task.task_id] = []
            continue
        if customer_id not in customers:
            customers[customer_id] = records.get_customer(dealer_id, customer_id)
        customer = customers[customer_id]
        out[task.task_id] = tags_view(customer.tags if customer is not None else None, evidence=False)
    return out


def _customer_of(dealer_id: str, task: Any, by_vin: dict[str, str | None]) -> str | None:
    if task.vin:
        if task.vin not in by_vin:
            vehicle = records.get_vehicle(dealer_id, task.vin)
            by_vin[task.vin] = str(vehicle.customer_id) if vehicle is not None else None
        if by_vin[task.vin] is not None:
            return by_vin[task.vin]
    if task.kind == "lead_follow_up" and task.ref:
        from chalicelib.store import cases

        lead = cases.get_record("lead", cases.lead_pk(dealer_id, task.ref))
        if lead is not None and getattr(lead, "customer_id", None):
            return str(lead.customer_id)
    return None


# --- what each event says to the tags: a signal to write with the event's effects ---------------


def test_drive(dealer_id: str, data: Any) -> TagSignalItem:
    """Every test drive counts: its ref is the drive itself."""
    payload = {"model": data.model, "minutes": data.duration_min, "advisor_id": data.advisor_id}
    ref = f"{clock.iso(data.at)}#{data.model}"
    return profiles.signal(dealer_id, data.customer_id, "drive", ref, data.at, payload)


def negotiation(dealer_id: str, data: Any) -> TagSignalItem:
    """One model's bargaining: the latest record of the model is its current count of rounds."""
    payload = {"model": data.model, "rounds": data.rounds, "advisor_id": data.advisor_id}
    return profiles.signal(dealer_id, data.customer_id, "deal", data.model, data.at, payload)


def delivery(dealer_id: str, data: Any) -> TagSignalItem:
    plan = data.maintenance_plan
    payload = {
        "vin": data.vin,
        "model": data.model,
        "packages": list(data.packages),
        "interval_km": plan.interval_km,
        "interval_months": plan.interval_months,
    }
    return profiles.signal(dealer_id, data.customer.id, "vehicle", data.vin, data.delivered_at, payload)


def handover(dealer_id: str, customer_id: str, data: Any, at: datetime) -> TagSignalItem:
    """The vehicle's handover form: the latest one filed counts."""
    needs = data.form.needs
    payload = {"vin": data.vin, "core_need": needs.core_need, "concerns": list(needs.concerns)}
    return profiles.signal(dealer_id, customer_id, "handover", data.vin, at, payload)


def service(dealer_id: str, customer_id: str, data: Any) -> TagSignalItem:
    payload = {
        "vin": data.vin,
        "kind": data.kind,
        "km": data.odometer_km,
        "items": len(data.items),
        "repair_order_id": data.repair_order_id,
    }
    ref = f"{data.vin}#{data.repair_order_id}"
    return profiles.signal(dealer_id, customer_id, "service", ref, data.completed_at, payload)
