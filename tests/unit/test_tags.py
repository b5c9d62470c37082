"""Preference tags: each rule at both sides of its thresholds, carrying and dropping, and a rule
file that fails loudly (DESIGN.md §6, seed 002 §5 (一), §4 (一))."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain import tags as t

T0 = datetime(2026, 1, 1, 10, tzinfo=UTC)
MONTH = timedelta(days=t.DAYS_PER_MONTH)


def drive(minutes: int, model: str = "S7", days: int = 0) -> t.TestDrive:
    return t.TestDrive(T0 + timedelta(days=days), model, minutes)


def haggle(rounds: int, model: str = "S7", days: int = 0) -> t.Negotiation:
    return t.Negotiation(T0 + timedelta(days=days), model, rounds)


def service(months: float, km: int, kind: str = "maintenance", items: int = 3, ro: str = "") -> t.Service:
    return t.Service(T0 + months * MONTH, kind, km, items, ro or f"RO-{months}-{km}")


def tags_of(**signals: Any) -> dict[str, list[dict[str, Any]]]:
    return t.evaluate(t.Signals(**signals))


@pytest.mark.parametrize(("minutes", "carried"), [(44, False), (45, True), (50, True)])
def test_tech_enthusiast_from_a_test_drive_of_45_minutes(minutes: int, carried: bool) -> None:
    found = tags_of(test_drives=(drive(minutes),))
    assert ("tech_enthusiast" in found) is carried
    if carried:
        assert found["tech_enthusiast"] == [
            {
                "source": "sales.test_drive_completed",
                "at": "2026-01-01T10:00:00.000Z",
                "model": "S7",
                "duration_min": minutes,
            }
        ]


@pytest.mark.parametrize(
    ("packages", "carried"),
    [
        (("adas",), False),
        (("adas", "comfort"), False),
        (("adas", "smart_cockpit"), True),
        (("l2_plus", "smart_cockpit", "adas"), True),
    ],
)
def test_tech_enthusiast_from_two_of_the_technology_packages(
    packages: tuple[str, ...], carried: bool
) -> None:
    found = tags_of(vehicles=(t.Vehicle("V1", packages=packages),))
    assert ("tech_enthusiast" in found) is carried
    if carried:
        (evidence,) = found["tech_enthusiast"]
        assert evidence["vin"] == "V1" and set(evidence["packages"]) <= {"adas", "smart_cockpit", "l2_plus"}


def test_two_packages_on_two_vehicles_do_not_add_up() -> None:
    found = tags_of(vehicles=(t.Vehicle("V1", packages=("adas",)), t.Vehicle("V2", packages=("l2_plus",))))
    assert "tech_enthusiast" not in found


@pytest.mark.parametrize(
    ("second_gap_km", "second_gap_months", "carried"),
    [
        (11999, 12, False),  # 20 % over the plan is 12,000 km or 14.4 months: just under both
        (12000, 12, True),  # km at the threshold
        (10000, 14.4, True),  # months at the threshold
        (10000, 14.3, False),
    ],
)
def test_economy_maintenance_when_the_last_two_gaps_both_exceed_the_plan_by_20_percent(
    second_gap_km: int, second_gap_months: float, carried: bool
) -> None:
    services = (
        service(0, 5000, kind="first_service"),
        service(15, 17000),  # first gap: 12,000 km, 15 months (over)
        service(15 + second_gap_months, 17000 + second_gap_km),
    )
    found = tags_of(vehicles=(t.Vehicle("V1", interval_km=10000, interval_months=12, services=services),))
    assert ("economy_maintenance" in found) is carried
    if carried:
        gaps = found["economy_maintenance"]
        assert [g["km"] for g in gaps] == [12000, second_gap_km] and all(g["vin"] == "V1" for g in gaps)


def test_economy_maintenance_needs_two_gaps_and_only_the_last_two_count() -> None:
    one_gap = (service(0, 5000, kind="first_service"), service(16, 20000))
    assert "economy_maintenance" not in tags_of(vehicles=(t.Vehicle("V1", services=one_gap),))
    on_time_last = (*one_gap, service(32, 35000), service(44, 45000))  # the last gap is on plan
    assert "economy_maintenance" not in tags_of(vehicles=(t.Vehicle("V1", services=on_time_last),))
    repairs_between = (*one_gap, service(20, 22000, kind="repair"), service(32, 35000))  # repairs: no gap
    assert "economy_maintenance" in tags_of(vehicles=(t.Vehicle("V1", services=repairs_between),))


@pytest.mark.parametrize(
    ("items", "count", "carried"),
    [((2, 2), 2, True), ((2, 3), 2, False), ((1,), 1, False), ((0, 1, 2), 3, True)],
)
def test_economy_maintenance_from_two_or_more_services_of_at_most_two_items(
    items: tuple[int, ...], count: int, carried: bool
) -> None:
    services = tuple(service(6 * n, 5000 * (n + 1), kind="repair", items=i) for n, i in enumerate(items))
    found = tags_of(vehicles=(t.Vehicle("V1", services=services),))
    assert len(services) == count
    assert ("economy_maintenance" in found) is carried


@pytest.mark.parametrize(("rounds", "carried"), [(2, False), (3, True), (7, True)])
def test_price_sensitive_from_a_negotiation_of_3_rounds(rounds: int, carried: bool) -> None:
    found = tags_of(negotiations=(haggle(rounds),))
    assert ("price_sensitive" in found) is carried


@pytest.mark.parametrize(
    ("rounds", "minutes", "carried"),
    [(1, 30, True), (0, 60, True), (2, 30, False), (1, 29, False)],
)
def test_config_first_from_at_most_1_round_and_a_test_drive_of_30_minutes(
    rounds: int, minutes: int, carried: bool
) -> None:
    found = tags_of(negotiations=(haggle(rounds),), test_drives=(drive(minutes),))
    assert ("config_first" in found) is carried
    if carried:
        sources = [e["source"] for e in found["config_first"]]
        assert sources == ["sales.negotiation_recorded", "sales.test_drive_completed"]


def test_config_first_needs_a_negotiation_and_every_one_short() -> None:
    assert "config_first" not in tags_of(test_drives=(drive(40),))
    two = (haggle(1, "S7"), haggle(4, "S9"))
    assert "config_first" not in tags_of(negotiations=two, test_drives=(drive(40),))


@pytest.mark.parametrize(
    ("core_need", "concerns", "carried"),
    [
        ("周末带孩子出游，需要家庭用车", (), True),
        ("通勤", ("后排空間夠不夠",), True),  # traditional script
        ("通勤", ("想要7座",), True),
        ("Commuting", ("enough SPACE for the kids",), True),
        ("通勤省油", ("充电方便",), False),
        ("Commuting", ("spacious?",), False),  # English words match whole words
        ("Commuting", ("a family car",), True),
    ],
)
def test_family_space_from_the_handover_form(
    core_need: str, concerns: tuple[str, ...], carried: bool
) -> None:
    found = tags_of(vehicles=(t.Vehicle("V1", core_need=core_need, concerns=concerns),))
    assert ("family_space" in found) is carried


def test_a_tag_still_held_keeps_its_since_and_one_no_longer_held_is_dropped() -> None:
    first, changes = t.carry({}, tags_of(test_drives=(drive(50),)), T0)
    assert first["tech_enthusiast"]["since"] == "2026-01-01T10:00:00.000Z"
    assert [(c.tag, c.change) for c in changes] == [("tech_enthusiast", "added")]
    later = T0 + timedelta(days=3)
    again, changes = t.carry(first, tags_of(test_drives=(drive(50), drive(60, days=2))), later)
    assert again["tech_enthusiast"]["since"] == first["tech_enthusiast"]["since"] and changes == []
    assert len(again["tech_enthusiast"]["evidence"]) == 2
    gone, changes = t.carry(again, {}, later)
    assert gone == {} and [(c.tag, c.change, c.at) for c in changes] == [
        ("tech_enthusiast", "dropped", later)
    ]


def test_every_tag_has_labels_a_talking_point_and_a_seed_source() -> None:
    rules = t.default_rules()
    assert [r.tag for r in rules.rules] == [
        "tech_enthusiast",
        "economy_maintenance",
        "price_sensitive",
        "config_first",
        "family_space",
    ]
    assert t.shown("tech_enthusiast")["label"] == {"zh-CN": "科技配置爱好者", "en": "Tech enthusiast"}
    assert "software update" in t.shown("tech_enthusiast")["talking_point"]["en"]
    for rule in rules.rules:
        assert rule.source.startswith("002") and rule.label.zh_cn and rule.talking_point.en
    assert t.shown("retired_tag")["label"]["en"] == "retired_tag"


def _file() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(t.RULES_FILE.read_text(encoding="utf-8"))
    return loaded


@pytest.mark.parametrize(
    ("breaks", "named", "says"),
    [
        (
            lambda r: r["tags"][2]["when"]["any_of"][0].update(rounds_over={"rounds": 3}),
            "price_sensitive",
            "one",
        ),
        (
            lambda r: r["tags"][2]["when"].update(any_of=[{"negotiation_rounds_at_leest": {"rounds": 3}}]),
            "price_sensitive",
            "unknown condition",
        ),
        (
            lambda r: r["tags"][0]["when"]["any_of"][0]["test_drive_minutes_at_least"].update(minutes="long"),
            "tech_enthusiast",
            "minutes",
        ),
        (lambda r: r["tags"][4]["label"].pop("zh-CN"), "family_space", "zh-CN"),
        (lambda r: r["tags"][3].update(when={"any_of": [], "all_of": []}), "config_first", "one non-empty"),
        (lambda r: r["tags"][1].update(tag="tech_enthusiast"), "tech_enthusiast", "twice"),
        (lambda r: r["tags"][1].update(threshold=3), "economy_maintenance", "threshold"),
    ],
)
def test_a_bad_rule_file_fails_loudly_naming_the_rule(breaks: Any, named: str, says: str) -> None:
    raw = copy.deepcopy(_file())
    breaks(raw)
    with pytest.raises(t.RuleError) as failed:
        t.load_rules(raw)
    assert f"tag rule '{named}'" in str(failed.value) and says in str(failed.value)


def test_an_empty_rule_file_fails() -> None:
    with pytest.raises(t.RuleError):
        t.load_rules({"tags": []})


def test_the_local_stack_refuses_to_start_on_a_bad_rule_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: Any
) -> None:
    from clm.cli import main

    raw = _file()
    raw["tags"][3]["when"] = {"all_of": [{"test_drive_minutes_at_least": {"minutes": 0}}]}
    broken = tmp_path / "tag_rules.json"
    broken.write_text(json.dumps(raw, ensure_ascii=False))
    monkeypatch.setattr(t, "RULES_FILE", broken)
    t.default_rules.cache_clear()
    try:
        assert main(["local"]) == 2
    finally:
        t.default_rules.cache_clear()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tag rule 'config_first'" in err[0] and "minutes" in err[0]
