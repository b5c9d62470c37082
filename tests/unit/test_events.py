"""The event catalog: every fixture and example validates, and bad input is reported field by field."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.events import (
    ALL_EVENT_TYPES,
    EVENT_SPECS,
    EventSpec,
    EventValidationError,
    FieldError,
    ParsedEvent,
    parse_envelope_type,
    spec_for,
    validate_event,
)
from chalicelib.events.common import EventData

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "events"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "events"

VIN = "LSVAU2180N2123456"
PHONE = "+8613800138000"

CATALOG = {
    "vehicle.delivered": "dealer",
    "handover.submitted": "dealer",
    "handover.confirmed": "dealer",
    "delivery.feedback_submitted": "dealer",
    "odometer.reported": "dealer",
    "service.completed": "dealer",
    "complaint.opened": "dealer",
    "complaint.acknowledged": "dealer",
    "complaint.solution_proposed": "dealer",
    "complaint.resolved": "dealer",
    "lead.captured": "dealer",
    "lead.followed_up": "dealer",
    "survey.completed": "dealer",
    "dealer.audit_completed": "dealer",
    "dealer.feedback_opened": "dealer",
    "customer.preferences_updated": "dealer",
    "insurance.policy_updated": "dealer finance",
    "sales.test_drive_completed": "dealer",
    "sales.negotiation_recorded": "dealer",
    "loan.booked": "finance",
    "loan.settled": "finance",
    "dealer.feedback_replied": "hq",
}


def shared_files() -> list[Any]:
    if not SHARED.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{SHARED} is missing"))]
    return [pytest.param(path, id=path.name) for path in sorted(SHARED.glob("*.json"))]


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def example(event_type: str) -> dict[str, Any]:
    return load(EXAMPLES / f"{event_type}.json")


def parse(payload: dict[str, Any]) -> ParsedEvent:
    spec = spec_for(parse_envelope_type(payload))
    assert spec is not None
    return validate_event(spec, payload)


def errors_of(payload: dict[str, Any]) -> dict[str, str]:
    """Field path -> message; fails if a field is reported twice."""
    with pytest.raises(EventValidationError) as caught:
        parse(payload)
    fields = [e.field for e in caught.value.errors]
    assert len(fields) == len(set(fields)), fields
    return {e.field: e.message for e in caught.value.errors}


def with_data(event_type: str, **changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(example(event_type))
    payload["data"].update(changes)
    return payload


def without(event_type: str, *names: str) -> dict[str, Any]:
    payload = copy.deepcopy(example(event_type))
    for name in names:
        payload["data"].pop(name, None)
    return payload


# --- the catalog ---------------------------------------------------------------------------------


def test_catalog_has_every_type_of_the_design_with_its_kinds() -> None:
    assert set(ALL_EVENT_TYPES) == set(CATALOG) == set(EVENT_SPECS)
    assert len(ALL_EVENT_TYPES) == len(CATALOG)
    for event_type, kind in CATALOG.items():
        spec = EVENT_SPECS[event_type]
        assert spec.type == event_type
        assert spec.kinds == frozenset(kind.split())
        assert issubclass(spec.model, EventData)
        assert spec.model.__doc__


@pytest.mark.parametrize("event_type", sorted(CATALOG))
def test_spec_for_known_types(event_type: str) -> None:
    spec = spec_for(event_type)
    assert isinstance(spec, EventSpec)
    assert spec.type == event_type


@pytest.mark.parametrize(
    "value", ["vehicle.exploded", "", "VEHICLE.DELIVERED", " vehicle.delivered", None, 3, ["x"]]
)
def test_spec_for_anything_else_is_none(value: object) -> None:
    assert spec_for(value) is None


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"type": "loan.booked"}, "loan.booked"),
        ({"type": "whatever", "data": {}}, "whatever"),
        ({"type": 7}, None),
        ({"data": {}}, None),
        (["type"], None),
        ("loan.booked", None),
        (None, None),
    ],
)
def test_parse_envelope_type(payload: object, expected: str | None) -> None:
    assert parse_envelope_type(payload) == expected


# --- fixtures and examples -----------------------------------------------------------------------


@pytest.mark.parametrize("path", shared_files())
def test_every_contract_fixture_validates_and_its_sender_kind_is_allowed(path: Path) -> None:
    kind, _, event_type = path.stem.partition("--")
    payload = load(path)
    assert payload["type"] == event_type
    event = parse(payload)
    assert event.type == event_type
    assert kind in EVENT_SPECS[event_type].kinds


def test_there_is_one_example_per_event_type() -> None:
    assert {p.stem for p in EXAMPLES.glob("*.json")} == set(ALL_EVENT_TYPES)


@pytest.mark.parametrize("event_type", ALL_EVENT_TYPES)
def test_every_example_validates(event_type: str) -> None:
    payload = example(event_type)
    event = parse(payload)
    assert event.type == payload["type"] == event_type
    assert isinstance(event.data, EVENT_SPECS[event_type].model)
    assert event.timestamp == datetime.fromisoformat(payload["timestamp"])


def test_examples_tell_one_story() -> None:
    delivered = example("vehicle.delivered")["data"]
    delivered_at = datetime.fromisoformat(delivered["delivered_at"])
    assert (delivered_at.year, delivered_at.month) == (2023, 11)
    loan = example("loan.booked")["data"]
    assert loan["loan_id"] == delivered["loan_id"] == example("loan.settled")["data"]["loan_id"]
    assert loan["dealer_id"] == "dealer-demo"
    for event_type in ALL_EVENT_TYPES:
        data = example(event_type)["data"]
        assert data.get("vin", VIN) == VIN
        assert data.get("customer_id", "C-1001") == "C-1001"
    assert example("handover.submitted")["data"]["submitted_by"] == delivered["sales_advisor"]["id"]
    assert example("handover.confirmed")["data"]["confirmed_by"] == delivered["service_specialist"]["id"]
    before_the_sale = {"loan.booked", "sales.test_drive_completed", "sales.negotiation_recorded"}
    for event_type in ALL_EVENT_TYPES:
        stamp = datetime.fromisoformat(example(event_type)["timestamp"])
        assert (stamp < delivered_at) == (event_type in before_the_sale), event_type


# --- defaults and normalisation ------------------------------------------------------------------


def test_vehicle_delivered_defaults() -> None:
    payload = without("vehicle.delivered", "first_service", "maintenance_plan", "loan_id")
    del payload["data"]["customer"]["locale"]
    del payload["data"]["customer"]["birthday"]
    data: Any = parse(payload).data
    assert data.customer.locale == "zh-CN"
    assert data.customer.birthday is None
    assert (data.first_service.due_months, data.first_service.due_km) == (3, 5000)
    assert (data.maintenance_plan.interval_months, data.maintenance_plan.interval_km) == (12, 10000)
    assert data.loan_id is None


def test_partial_nested_objects_take_the_remaining_defaults() -> None:
    data: Any = parse(
        with_data(
            "vehicle.delivered", first_service={"due_km": 6000}, maintenance_plan={"interval_months": 6}
        )
    ).data
    assert (data.first_service.due_months, data.first_service.due_km) == (3, 6000)
    assert (data.maintenance_plan.interval_months, data.maintenance_plan.interval_km) == (6, 10000)


def test_loan_currency_defaults_to_cny_and_dates_are_dates() -> None:
    data: Any = parse(without("loan.booked", "currency")).data
    assert data.currency == "CNY"
    assert isinstance(data.schedule[0].due_date, date)
    assert data.schedule[0].due_date.isoformat() == example("loan.booked")["data"]["schedule"][0]["due_date"]


def test_optional_fields_may_be_left_out() -> None:
    assert parse(without("complaint.opened", "vin")).data.vin is None  # type: ignore[attr-defined]
    assert parse(without("complaint.resolved", "satisfaction", "note")).data.satisfaction is None  # type: ignore[attr-defined]
    staff = {"id": "S-02"}
    data: Any = parse(with_data("vehicle.delivered", sales_advisor=staff)).data
    assert (data.sales_advisor.name, data.sales_advisor.phone) == (None, None)


def test_strings_are_stripped() -> None:
    data: Any = parse(with_data("odometer.reported", vin=f"  {VIN} ")).data
    assert data.vin == VIN


def test_unknown_extra_fields_are_ignored_at_every_level() -> None:
    payload = example("vehicle.delivered")
    payload["extra_envelope"] = 1
    payload["data"]["color"] = "白色"
    payload["data"]["customer"]["wechat_id"] = "zw1990"
    data: Any = parse(payload).data
    assert not hasattr(data, "color")
    assert not hasattr(data.customer, "wechat_id")
    assert "color" not in data.model_dump()


def test_parsed_data_is_frozen() -> None:
    data: Any = parse(example("odometer.reported")).data
    with pytest.raises(ValidationError):
        data.odometer_km = 1


# --- VIN -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("vin", [VIN, "1HGCM82633A004352", "WVWZZZ1JZXW000001", "00000000000000000"])
def test_valid_vins(vin: str) -> None:
    assert parse(with_data("odometer.reported", vin=vin)).data.vin == vin  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("vin", "says"),
    [
        ("LSVAU2180N212345I", "no I, O, Q"),
        ("LSVAU2180N212345O", "no I, O, Q"),
        ("LSVAQ2180N2123456", "no I, O, Q"),
        ("LSVAU2180N212345", "16 characters"),
        ("LSVAU2180N21234567", "18 characters"),
        ("", "0 characters"),
        ("lsvau2180n2123456", "upper case"),
        ("LSVAU2180N212345-", "17 characters of A-H, J-N, P, R-Z, 0-9"),
        ("LSVAU2180N21234５6", "17 characters of A-H, J-N, P, R-Z, 0-9"),
    ],
)
def test_invalid_vins_say_what_is_wrong(vin: str, says: str) -> None:
    errors = errors_of(with_data("odometer.reported", vin=vin))
    assert set(errors) == {"data.vin"}
    assert says in errors["data.vin"]
    assert "VIN" in errors["data.vin"]


# --- phones --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("+86 138 0013 8000", PHONE),
        ("+86-138-0013-8000", PHONE),
        (" +8613800138000 ", PHONE),
        ("+44 20 7946 0958", "+442079460958"),
        ("+1 (202) 555-0123", "+12025550123"),
    ],
)
def test_phones_are_normalised_to_e164(given: str, stored: str) -> None:
    payload = example("vehicle.delivered")
    payload["data"]["customer"]["phone"] = given
    payload["data"]["sales_advisor"]["phone"] = given
    data: Any = parse(payload).data
    assert data.customer.phone == stored
    assert data.sales_advisor.phone == stored


@pytest.mark.parametrize(
    "phone",
    [
        "13800138000",
        "8613800138000",
        "+8612345",
        "+86 138 0013 80001",
        "+999 1234 5678",
        "+",
        "电话",
        "12345",
    ],
)
def test_invalid_phones_are_rejected_without_echoing_them(phone: str) -> None:
    payload = example("vehicle.delivered")
    payload["data"]["customer"]["phone"] = phone
    payload["data"]["service_specialist"]["phone"] = phone
    with pytest.raises(EventValidationError) as caught:
        parse(payload)
    assert {e.field for e in caught.value.errors} == {"data.customer.phone", "data.service_specialist.phone"}
    dumped = json.dumps([[e.field, e.message] for e in caught.value.errors], ensure_ascii=False)
    assert phone not in dumped
    digits = "".join(ch for ch in phone if ch.isdigit())
    assert len(digits) < 5 or digits not in dumped
    assert phone not in str(caught.value)


def test_a_customer_phone_is_required_and_must_be_text() -> None:
    payload = example("vehicle.delivered")
    payload["data"]["customer"]["phone"] = 8613800138000
    assert set(errors_of(payload)) == {"data.customer.phone"}
    del payload["data"]["customer"]["phone"]
    assert errors_of(payload) == {"data.customer.phone": "Field required"}


# --- times and dates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-20T10:00:05",
        "2026-11-20 10:00:05",
        "2026-11-20",
        "2026-11-20T10:00+08:00",
        "2026-11-20T10:00:05+0800",
        "1795140005",
        1795140005,
        "tomorrow",
        "2026-02-30T10:00:00+08:00",
        None,
    ],
)
def test_timestamps_must_be_rfc3339_with_offset(value: object) -> None:
    payload = example("odometer.reported")
    payload["timestamp"] = value
    payload["data"]["read_at"] = value
    assert set(errors_of(payload)) == {"timestamp", "data.read_at"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-20T02:00:05Z", datetime.fromisoformat("2026-11-20T10:00:05+08:00")),
        ("2026-11-20T10:00:05.250+08:00", datetime.fromisoformat("2026-11-20T10:00:05.250+08:00")),
        ("2026-11-19T21:00:05-05:00", datetime.fromisoformat("2026-11-20T10:00:05+08:00")),
    ],
)
def test_rfc3339_timestamps_keep_their_instant(value: str, expected: datetime) -> None:
    payload = example("odometer.reported")
    payload["timestamp"] = value
    event = parse(payload)
    assert event.timestamp == expected
    assert event.timestamp.utcoffset() is not None


def test_a_naive_time_is_rejected_with_a_clear_message() -> None:
    payload = with_data("vehicle.delivered", delivered_at="2026-11-20T10:00:00")
    assert "offset" in errors_of(payload)["data.delivered_at"]


@pytest.mark.parametrize(
    "value", ["2027-1-20", "20270120", "2027-01-20T00:00:00+08:00", 1800000000, "2027-02-30"]
)
def test_due_dates_are_yyyy_mm_dd(value: object) -> None:
    payload = example("loan.booked")
    payload["data"]["schedule"][1]["due_date"] = value
    assert set(errors_of(payload)) == {"data.schedule.1.due_date"}


# --- several errors at once ----------------------------------------------------------------------


def test_every_bad_field_is_reported_once_with_its_dotted_path() -> None:
    payload = example("vehicle.delivered")
    payload["timestamp"] = "2026-11-20T10:00:05"
    data = payload["data"]
    data["vin"] = "LSVAU2180N212345O"
    data["customer"]["phone"] = "12345"
    data["customer"]["locale"] = "fr"
    del data["model"]
    data["packages"] = ["adas", ""]
    data["first_service"]["due_km"] = -1
    errors = errors_of(payload)
    assert set(errors) == {
        "timestamp",
        "data.vin",
        "data.customer.phone",
        "data.customer.locale",
        "data.model",
        "data.packages.1",
        "data.first_service.due_km",
    }
    assert errors["data.model"] == "Field required"
    assert all(isinstance(message, str) and message for message in errors.values())
    assert "12345" not in json.dumps(errors)


def test_schedule_errors_point_at_the_installment() -> None:
    payload = example("loan.booked")
    schedule = payload["data"]["schedule"]
    schedule[0]["payment_ref"] = "ab"
    schedule[2]["amount_minor"] = -1
    del schedule[3]["seq"]
    payload["data"]["principal_minor"] = "10500000"
    payload["data"]["currency"] = "cny"
    assert set(errors_of(payload)) == {
        "data.schedule.0.payment_ref",
        "data.schedule.2.amount_minor",
        "data.schedule.3.seq",
        "data.principal_minor",
        "data.currency",
    }


def test_the_error_lists_fields_not_values() -> None:
    payload = with_data("complaint.opened", customer_id="", text="")
    with pytest.raises(EventValidationError) as caught:
        parse(payload)
    assert all(isinstance(e, FieldError) for e in caught.value.errors)
    assert "data.customer_id" in str(caught.value)


@pytest.mark.parametrize(("data", "field"), [(None, "data"), ("x", "data"), ([], "data")])
def test_data_must_be_an_object(data: object, field: str) -> None:
    payload = example("loan.settled")
    payload["data"] = data
    assert set(errors_of(payload)) == {field}


def test_missing_envelope_parts() -> None:
    payload = {"type": "loan.settled"}
    assert set(errors_of(payload)) == {"timestamp", "data"}


def test_an_envelope_of_another_type_is_refused() -> None:
    with pytest.raises(EventValidationError) as caught:
        validate_event(EVENT_SPECS["loan.settled"], example("odometer.reported"))
    assert "type" in {e.field for e in caught.value.errors}


# --- enums, bounds and types ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "changes", "field"),
    [
        ("vehicle.delivered", {"powertrain": "diesel"}, "data.powertrain"),
        (
            "vehicle.delivered",
            {"customer": {"id": "C-1", "name": "x", "phone": PHONE}},
            "data.customer.preferred_channel",
        ),
        ("vehicle.delivered", {"first_service": {"due_months": 0}}, "data.first_service.due_months"),
        ("vehicle.delivered", {"packages": None}, "data.packages"),
        ("vehicle.delivered", {"loan_id": "L 1"}, "data.loan_id"),
        ("vehicle.delivered", {"loan_id": "L#1"}, "data.loan_id"),
        ("vehicle.delivered", {"model": "x" * 129}, "data.model"),
        ("odometer.reported", {"odometer_km": -1}, "data.odometer_km"),
        ("odometer.reported", {"odometer_km": "4620"}, "data.odometer_km"),
        ("odometer.reported", {"odometer_km": 4620.5}, "data.odometer_km"),
        ("odometer.reported", {"odometer_km": True}, "data.odometer_km"),
        ("odometer.reported", {"source": "guess"}, "data.source"),
        ("service.completed", {"kind": "wash"}, "data.kind"),
        ("survey.completed", {"score": 101}, "data.score"),
        ("survey.completed", {"score": -1}, "data.score"),
        ("survey.completed", {"kind": "sales"}, "data.kind"),
        ("complaint.resolved", {"satisfaction": 100.5}, "data.satisfaction"),
        ("complaint.resolved", {"satisfaction": 101}, "data.satisfaction"),
        ("complaint.opened", {"text": "   "}, "data.text"),
        ("lead.captured", {"kind": "insurance"}, "data.kind"),
        ("lead.captured", {"grade": "C"}, "data.grade"),
        ("lead.followed_up", {"outcome": "maybe"}, "data.outcome"),
        ("dealer.audit_completed", {"gps_online_ratio": 1.01}, "data.gps_online_ratio"),
        ("dealer.audit_completed", {"gps_online_ratio": -0.1}, "data.gps_online_ratio"),
        ("dealer.audit_completed", {"gps_online_ratio": float("nan")}, "data.gps_online_ratio"),
        ("dealer.audit_completed", {"inventory_found": -1}, "data.inventory_found"),
        ("dealer.audit_completed", {"documents_complete": "yes"}, "data.documents_complete"),
        ("dealer.feedback_replied", {"kind": "closed"}, "data.kind"),
        ("customer.preferences_updated", {"locale": "fr"}, "data.locale"),
        ("customer.preferences_updated", {"preferred_channel": "email"}, "data.preferred_channel"),
        ("customer.preferences_updated", {"sms_opt_out": "false"}, "data.sms_opt_out"),
        ("loan.booked", {"schedule": []}, "data.schedule"),
        ("loan.booked", {"currency": "RMB1"}, "data.currency"),
        ("loan.booked", {"principal_minor": -1}, "data.principal_minor"),
        ("loan.settled", {"loan_id": ""}, "data.loan_id"),
    ],
)
def test_enum_bound_and_type_violations(event_type: str, changes: dict[str, Any], field: str) -> None:
    assert set(errors_of(with_data(event_type, **changes))) == {field}


@pytest.mark.parametrize(
    ("event_type", "field"),
    [
        ("vehicle.delivered", "powertrain"),
        ("vehicle.delivered", "delivered_at"),
        ("vehicle.delivered", "service_specialist"),
        ("handover.submitted", "form"),
        ("handover.confirmed", "corrections"),
        ("service.completed", "items"),
        ("complaint.opened", "text"),
        ("lead.captured", "note"),
        ("dealer.audit_completed", "documents_complete"),
        ("loan.booked", "schedule"),
        ("loan.settled", "at"),
        ("dealer.feedback_replied", "kind"),
    ],
)
def test_missing_required_fields(event_type: str, field: str) -> None:
    assert errors_of(without(event_type, field)) == {f"data.{field}": "Field required"}


@pytest.mark.parametrize("score", [0, 100])
def test_score_bounds_are_inclusive(score: int) -> None:
    assert parse(with_data("survey.completed", score=score)).data.score == score  # type: ignore[attr-defined]


def test_ratio_accepts_whole_numbers() -> None:
    data: Any = parse(with_data("dealer.audit_completed", gps_online_ratio=1)).data
    assert data.gps_online_ratio == 1.0


def test_preferences_update_must_change_something() -> None:
    errors = errors_of(without("customer.preferences_updated", "sms_opt_out", "locale", "preferred_channel"))
    assert set(errors) == {"data"}
    assert "care_opt_out" in errors["data"] and "birthday" in errors["data"]
    data: Any = parse(
        with_data("customer.preferences_updated", sms_opt_out=None, preferred_channel=None, care_opt_out=True)
    ).data
    assert (data.care_opt_out, data.sms_opt_out) == (True, None)
    assert parse(with_data("customer.preferences_updated", sms_opt_out=True)).data.sms_opt_out is True  # type: ignore[attr-defined]


# --- the loan schedule ---------------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["ABC123", "L20261120001P01", "a_b-c_", "x" * 32, "0123456789"])
def test_valid_payment_refs(ref: str) -> None:
    payload = example("loan.booked")
    payload["data"]["schedule"][0]["payment_ref"] = ref
    assert parse(payload).data.schedule[0].payment_ref == ref  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "ref", ["ABC12", "x" * 33, "L2026 P01", "L2026.P01", "L2026/P01", "支付单号123456", ""]
)
def test_invalid_payment_refs(ref: str) -> None:
    payload = example("loan.booked")
    payload["data"]["schedule"][0]["payment_ref"] = ref
    errors = errors_of(payload)
    assert set(errors) == {"data.schedule.0.payment_ref"}
    assert "6-32" in errors["data.schedule.0.payment_ref"]


def test_schedule_seq_must_be_unique() -> None:
    payload = example("loan.booked")
    payload["data"]["schedule"][1]["seq"] = payload["data"]["schedule"][0]["seq"]
    errors = errors_of(payload)
    assert set(errors) == {"data.schedule"}
    assert "seq" in errors["data.schedule"]


def test_schedule_payment_refs_must_be_unique() -> None:
    payload = example("loan.booked")
    payload["data"]["schedule"][1]["payment_ref"] = payload["data"]["schedule"][0]["payment_ref"]
    assert "payment_ref" in errors_of(payload)["data.schedule"]


def test_example_schedule_is_monthly_and_ends_when_the_loan_settles() -> None:
    data: Any = parse(example("loan.booked")).data
    dates = [i.due_date for i in data.schedule]
    assert dates == sorted(dates)
    assert [i.seq for i in data.schedule] == list(range(1, len(dates) + 1))
    settled = datetime.fromisoformat(example("loan.settled")["data"]["at"]).date()
    assert dates[-1] <= settled < dates[-1] + timedelta(days=31)
    assert sum(i.amount_minor for i in data.schedule) >= data.principal_minor


# --- time bounds (DESIGN.md §3: an event that answered 202 never fails later on its own data) ----


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+08:00", "1999-12-31T23:59:59Z", "9999-12-31T23:59:59-08:00"]
)
def test_event_times_before_2000_or_far_ahead_are_refused(value: str) -> None:
    now = datetime.fromisoformat("2026-11-20T10:00:00+08:00")
    payload = with_data("vehicle.delivered", delivered_at=value)
    spec = EVENT_SPECS["vehicle.delivered"]
    with pytest.raises(EventValidationError) as caught:
        validate_event(spec, payload, now=now)
    assert {e.field for e in caught.value.errors} == {"data.delivered_at"}


@pytest.mark.parametrize("field", ["timestamp", "data.at"])
def test_a_time_more_than_five_minutes_ahead_is_refused_at_accept_time_only(field: str) -> None:
    now = datetime.fromisoformat("2026-11-20T10:00:00+08:00")
    payload = example("survey.completed")
    for ahead, refused in ((timedelta(minutes=5), False), (timedelta(minutes=5, seconds=1), True)):
        stamp = (now + ahead).isoformat()
        if field == "timestamp":
            payload["timestamp"] = stamp
        else:
            payload["data"]["at"] = stamp
        spec = EVENT_SPECS["survey.completed"]
        if refused:
            with pytest.raises(EventValidationError) as caught:
                validate_event(spec, payload, now=now)
            assert [e.field for e in caught.value.errors] == [field]
            assert "5 minutes" in caught.value.errors[0].message
        else:
            validate_event(spec, payload, now=now)
        validate_event(spec, payload)  # processing later never re-judges the future bound


@pytest.mark.parametrize("day", ["1899-12-31", "3000-01-01", "9999-12-31"])
def test_dates_stay_far_from_the_calendar_limits(day: str) -> None:
    assert set(errors_of(with_data("insurance.policy_updated", expires_on=day))) == {"data.expires_on"}
