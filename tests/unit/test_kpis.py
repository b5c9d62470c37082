"""KPI arithmetic on hand-built weeks (DESIGN.md §6, §8): each ratio, the targets at their exact
boundary, empty weeks, open complaints past 24 h, two weeks red, incentives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain import cases, kpis
from chalicelib.domain.kpis import Fact

T = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday of 2026-W47 in Shanghai


def handovers(accurate: int, wrong: int) -> list[Fact]:
    return [Fact("handover", T, {"accurate": True})] * accurate + [
        Fact("handover", T, {"accurate": False})
    ] * wrong


def test_an_empty_week_has_no_data_not_zero() -> None:
    board = kpis.board([], T)
    for name in kpis.KPIS:
        assert board[name] == {"value": None, "target": kpis.TARGETS[name], "status": "no_data", "n": 0}
    assert board["lead_follow_up_hours"] == {"median": None, "n": 0}


def test_handover_accuracy_is_green_at_exactly_98_percent() -> None:
    assert kpis.board(handovers(49, 1), T)["handover_accuracy"] == {
        "value": 0.98,
        "target": 0.98,
        "status": "green",
        "n": 50,
    }
    assert kpis.board(handovers(48, 2), T)["handover_accuracy"]["status"] == "red"


def test_a_kpi_is_judged_on_its_exact_value_and_shown_rounded() -> None:
    figure = kpis.board(handovers(24499, 501), T)["handover_accuracy"]  # 97.996 %
    assert figure["value"] == 0.98 and figure["status"] == "red"


def test_lead_conversion_counts_closed_leads_only() -> None:
    closed = [Fact("lead_closed", T, {"outcome": "converted"})] * 3 + [
        Fact("lead_closed", T, {"outcome": "lost"})
    ] * 7
    figure = kpis.board(closed, T)["lead_conversion"]
    assert figure["value"] == 0.3 and figure["status"] == "green" and figure["n"] == 10
    figure = kpis.board([*closed, Fact("lead_closed", T, {"outcome": "lost"})], T)["lead_conversion"]
    assert figure["value"] == round(3 / 11, 4) and figure["status"] == "red"


def test_joint_satisfaction_is_the_mean_score() -> None:
    surveys = [Fact("survey", T, {"score": s}) for s in (95, 85, 90)]
    assert kpis.board(surveys, T)["joint_satisfaction"] == {
        "value": 90.0,
        "target": 90.0,
        "status": "green",
        "n": 3,
    }
    assert kpis.board(surveys[1:2], T)["joint_satisfaction"]["status"] == "red"


def complaint(opened: datetime, solved_after: timedelta | None) -> Fact:
    due = opened + cases.JOINT_SOLUTION_WINDOW
    return Fact("complaint", due, {}, due, opened + solved_after if solved_after is not None else None)


def test_complaint_response_counts_late_and_open_past_24h_as_misses() -> None:
    on_time = complaint(T, timedelta(hours=24))  # exactly at the deadline: in time
    late = complaint(T, timedelta(hours=24, seconds=1))
    open_past = complaint(T - timedelta(days=2), None)
    still_running = complaint(T, None)  # due at T + 24 h: not counted before then
    now = T + timedelta(hours=23)
    figure = kpis.board([on_time, late, open_past, still_running], now)["complaint_response_24h"]
    assert figure["n"] == 3 and figure["value"] == round(1 / 3, 4) and figure["status"] == "red"
    later = kpis.board([on_time, still_running], T + timedelta(hours=24))["complaint_response_24h"]
    assert later["n"] == 2 and later["value"] == 0.5  # its 24 h are over: a miss


def test_the_follow_up_median() -> None:
    hours = [Fact("follow_up", T, {"hours": h}) for h in (1, 30, 2.5)]
    assert kpis.board(hours, T)["lead_follow_up_hours"] == {"median": 2.5, "n": 3}


def test_two_weeks_red_and_a_week_without_data_is_not_red() -> None:
    red = kpis.board(handovers(1, 1), T)
    green = kpis.board(handovers(1, 0), T)
    empty = kpis.board([], T)
    assert kpis.red_twice(red, red) == ["handover_accuracy"]
    assert kpis.red_twice(red, green) == []
    assert kpis.red_twice(red, empty) == []


def test_weeks_are_iso_weeks_in_the_dealers_time_zone() -> None:
    start, end = kpis.week_bounds("2026-W48", "Asia/Shanghai")
    assert start == datetime(2026, 11, 22, 16, 0, tzinfo=UTC)  # Monday 00:00 in Shanghai
    assert end - start == timedelta(days=7)
    assert kpis.week_of(start, "Asia/Shanghai") == "2026-W48"
    assert kpis.week_of(start - timedelta(milliseconds=1), "Asia/Shanghai") == "2026-W47"
    assert kpis.previous_week("2027-W01") == "2026-W53"
    for bad in ("2026-48", "2026-W54", "2025-W53", "W48", "", "0001-W01", "1999-W52", "9999-W52"):
        with pytest.raises(ValueError):
            kpis.parse_week(bad)
    start, end = kpis.month_bounds("2026-12", "Asia/Shanghai")
    assert (start, end) == (datetime(2026, 11, 30, 16, tzinfo=UTC), datetime(2026, 12, 31, 16, tzinfo=UTC))
    for bad in ("2026-13", "0001-01", "2026-1"):
        with pytest.raises(ValueError):
            kpis.parse_month(bad)


def test_incentives_lower_the_factor_below_85_and_count_converted_leads() -> None:
    facts = [
        Fact("survey", T, {"score": 80, "advisor_id": "S-01"}),
        Fact("survey", T, {"score": 89, "advisor_id": "S-01"}),  # mean 84.5
        Fact("survey", T, {"score": 85, "advisor_id": "S-02"}),  # exactly 85: not lowered
        Fact("lead_closed", T, {"outcome": "converted", "captured_by": "A-07", "advisor_id": "S-03"}),
        Fact("lead_closed", T, {"outcome": "converted", "captured_by": "A-07", "advisor_id": "S-01"}),
        Fact("lead_closed", T, {"outcome": "lost", "captured_by": "A-08", "advisor_id": "S-01"}),
    ]
    found = {(i["role"], i["staff_id"]): i for i in kpis.incentives(facts, 0.9)}
    assert found[("sales", "S-01")]["after_sales_satisfaction"] == {"mean": 84.5, "n": 2}
    assert found[("sales", "S-01")]["commission_factor"] == 0.9
    assert found[("sales", "S-02")]["commission_factor"] == 1.0
    assert found[("sales", "S-03")] == {
        "staff_id": "S-03",
        "role": "sales",
        "after_sales_satisfaction": {"mean": None, "n": 0},
        "commission_factor": 1.0,
    }
    assert found[("after_sales", "A-07")]["converted_leads"] == 2
    assert found[("after_sales", "A-08")]["converted_leads"] == 0


def test_incentives_list_the_dealer_s_staff_without_figures_too() -> None:
    found = kpis.incentives([], 0.9, {"sales": ["S-09"], "after_sales": ["A-09"]})
    assert found == [
        {
            "staff_id": "S-09",
            "role": "sales",
            "after_sales_satisfaction": {"mean": None, "n": 0},
            "commission_factor": 1.0,
        },
        {"staff_id": "A-09", "role": "after_sales", "converted_leads": 0},
    ]


def test_audit_risk_signals() -> None:
    assert cases.audit_risks(42, 42, True, 0.95) == []
    assert cases.audit_risks(42, 41, False, 0.9499) == [
        "inventory_short",
        "documents_incomplete",
        "gps_offline",
    ]


def test_feedback_and_improvement_clocks() -> None:
    first, solution = cases.feedback_tasks("dealer-a", "FB-1", T)
    assert (first.due_at - T, solution.due_at - T) == (timedelta(hours=24), timedelta(hours=72))
    assert first.assignee_role == "hq" and first.assignee_id is None
    assert cases.clocks_stopped("solution") == ("first_reply", "solution")
    meeting, plan = cases.improvement_tasks("dealer-a", "2026-W47", "lead_conversion", T)
    assert (meeting.due_at - T, plan.due_at - T) == (timedelta(hours=24), timedelta(hours=48))
    assert meeting.task_id != plan.task_id and meeting.assignee_role == "ops"
