"""Customer profiles and their preference tags (DESIGN.md §6, §8; seed 002 §5 (一)).

Tags are kept current as events arrive, never by a sweep over all customers: each event that
tags read keeps what it said as a signal of the customer, and the customer's tags are then read
again from every signal (`domain.tags.evaluate`). Read APIs show the tags, their evidence and
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
from chalicelib.store.models import CustomerItem, TagSignalItem

tag_rules.default_rules()  # validated at start: a bad rule file fails the cold start, naming the rule
ATTEMPTS = 5  # optimistic writes of one customer's tags before a newer revision takes over
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


def noted(
    dealer_id: str, customer_id: str, kind: str, key: str, at: datetime, data: dict[str, Any], now: datetime
) -> None:
    """Keep what an event said about the dealer's customer, and carry the tags it makes hold."""
    customer = profiles.note_signal(dealer_id, customer_id, kind, key, at, data)
    if customer is not None:
        refresh(customer, now)


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


def refresh(customer: CustomerItem, now: datetime) -> None:
    """Carry the tags the customer's signals make hold as of its revision (unless a newer one is
    carried already), then bring the dealer's tag counts up to date.

    `customer` is as the revision's bump left it: in the common case (nothing changes) this
    costs the signals' query alone."""
    dealer_id, customer_id, rev = customer.dealer_id, customer.customer_id, int(customer.signals_rev)
    holding = tag_rules.evaluate(_signals(profiles.signals(dealer_id, customer_id)))
    every = [r.tag for r in tag_rules.default_rules().rules]
    found: CustomerItem | None = customer
    for _ in range(ATTEMPTS):
        if found is None or int(found.tags_rev or 0) >= rev:
            break
        current = found.tags or {}
        carried, changes = tag_rules.carry(current, holding, now)
        if carried == current:
            break
        history = [profiles.history_entry(c.tag, c.change, c.at) for c in changes]
        if profiles.save_tags(found, rev, carried, history):
            for change in changes:
                count("TagsChanged", tag=change.tag, change=change.change)
            # Counts: the tags that changed, or every tag if an earlier sync did not finish.
            synced = int(found.members_rev or 0) >= int(found.tags_rev or 0)
            changed = [c.tag for c in changes] if synced else every
            profiles.sync_members(dealer_id, customer_id, rev, set(carried), changed)
            return
        found = records.get_customer(dealer_id, customer_id)  # changed meanwhile: read it again
    if found is not None and int(found.members_rev or 0) < int(found.tags_rev or 0):
        profiles.sync_members(dealer_id, customer_id, int(found.tags_rev), set(found.tags or {}), every)


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
    customer = records.get_customer(dealer_id, customer_id)
    if customer is None:
        return None
    vehicles = []
    for item in profiles.signals(dealer_id, customer_id):
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


# --- what each event says to the tags ------------------------------------------------------------


def test_drive(dealer_id: str, data: Any, now: datetime) -> None:
    key = f"{clock.iso(data.at)}#{data.model}"
    payload = {"model": data.model, "minutes": data.duration_min, "advisor_id": data.advisor_id}
    noted(dealer_id, data.customer_id, "drive", key, data.at, payload, now)


def negotiation(dealer_id: str, data: Any, now: datetime) -> None:
    """One model's bargaining: a later record of the same model is its current count of rounds."""
    payload = {"model": data.model, "rounds": data.rounds, "advisor_id": data.advisor_id}
    noted(dealer_id, data.customer_id, "deal", data.model, data.at, payload, now)


def delivery(dealer_id: str, data: Any, now: datetime) -> None:
    plan = data.maintenance_plan
    payload = {
        "vin": data.vin,
        "model": data.model,
        "packages": list(data.packages),
        "interval_km": plan.interval_km,
        "interval_months": plan.interval_months,
    }
    noted(dealer_id, data.customer.id, "vehicle", data.vin, data.delivered_at, payload, now)


def handover(dealer_id: str, customer_id: str, data: Any, at: datetime, now: datetime) -> None:
    needs = data.form.needs
    payload = {"vin": data.vin, "core_need": needs.core_need, "concerns": list(needs.concerns)}
    noted(dealer_id, customer_id, "handover", data.vin, at, payload, now)


def service(dealer_id: str, customer_id: str, data: Any, now: datetime) -> None:
    payload = {
        "vin": data.vin,
        "kind": data.kind,
        "km": data.odometer_km,
        "items": len(data.items),
        "repair_order_id": data.repair_order_id,
    }
    key = f"{data.vin}#{data.repair_order_id}"
    noted(dealer_id, customer_id, "service", key, data.completed_at, payload, now)
