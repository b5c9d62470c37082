"""Complaints, red alerts, leads, dealer feedback, audits, KPIs and incentives through the webhook,
the workers and the read API, on a mocked account (SNS → SQS subscriptions with filter policies)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from tests.conftest import Harness, pin_both
from tests.functional.test_lifecycle import body_of, subscribe
from tests.functional.test_reminders import NOW, VIN, delivery, event, post, sweep

OPENED = NOW - timedelta(hours=1)
ROLES = ("qc", "sales", "after_sales")


def complaint(
    text: str, complaint_id: str = "CP-1", opened_at: datetime = OPENED, **changes: Any
) -> dict[str, Any]:
    return event(
        "complaint.opened", complaint_id=complaint_id, text=text, opened_at=opened_at.isoformat(), **changes
    )


def step(kind: str, complaint_id: str = "CP-1", at: datetime = NOW, **changes: Any) -> dict[str, Any]:
    return event(f"complaint.{kind}", complaint_id=complaint_id, at=at.isoformat(), **changes)


def all_tasks(harness: Harness, dealer: str = "dealer-a", kind: str | None = None) -> list[dict[str, Any]]:
    items = body_of(harness.get(f"/dealers/{dealer}/tasks?limit=100", dealer))["items"]
    return [t for t in items if kind is None or t["kind"] == kind]


def view(harness: Harness, dealer: str = "dealer-a") -> Any:
    return body_of(harness.get(f"/dealers/{dealer}/vehicles/{VIN}", dealer))


# --- red alerts -----------------------------------------------------------------------------------


def test_a_traditional_brake_failure_reaches_every_role_s_filtered_subscription_once(
    harness: Harness,
) -> None:
    post(harness, delivery())
    queues = {role: subscribe("red_alerts", {"roles": [role]}, role) for role in ROLES}
    collections = subscribe("red_alerts", {"roles": ["collections"]}, "collections")
    text = "客戶來電 13800138000：高速上剎車失靈，非常危險"
    post(harness, complaint(text))
    post(harness, complaint(text), msg_id="resent-under-another-id")

    for role, received in queues.items():
        got = received()
        assert len(got) == 1, role
        body, attributes = got[0]["body"], got[0]["attributes"]
        assert body["complaint_id"] == "CP-1" and body["dealer_id"] == "dealer-a" and body["vin"] == VIN
        assert body["customer_id"] == "C-1001" and body["severity"] == "red"
        assert body["alert_id"] and datetime.fromisoformat(body["opened_at"]) == OPENED
        assert [m["rule"] for m in body["matched"]] == ["brake_failure"]
        assert "13800138000" not in body["excerpt"] and "剎車失靈" in body["excerpt"]
        assert json.loads(attributes["roles"]["Value"]) == list(ROLES)
        assert attributes["roles"]["Type"] == "String.Array"
        assert attributes["severity"]["Value"] == "red" and attributes["dealer_id"]["Value"] == "dealer-a"
    assert collections() == []

    found = view(harness)
    (record,) = found["complaints"]
    assert (
        record["severity"] == "red" and record["status"] == "open" and record["alert_id"] == body["alert_id"]
    )
    assert "13800138000" not in record["text"]
    types = [e["type"] for e in found["timeline"]]
    assert "alert.raised" in types and "complaint.opened" in types
    assert "13800138000" not in json.dumps(found)
    (task,) = all_tasks(harness, kind="complaint_joint_solution")
    advisor = event("vehicle.delivered")["data"]["sales_advisor"]["id"]
    specialist = event("vehicle.delivered")["data"]["service_specialist"]["id"]
    assert task["assignee_id"] == advisor and task["assignee_role"] == "sales" and task["vin"] == VIN
    assert task["ref"] == "CP-1" and datetime.fromisoformat(task["due_at"]) == OPENED + timedelta(hours=24)
    assert {"role": "after_sales", "id": specialist} in task["details"]["involves"]
    assert {"role": "qc", "id": None} in task["details"]["involves"]


def test_benign_and_near_miss_complaints_raise_nothing_but_keep_the_near_miss(harness: Harness) -> None:
    post(harness, delivery())
    alerts = subscribe("red_alerts")
    post(harness, complaint("刹车片更换多少钱", "CP-benign"))
    post(harness, complaint("刹车有点软，空调也失灵", "CP-near"))
    assert alerts() == []
    records = {c["complaint_id"]: c for c in view(harness)["complaints"]}
    assert records["CP-benign"]["severity"] == "normal" and records["CP-benign"]["near_misses"] == []
    assert [m["rule"] for m in records["CP-near"]["near_misses"]] == ["brake_failure"]
    assert records["CP-near"]["alert_id"] is None
    assert len(all_tasks(harness, kind="complaint_joint_solution")) == 2  # every complaint gets one


def test_a_red_alert_is_not_held_by_quiet_hours(harness: Harness) -> None:
    night = datetime.fromisoformat("2026-11-19T23:30:00+08:00")
    pin_both(night)
    post(harness, delivery(night - timedelta(days=1)))
    alerts = subscribe("red_alerts")
    post(harness, complaint("车头冒烟", opened_at=night - timedelta(minutes=1)))
    assert len(alerts()) == 1


# --- the joint solution ---------------------------------------------------------------------------


def test_the_joint_solution_clock_stops_at_the_solution_and_a_miss_is_a_breach_once(harness: Harness) -> None:
    ops = subscribe("ops")
    post(harness, complaint("空调不制冷", "CP-solved", vin=None))
    post(harness, complaint("车机死机", "CP-missed", vin=None))
    tasks = {t["ref"]: t for t in all_tasks(harness, kind="complaint_joint_solution")}
    assert tasks["CP-solved"]["assignee_id"] is None and tasks["CP-solved"]["vin"] is None
    assert tasks["CP-solved"]["assignee_role"] == "sales"

    post(harness, step("acknowledged", "CP-solved", at=OPENED + timedelta(hours=1)))
    assert {t["ref"]: t["status"] for t in all_tasks(harness)}["CP-solved"] == "open"
    pin_both(OPENED + timedelta(hours=23))
    post(harness, step("solution_proposed", "CP-solved", at=OPENED + timedelta(hours=23)))
    pin_both(OPENED + timedelta(hours=30))
    post(harness, step("resolved", "CP-solved", at=OPENED + timedelta(hours=30), satisfaction=88))

    due = OPENED + timedelta(hours=24)
    sweep(harness, due - timedelta(seconds=1))
    assert {t["ref"]: t["status"] for t in all_tasks(harness)} == {"CP-solved": "done", "CP-missed": "open"}
    sweep(harness, due)  # the deadline itself: missed
    sweep(harness, due + timedelta(hours=1))
    assert {t["ref"]: t["status"] for t in all_tasks(harness)}["CP-missed"] == "overdue"
    breaches = [m["body"] for m in ops() if m["body"]["event"] == "sla.breached"]
    assert [b["task"]["ref"] for b in breaches] == ["CP-missed"]
    assert breaches[0]["kind"] == "complaint_joint_solution"


def test_complaint_steps_before_the_complaint_still_close_its_task(harness: Harness) -> None:
    post(harness, step("solution_proposed", "CP-early", at=OPENED + timedelta(minutes=30)))
    post(harness, complaint("异味很重", "CP-early", vin=None))
    (task,) = all_tasks(harness, kind="complaint_joint_solution")
    assert task["status"] == "done"


# --- leads ----------------------------------------------------------------------------------------


def lead(lead_id: str, grade: str = "A", captured_at: datetime = OPENED, **changes: Any) -> dict[str, Any]:
    return event(
        "lead.captured", lead_id=lead_id, grade=grade, captured_at=captured_at.isoformat(), **changes
    )


def test_a_lead_is_pushed_to_the_advisor_at_once_and_the_follow_up_closes_it(harness: Harness) -> None:
    post(harness, delivery())
    staff_tasks = subscribe("staff_tasks")
    post(harness, lead("LD-1"))
    (task,) = all_tasks(harness, kind="lead_follow_up")
    advisor = event("vehicle.delivered")["data"]["sales_advisor"]["id"]
    assert task["assignee_id"] == advisor and task["ref"] == "LD-1" and task["details"]["grade"] == "A"
    assert datetime.fromisoformat(task["due_at"]) == NOW + timedelta(hours=24)  # 24 h from the push
    pushed = [m for m in staff_tasks() if m["body"].get("task", {}).get("kind") == "lead_follow_up"]
    assert len(pushed) == 1 and pushed[0]["attributes"]["role"]["Value"] == "sales"
    pin_both(NOW + timedelta(hours=2))
    post(
        harness,
        event(
            "lead.followed_up", lead_id="LD-1", outcome="converted", at=(NOW + timedelta(hours=2)).isoformat()
        ),
    )
    assert all_tasks(harness, kind="lead_follow_up")[0]["status"] == "done"
    (record,) = view(harness)["leads"]
    assert record["status"] == "converted" and record["pushed_at"] is not None


def test_an_unanswered_grade_a_lead_is_escalated_and_a_grade_b_one_is_only_a_breach(harness: Harness) -> None:
    ops = subscribe("ops")
    post(harness, lead("LD-A", "A", vin=None))
    post(harness, lead("LD-B", "B", vin=None))
    due = NOW + timedelta(hours=24)  # 24 h from the push (now), not from the capture
    sweep(harness, due - timedelta(milliseconds=1))
    assert {t["status"] for t in all_tasks(harness, kind="lead_follow_up")} == {"open"}
    sweep(harness, due)
    assert {t["status"] for t in all_tasks(harness, kind="lead_follow_up")} == {"overdue"}
    bodies = [m["body"] for m in ops()]
    assert sorted(b["task"]["ref"] for b in bodies if b["event"] == "sla.breached") == ["LD-A", "LD-B"]
    escalated = [b for b in bodies if b["event"] == "lead.escalated"]
    assert [b["lead_id"] for b in escalated] == ["LD-A"]
    assert (
        escalated[0]["task_id"]
        and escalated[0]["kind"] == "lead_follow_up"
        and escalated[0]["dealer_id"] == "dealer-a"
    )
    sweep(harness, NOW + timedelta(hours=26))
    assert ops() == []  # once


# --- dealer feedback and audits -------------------------------------------------------------------


def feedback_tasks(harness: Harness, dealer: str = "dealer-a") -> dict[str, dict[str, Any]]:
    return {t["details"]["clock"]: t for t in all_tasks(harness, dealer, kind="dealer_feedback_reply")}


def reply(kind: str, feedback_id: str = "FB-77", at: datetime = NOW, **changes: Any) -> dict[str, Any]:
    return event("dealer.feedback_replied", feedback_id=feedback_id, kind=kind, at=at.isoformat(), **changes)


def test_dealer_feedback_runs_two_clocks_that_hq_s_replies_stop(harness: Harness) -> None:
    opened = NOW - timedelta(hours=2)
    post(harness, event("dealer.feedback_opened", opened_at=opened.isoformat()))
    clocks = feedback_tasks(harness)
    assert datetime.fromisoformat(clocks["first_reply"]["due_at"]) == opened + timedelta(hours=24)
    assert datetime.fromisoformat(clocks["solution"]["due_at"]) == opened + timedelta(hours=72)
    assert {t["assignee_role"] for t in clocks.values()} == {"hq"}
    post(harness, reply("first_reply"), sender="hq")
    assert {k: t["status"] for k, t in feedback_tasks(harness).items()} == {
        "first_reply": "done",
        "solution": "open",
    }
    # The dealer may not complete HQ's clock itself.
    task_id = clocks["solution"]["task_id"]
    forbidden = harness.client.http.post(
        f"/dealers/dealer-a/tasks/{task_id}/complete",
        headers={"authorization": f"Bearer {harness.creds['dealer-a'].api_key}"},
    )
    assert forbidden.status_code == 403
    pin_both(NOW + timedelta(minutes=5))
    post(harness, reply("solution", at=NOW + timedelta(minutes=5)), sender="hq")
    assert {t["status"] for t in feedback_tasks(harness).values()} == {"done"}


def test_a_reply_before_the_feedback_and_a_reply_to_an_id_two_dealers_used(harness: Harness) -> None:
    post(harness, reply("solution", "FB-early"), sender="hq")
    post(
        harness,
        event(
            "dealer.feedback_opened", feedback_id="FB-early", opened_at=(NOW - timedelta(hours=1)).isoformat()
        ),
    )
    assert {t["status"] for t in feedback_tasks(harness).values()} == {"done"}

    # Two dealers used one id: a reply naming no dealer answers the one that reached CLM first,
    # whatever the other (perhaps hostile) sends; naming a dealer answers that dealer.
    for dealer in ("dealer-a", "dealer-b"):
        post(harness, event("dealer.feedback_opened", feedback_id="FB-same"), sender=dealer)
    post(harness, reply("first_reply", "FB-same"), sender="hq")

    def same(dealer: str) -> dict[str, str]:
        return {
            t["details"]["clock"]: t["status"] for t in all_tasks(harness, dealer) if t["ref"] == "FB-same"
        }

    assert same("dealer-a") == {"first_reply": "done", "solution": "open"}
    assert same("dealer-b") == {"first_reply": "open", "solution": "open"}
    post(harness, reply("solution", "FB-same", dealer_id="dealer-b"), sender="hq")
    assert same("dealer-a") == {"first_reply": "done", "solution": "open"}
    assert same("dealer-b") == {"first_reply": "done", "solution": "done"}


def test_an_early_reply_is_applied_once_not_inherited_by_a_later_dealer(harness: Harness) -> None:
    post(harness, reply("first_reply", "FB-once"), sender="hq")
    post(harness, event("dealer.feedback_opened", feedback_id="FB-once"))
    post(harness, event("dealer.feedback_opened", feedback_id="FB-once"), sender="dealer-b")
    assert feedback_tasks(harness)["first_reply"]["status"] == "done"
    assert feedback_tasks(harness, "dealer-b")["first_reply"]["status"] == "open"


def test_an_audit_shortfall_is_a_risk_signal_on_ops_and_on_the_board(harness: Harness) -> None:
    ops = subscribe("ops")
    audited = NOW - timedelta(hours=3)
    post(
        harness,
        event(
            "dealer.audit_completed",
            audited_at=audited.isoformat(),
            inventory_found=42,
            gps_online_ratio=0.97,
        ),
    )
    assert ops() == []  # nothing short
    post(
        harness,
        event(
            "dealer.audit_completed",
            audited_at=NOW.isoformat(),
            gps_online_ratio=0.9,
            documents_complete=False,
        ),
    )
    (signal,) = [m["body"] for m in ops()]
    assert signal["event"] == "dealer.risk_signal" and signal["dealer_id"] == "dealer-a"
    assert signal["reasons"] == ["inventory_short", "documents_incomplete", "gps_offline"]
    board = body_of(harness.get("/dealers/dealer-a/kpis"))
    assert [r["reasons"] for r in board["risk_signals"]] == [signal["reasons"]]


# --- KPIs and incentives --------------------------------------------------------------------------


def test_the_kpi_board_of_a_week_and_of_an_empty_week(harness: Harness) -> None:
    post(harness, delivery())
    post(harness, event("handover.confirmed", corrections=["basic.model"]))
    post(harness, event("survey.completed", score=96, at=NOW.isoformat()))
    post(harness, complaint("车机死机", "CP-k1", opened_at=NOW - timedelta(hours=30)))  # due in this week
    post(harness, step("solution_proposed", "CP-k1", at=NOW - timedelta(hours=8)))  # within 24 h
    post(harness, complaint("异响", "CP-k2", opened_at=NOW - timedelta(hours=26)))  # open past 24 h: a miss
    post(harness, lead("LD-k1", captured_at=NOW - timedelta(minutes=5)))
    post(harness, event("lead.followed_up", lead_id="LD-k1", outcome="lost", at=NOW.isoformat()))

    board = body_of(harness.get("/dealers/dealer-a/kpis?week=2026-W47"))
    assert board["week"] == "2026-W47"
    assert board["handover_accuracy"] == {"value": 0.0, "target": 0.98, "status": "red", "n": 1}
    assert board["joint_satisfaction"] == {"value": 96.0, "target": 90.0, "status": "green", "n": 1}
    assert board["complaint_response_24h"] == {"value": 0.5, "target": 0.95, "status": "red", "n": 2}
    assert board["lead_conversion"] == {"value": 0.0, "target": 0.3, "status": "red", "n": 1}
    assert board["lead_follow_up_hours"] == {"median": 0.0, "n": 1}
    assert body_of(harness.get("/dealers/dealer-a/kpis"))["week"] == "2026-W47"  # default: this week

    empty = body_of(harness.get("/dealers/dealer-a/kpis?week=2026-W40"))
    assert {k: empty[k]["status"] for k in ("handover_accuracy", "lead_conversion")} == {
        "handover_accuracy": "no_data",
        "lead_conversion": "no_data",
    }
    assert empty["joint_satisfaction"]["value"] is None
    bad = harness.get("/dealers/dealer-a/kpis?week=2026-48")
    assert bad.status_code == 400 and body_of(bad)["errors"][0]["field"] == "week"
    assert harness.get("/dealers/dealer-a/kpis", "dealer-b").status_code == 404
    assert body_of(harness.get("/dealers/dealer-a/kpis?week=2026-W47", "hq"))["handover_accuracy"]["n"] == 1


def test_a_kpi_red_two_weeks_running_opens_one_improvement_case(harness: Harness) -> None:
    ops = subscribe("ops")
    first_week = datetime.fromisoformat("2026-11-10T10:00:00+08:00")  # W46
    for offset, vin_suffix in ((0, "1"), (7, "2")):
        at = first_week + timedelta(days=offset)
        pin_both(at)
        vin = VIN[:-1] + vin_suffix
        payload = delivery(at - timedelta(hours=1))
        payload["data"]["vin"] = vin
        post(harness, payload)
        confirmed = event("handover.confirmed", corrections=["basic.model"])
        confirmed["data"]["vin"] = vin
        post(harness, confirmed)
    monday = datetime.fromisoformat("2026-11-23T09:00:00+08:00")  # W48 began: W47 is judged
    pin_both(monday)
    report = sweep(harness, monday)
    assert report.improvement_cases == 1 and report.kpi_weeks_judged >= 1
    cases = [m["body"] for m in ops() if m["body"]["event"] == "kpi.improvement_case"]
    assert [(c["kpi"], c["week"], c["dealer_id"]) for c in cases] == [
        ("handover_accuracy", "2026-W47", "dealer-a")
    ]
    plans = {t["details"]["clock"]: t for t in all_tasks(harness, kind="improvement_plan")}
    assert datetime.fromisoformat(plans["meeting"]["due_at"]) == monday + timedelta(hours=24)
    assert datetime.fromisoformat(plans["plan"]["due_at"]) == monday + timedelta(hours=48)
    assert {t["assignee_role"] for t in plans.values()} == {"ops"}
    again = sweep(harness, monday + timedelta(hours=1))
    assert again.improvement_cases == 0 and ops() == []


def test_incentives_of_a_month(harness: Harness) -> None:
    post(harness, delivery())
    post(harness, event("survey.completed", score=80, at=NOW.isoformat()))
    post(harness, lead("LD-i", captured_by="A-07"))
    post(harness, event("lead.followed_up", lead_id="LD-i", outcome="converted", at=NOW.isoformat()))
    found = body_of(harness.get("/dealers/dealer-a/incentives?month=2026-11"))
    advisor = event("vehicle.delivered")["data"]["sales_advisor"]["id"]
    items = {(i["role"], i["staff_id"]): i for i in found["items"]}
    assert items[("sales", advisor)]["after_sales_satisfaction"] == {"mean": 80.0, "n": 1}
    assert items[("sales", advisor)]["commission_factor"] == 0.9
    assert items[("after_sales", "A-07")]["converted_leads"] == 1
    specialist = event("vehicle.delivered")["data"]["service_specialist"]["id"]
    october = {
        (i["role"], i["staff_id"]): i
        for i in body_of(harness.get("/dealers/dealer-a/incentives?month=2026-10"))["items"]
    }
    assert october[("sales", advisor)] == {  # no data: listed, not lowered
        "staff_id": advisor,
        "role": "sales",
        "after_sales_satisfaction": {"mean": None, "n": 0},
        "commission_factor": 1.0,
    }
    assert october[("after_sales", specialist)]["converted_leads"] == 0
    assert october[("after_sales", "A-07")]["converted_leads"] == 0
    assert harness.get("/dealers/dealer-a/incentives?month=2026-13").status_code == 400


# --- a second, hostile dealer ---------------------------------------------------------------------


def test_a_hostile_dealer_s_complaints_leads_and_feedback_change_and_reveal_nothing_of_another(
    harness: Harness,
) -> None:
    post(harness, delivery())
    post(harness, complaint("空调不制冷", "CP-1"))
    post(harness, lead("LD-1"))
    post(harness, event("dealer.feedback_opened", feedback_id="FB-1"))
    before_view = view(harness)
    before_tasks = all_tasks(harness)
    before_board = body_of(harness.get("/dealers/dealer-a/kpis"))
    alerts = subscribe("red_alerts")

    # dealer-b reuses dealer-a's VIN and ids, and steps on dealer-a's complaint and lead.
    post(harness, complaint("剎車失靈", "CP-1"), sender="dealer-b")
    post(harness, step("solution_proposed", "CP-1"), sender="dealer-b")
    post(harness, step("resolved", "CP-1", satisfaction=0), sender="dealer-b")
    post(harness, lead("LD-1", grade="B"), sender="dealer-b")
    post(
        harness,
        event("lead.followed_up", lead_id="LD-1", outcome="lost", at=NOW.isoformat()),
        sender="dealer-b",
    )
    post(harness, event("dealer.feedback_opened", feedback_id="FB-1"), sender="dealer-b")
    post(harness, event("survey.completed", score=0, at=NOW.isoformat()), sender="dealer-b")
    post(harness, event("dealer.audit_completed", documents_complete=False), sender="dealer-b")
    # HQ's reply is HQ's alone: a dealer may not stop a clock.
    assert harness.post("dealer-b", reply("solution", "FB-1", dealer_id="dealer-a")).status_code == 403

    assert view(harness) == before_view
    assert all_tasks(harness) == before_tasks
    assert body_of(harness.get("/dealers/dealer-a/kpis")) == before_board

    (alert,) = alerts()  # dealer-b's own red complaint, to dealer-b's staff, with nothing of dealer-a
    assert (
        alert["body"]["dealer_id"] == "dealer-b" and alert["attributes"]["dealer_id"]["Value"] == "dealer-b"
    )
    text = json.dumps(alert)
    delivered = event("vehicle.delivered")["data"]
    for secret in (
        delivered["sales_advisor"]["id"],
        delivered["service_specialist"]["id"],
        delivered["customer"]["name"],
    ):
        assert secret not in text
    b_tasks = all_tasks(harness, "dealer-b")
    joint = [t for t in b_tasks if t["kind"] == "complaint_joint_solution"]
    assert (
        joint and joint[0]["assignee_id"] is None and joint[0]["vin"] is None
    )  # not linked to dealer-a's car
    assert joint[0]["details"]["involves"][0]["id"] is None
    assert delivered["sales_advisor"]["id"] not in json.dumps(b_tasks)
    assert harness.get(f"/dealers/dealer-b/vehicles/{VIN}", "dealer-b").status_code == 404
    assert harness.get("/dealers/dealer-a/incentives", "dealer-b").status_code == 404


def test_the_dealer_timeline_shows_its_records_newest_first_page_by_page(harness: Harness) -> None:
    post(harness, delivery())
    post(harness, complaint("剎車失靈，電話 13800138000", "CP-t", opened_at=NOW - timedelta(hours=4)))
    post(harness, lead("LD-t", captured_at=NOW - timedelta(hours=3)))
    post(
        harness,
        event("dealer.feedback_opened", feedback_id="FB-t", opened_at=(NOW - timedelta(hours=2)).isoformat()),
    )
    post(harness, event("dealer.audit_completed", audited_at=(NOW - timedelta(hours=1)).isoformat()))
    post(harness, complaint("异响", "CP-other"), sender="dealer-b")

    first = body_of(harness.get("/dealers/dealer-a/timeline?limit=3"))
    assert [e["type"] for e in first["items"]] == [
        "dealer.audit_completed",
        "dealer.feedback_opened",
        "lead.captured",
    ]
    rest = body_of(harness.get(f"/dealers/dealer-a/timeline?limit=3&next={first['next']}"))
    assert [e["type"] for e in rest["items"]] == ["alert.raised", "complaint.opened"]
    assert rest["next"] is None
    assert "13800138000" not in json.dumps(rest)  # the complaint's text, without the phone number
    assert "CP-other" not in json.dumps(first) + json.dumps(rest)
    b_page = body_of(harness.get("/dealers/dealer-b/timeline", "dealer-b"))
    assert [e["data"].get("complaint_id") for e in b_page["items"]] == ["CP-other"]
    assert harness.get(f"/dealers/dealer-b/timeline?next={first['next']}", "dealer-b").status_code == 400
    assert harness.get("/dealers/dealer-a/timeline?next=garbage").status_code == 400
    assert harness.get("/dealers/dealer-a/timeline", "dealer-b").status_code == 404


def test_a_step_applied_while_its_complaint_is_being_opened_still_ends_the_task(
    harness: Harness, monkeypatch: Any
) -> None:
    """The step runs after the complaint's record is written but before its task exists (two
    stream lanes at once): the complaint, reading its record again, ends the task."""
    from chalicelib.service import work
    from chalicelib.service.handlers import care, dealers

    real_stream = harness.stream.handler
    harness.stream.handler = lambda event, context: None  # accept now, apply by hand
    assert (
        harness.post("dealer-a", complaint("异味", "CP-race", vin=None), msg_id="race-open").status_code
        == 202
    )
    assert (
        harness.post("dealer-a", step("solution_proposed", "CP-race"), msg_id="race-step").status_code == 202
    )
    assert (
        harness.post(
            "dealer-a", event("dealer.feedback_opened", feedback_id="FB-race"), msg_id="race-fb"
        ).status_code
        == 202
    )
    assert (
        harness.post(
            "hq", reply("solution", "FB-race", dealer_id="dealer-a"), msg_id="race-reply"
        ).status_code
        == 202
    )
    harness.drain()
    harness.stream.handler = real_stream
    between = {"race-open": ("dealer-a", "race-step"), "race-fb": ("hq", "race-reply")}
    running: list[str] = []

    def interleaved(real: Any) -> Any:
        def open_task(*args: Any, **kwargs: Any) -> Any:
            other = between.get(running[-1])
            if other is not None and other[1] not in running:
                running.append(other[1])
                assert work.handle(work.inbox_ref(*other)) == "applied"
            return real(*args, **kwargs)

        return open_task

    monkeypatch.setattr(care, "open_task", interleaved(care.open_task))
    monkeypatch.setattr(dealers, "open_task", interleaved(dealers.open_task))
    for webhook_id in ("race-open", "race-fb"):
        running.append(webhook_id)
        assert work.handle(work.inbox_ref("dealer-a", webhook_id)) == "applied"
    harness.drain()
    assert [t["status"] for t in all_tasks(harness, kind="complaint_joint_solution")] == ["done"]
    assert {t["status"] for t in all_tasks(harness, kind="dealer_feedback_reply")} == {"done"}


def test_a_handover_confirmed_again_under_another_id_counts_once(harness: Harness) -> None:
    post(harness, delivery())
    post(harness, event("handover.confirmed", corrections=["basic.model"]), msg_id="confirm-1")
    pin_both(NOW + timedelta(minutes=3))
    post(harness, event("handover.confirmed", corrections=[]), msg_id="confirm-2")  # corrected
    board = body_of(harness.get("/dealers/dealer-a/kpis?week=2026-W47"))
    assert board["handover_accuracy"] == {"value": 1.0, "target": 0.98, "status": "green", "n": 1}


# --- found by review: order, resends, a hostile id, the calendar's edge ----------------------


def _follow_up(outcome: str, at: Any, lead_id: str = "LD-o") -> dict[str, Any]:
    return event("lead.followed_up", lead_id=lead_id, outcome=outcome, at=at.isoformat())


def test_a_hostile_dealer_reusing_a_feedback_id_does_not_stop_hq_s_reply_reaching_dealer_a(
    harness: Harness,
) -> None:
    """dealer-b opens feedback under dealer-a's id: HQ's reply (the §4 fields only) still stops
    dealer-a's first-reply clock (dealer-a's reached CLM first)."""
    post(harness, event("dealer.feedback_opened", feedback_id="FB-1"))
    post(harness, event("dealer.feedback_opened", feedback_id="FB-1"), sender="dealer-b")  # hostile
    post(harness, reply("first_reply", "FB-1"), sender="hq")  # feedback_id, by, at, kind: DESIGN §4
    assert feedback_tasks(harness)["first_reply"]["status"] == "done"


def test_lead_follow_ups_out_of_order_converge_on_the_first_follow_up(harness: Harness) -> None:
    """contacted at +1 h, converted at +5 h; the network delivers them in either order. The record's
    follow-up time and the KPI's follow-up hours must not depend on arrival order."""
    for dealer in ("dealer-a", "dealer-b"):
        post(harness, lead("LD-o", captured_at=NOW - timedelta(minutes=1), vin=None), sender=dealer)
    first, later = NOW + timedelta(hours=1), NOW + timedelta(hours=5)  # pushed at NOW
    pin_both(later + timedelta(minutes=1))
    for dealer, order in (("dealer-a", ("contacted", "converted")), ("dealer-b", ("converted", "contacted"))):
        for outcome in order:
            post(harness, _follow_up(outcome, first if outcome == "contacted" else later), sender=dealer)
    boards = {
        d: body_of(harness.get(f"/dealers/{d}/kpis?week=2026-W47", d))["lead_follow_up_hours"]
        for d in ("dealer-a", "dealer-b")
    }
    assert boards["dealer-a"] == {"median": 1.0, "n": 1}
    assert boards["dealer-b"] == boards["dealer-a"]


def test_two_solution_proposals_out_of_order_give_the_same_kpi(harness: Harness) -> None:
    """A late revised proposal (30 h) arriving before the first one (2 h): the earliest counts, in
    either order."""
    opened = NOW - timedelta(hours=40)
    early, late = opened + timedelta(hours=2), opened + timedelta(hours=30)
    for dealer, order in (("dealer-a", (early, late)), ("dealer-b", (late, early))):
        post(harness, complaint("空调不制冷", "CP-o", opened_at=opened, vin=None), sender=dealer)
        for at in order:
            post(
                harness,
                event("complaint.solution_proposed", complaint_id="CP-o", at=at.isoformat()),
                sender=dealer,
            )
    got = {
        d: body_of(harness.get(f"/dealers/{d}/kpis?week=2026-W47", d))["complaint_response_24h"]["value"]
        for d in ("dealer-a", "dealer-b")
    }
    assert got == {"dealer-a": 1.0, "dealer-b": 1.0}


def test_a_complaint_resent_with_a_corrected_opening_time_counts_once(harness: Harness) -> None:
    """The DMS resends CP-r under a new webhook id with opened_at corrected by an hour: one record,
    one task, one fact in the KPI."""
    opened = NOW - timedelta(hours=40)
    post(harness, complaint("空调不制冷", "CP-r", opened_at=opened, vin=None), msg_id="r-1")
    post(
        harness,
        complaint("空调不制冷", "CP-r", opened_at=opened + timedelta(hours=1), vin=None),
        msg_id="r-2",
    )
    assert len(all_tasks(harness, kind="complaint_joint_solution")) == 1
    board = body_of(harness.get("/dealers/dealer-a/kpis?week=2026-W47"))
    assert board["complaint_response_24h"]["n"] == 1, board["complaint_response_24h"]


def test_a_week_or_month_at_the_start_of_the_calendar_is_a_4xx_not_a_5xx(harness: Harness) -> None:
    """`0001-W01` and `0001-01` match the documented shapes; their local midnight lies before
    datetime.min in UTC (OverflowError). A 5xx means "retry me" (DESIGN §3): never for bad input."""
    for path in ("/dealers/dealer-a/kpis?week=0001-W01", "/dealers/dealer-a/incentives?month=0001-01"):
        answer = harness.get(path)
        assert answer.status_code < 500, (path, answer.status_code, answer.body[:200])


def test_the_latest_resolution_s_satisfaction_is_kept_even_a_zero(harness: Harness) -> None:
    post(harness, delivery())
    post(harness, complaint("异响", "CP-s"))
    post(harness, step("resolved", "CP-s", at=NOW - timedelta(minutes=10), satisfaction=0))
    post(harness, step("resolved", "CP-s", at=NOW - timedelta(minutes=20), satisfaction=90))  # older
    (record,) = view(harness)["complaints"]
    assert record["status"] == "resolved" and record["satisfaction"] == 0
    assert datetime.fromisoformat(record["resolved_at"]) == NOW - timedelta(minutes=20)  # the earliest
