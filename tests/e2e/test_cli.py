"""The real `clm` against a running local stack, as a newcomer's second terminal runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import example
from tests.e2e.conftest import RunningStack, free_port, new_vin

pytestmark = pytest.mark.e2e


def one_line_failure(done: subprocess.CompletedProcess[str], code: int | None = None) -> str:
    """A failure as the CLI must show it: non-zero, one line on stderr, no traceback, nothing on stdout."""
    assert done.returncode != 0, done.stdout
    if code is not None:
        assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("clm: "), done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    return lines[0]


def deliver(stack: RunningStack, vin: str) -> None:
    payload = example("vehicle.delivered")
    payload["data"] = {**payload["data"], "vin": vin, "customer": {**payload["data"]["customer"], "id": vin}}
    assert stack.post_event("dealer-demo", payload).status == 202


def event_file(tmp_path: Path, event_type: str, vin: str) -> str:
    """An example event about a VIN of this test's own (the session's stack is shared)."""
    payload = example(event_type)
    payload["data"] = {**payload["data"], "vin": vin}
    if "customer" in payload["data"]:
        payload["data"]["customer"] = {**payload["data"]["customer"], "id": vin}
    path = tmp_path / f"{event_type}.json"
    path.write_text(json.dumps(payload, ensure_ascii=False))
    return str(path)


def test_clm_finds_the_running_stack_on_its_own_ports(stack: RunningStack, tmp_path: Path) -> None:
    info = json.loads(stack.bare_cli("info").stdout)
    assert info["api_url"] == stack.api  # not :8000: the stack runs on free ports here
    assert info["aws_endpoint"] == f"http://127.0.0.1:{stack.aws_port}"
    assert info["stage"] == "local"
    sent = stack.bare_cli(
        "send", event_file(tmp_path, "vehicle.delivered", new_vin("LFXND")), "--partner", "dealer-demo"
    )
    assert json.loads(sent.stdout)["status"] == 202, sent.stderr


def test_a_partner_added_locally_can_send_at_once_and_is_listed(stack: RunningStack, tmp_path: Path) -> None:
    partner = f"dealer-cli-{int(time.time() * 1000) % 10**8}"
    added = json.loads(
        stack.bare_cli("partner", "add", partner, "--kind", "dealer", "--name", "CLI 汽车").stdout
    )
    assert stack.credentials[partner]["webhook_secret"] == added["webhook_secret"]
    assert stack.credentials[partner]["api_key"] == added["api_key"]

    sent = stack.bare_cli(
        "send", event_file(tmp_path, "vehicle.delivered", new_vin("LPRTN")), "--partner", partner
    )
    assert json.loads(sent.stdout)["status"] == 202  # the secret came from the credentials file

    table = stack.bare_cli("partner", "list").stdout.splitlines()
    assert table[0].split() == ["partner_id", "kind", "name", "active_secrets", "created_at"]
    row = next(line for line in table if line.startswith(partner))
    assert "CLI 汽车" in row and " dealer " in f" {row} "
    listed = json.loads(stack.bare_cli("partner", "list", "--json").stdout)
    ids = [p["partner_id"] for p in listed]
    assert ids == sorted(ids) and {"dealer-demo", "finance-demo", "hq", partner} <= set(ids)
    assert "webhook_secret" not in json.dumps(listed) and added["api_key"] not in json.dumps(listed)

    rotated = json.loads(stack.bare_cli("partner", "rotate-secret", partner).stdout)
    assert stack.credentials[partner]["webhook_secret"] == rotated["webhook_secret"]
    again = one_line_failure(stack.bare_cli("partner", "add", partner, "--kind", "dealer"), 1)
    assert "already exists" in again


def test_tasks_and_vehicle_show_the_read_apis_views(stack: RunningStack) -> None:
    vin = new_vin("LCLTK")
    deliver(stack, vin)
    key = stack.credentials["dealer-demo"]["api_key"]

    def mine() -> list[dict[str, Any]]:
        found = json.loads(stack.bare_cli("tasks", "dealer-demo", "--json").stdout)
        return [t for t in found if t["vin"] == vin]

    listed = stack.wait_for(lambda: len(mine()) == 3 and mine(), what="the delivery's three tasks")
    everything = json.loads(stack.bare_cli("tasks", "dealer-demo", "--json").stdout)
    assert [(t["due_at"], t["task_id"]) for t in everything] == sorted(
        (t["due_at"], t["task_id"]) for t in everything
    )
    api_page = stack.get("/dealers/dealer-demo/tasks?limit=100", key).json()["items"]
    assert [t["task_id"] for t in everything[:100]] == [t["task_id"] for t in api_page]

    table = stack.bare_cli("tasks", "dealer-demo", "--status", "open").stdout.splitlines()
    assert table[0].split() == ["due_at", "status", "kind", "role", "assignee", "vin", "task_id"]
    assert {t["task_id"] for t in listed} <= {line.split()[-1] for line in table[1:]}
    assert all(line.split()[1] == "open" for line in table[1:])

    shown = stack.bare_cli("vehicle", vin)
    view = json.loads(shown.stdout)
    assert view["dealer_id"] == "dealer-demo" and view["timeline"][0]["type"] == "vehicle.delivered"
    assert "张*" in shown.stdout  # masked, and printed as itself rather than as \\u escapes

    assert "nobody delivered" in one_line_failure(stack.bare_cli("vehicle", new_vin("LNXNE")), 1)
    one_line_failure(stack.bare_cli("tasks", "dealer-demo", "--status", "lost"), 2)


def test_every_failure_is_one_line_and_a_non_zero_exit(stack: RunningStack, tmp_path: Path) -> None:
    one_line_failure(stack.bare_cli(), 2)  # no command
    one_line_failure(stack.bare_cli("tasks"), 2)  # a missing argument
    one_line_failure(stack.bare_cli("sweep", "--at", "tomorrow"), 2)
    missing = one_line_failure(stack.bare_cli("send", "no-such-file.json", "--partner", "dealer-demo"), 2)
    assert "no-such-file.json" in missing
    one_line_failure(stack.bare_cli("event", "show", "dealer-demo", "msg_never_sent"), 1)

    dead = f"http://127.0.0.1:{free_port()}"
    down = one_line_failure(stack.bare_cli("partner", "list", CLM_AWS_ENDPOINT=dead), 1)
    assert dead in down and "does not answer" in down
    event = event_file(tmp_path, "vehicle.delivered", new_vin("LDEAD"))
    api_down = one_line_failure(
        stack.bare_cli("send", event, "--partner", "dealer-demo", CLM_API_URL=dead), 1
    )
    assert "does not answer" in api_down

    here = one_line_failure(stack.bare_cli("local"), 1)  # a second `make run` in the same directory
    assert "already runs here" in here
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    # The default AWS port (4566) is checked first: another checkout's stack may hold it. A free one.
    ports = {"CLM_AWS_PORT": str(free_port()), "CLM_API_PORT": str(stack.api_port)}
    taken = one_line_failure(stack.bare_cli("local", cwd=elsewhere, **ports), 1)
    assert str(stack.api_port) in taken and "in use" in taken
    no_stack = one_line_failure(stack.bare_cli("watch", cwd=elsewhere), 1)
    assert "no local stack" in no_stack


def start_watch(stack: RunningStack) -> tuple[subprocess.Popen[str], list[dict[str, Any]]]:
    """`clm watch --all --json` in a process of its own, finding the stack by itself (no port
    variables); the list fills with each entry as it is printed. `--all`: what is sent between its
    "watching" line and its reaching the file's end is shown too (tests pick their own VINs)."""
    watcher = subprocess.Popen(
        [sys.executable, "-m", "clm.cli", "watch", "--all", "--json"],
        cwd=stack.workdir,
        env={k: v for k, v in stack.env.items() if k not in ("CLM_AWS_PORT", "CLM_API_PORT")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[dict[str, Any]] = []
    assert watcher.stdout is not None and watcher.stderr is not None
    assert "watching" in watcher.stderr.readline()
    lines = watcher.stdout
    threading.Thread(target=lambda: seen.extend(json.loads(line) for line in lines), daemon=True).start()
    return watcher, seen


def test_watch_prints_every_notification_as_it_is_sent(stack: RunningStack) -> None:
    watcher, seen = start_watch(stack)
    try:
        vin = new_vin("LWATC")
        deliver(stack, vin)

        def told() -> list[dict[str, Any]]:
            return [e for e in seen if e["channel"] == "sns" and vin in e["message"]]

        ours = stack.wait_for(lambda: len(told()) >= 3 and told(), what="three staff messages")
        time.sleep(0.5)
        assert len(told()) == 3  # staff are told once per task, and watch shows each message once
        for entry in ours:
            assert entry["to"].endswith("staff_tasks") or "staff-tasks" in entry["to"]
            assert entry["attributes"]["dealer_id"] == "dealer-demo"  # what subscribers filter on
            body = json.loads(entry["message"])
            assert body["event"] == "task.created" and body["task"]["vin"] == vin
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)


def test_sweep_at_sends_the_reminders_due_then_and_watch_shows_them(stack: RunningStack) -> None:
    """`clm sweep --at` the day a first-service reminder is due: the SMS goes out (watch shows it),
    a night-time one is deferred (watch says why), and a second sweep sends nothing twice."""
    from datetime import UTC, datetime, timedelta

    watcher, seen = start_watch(stack)
    try:
        day, night = new_vin("LREMD"), new_vin("LREMN")
        yesterday = datetime.now(UTC) - timedelta(days=2)
        for vin, hour in ((day, 2), (night, 14)):  # 10:00 and 22:00 in Shanghai
            payload = example("vehicle.delivered")
            delivered_at = yesterday.replace(hour=hour, minute=0, second=0, microsecond=0)
            customer = {**payload["data"]["customer"], "id": vin}
            payload["data"] = {**payload["data"], "vin": vin, "customer": customer}
            payload["data"]["delivered_at"] = delivered_at.isoformat()
            assert stack.post_event("dealer-demo", payload).status == 202
            stack.wait_for(lambda v=vin: stack.cli("vehicle", v).returncode == 0, what="the delivery")
        due = stack.cli("vehicle", day)
        next_service = json.loads(due.stdout)["next_service"]
        remind_at = datetime.fromisoformat(next_service["remind_at"])
        assert remind_at.astimezone(UTC).hour == 2  # 7 days before the date, at the delivery's hour
        for at in (remind_at, remind_at + timedelta(hours=12), remind_at + timedelta(hours=13)):
            assert stack.cli("sweep", "--at", at.isoformat()).returncode == 0

        def texts(vin: str) -> list[dict[str, Any]]:
            return [e for e in seen if e["channel"] == "sms" and vin[-6:] in e["message"]]

        [sms] = stack.wait_for(lambda: texts(day), what="the first-service SMS")
        assert sms["to"] == "+8613800138000" and sms["message"].startswith("【CLM】")
        deferred = stack.wait_for(
            lambda: [e for e in seen if e["channel"] == "reminder" and e["to"].endswith(night)],
            what="the night-time reminder's deferral",
        )
        assert deferred[0]["attributes"]["reason"] == "quiet_hours"
        assert texts(night) == []  # 22:00 and 23:00 local: still night
        morning = remind_at + timedelta(days=1)  # 10:00 local next day: the night's SMS goes out
        assert stack.cli("sweep", "--at", morning.isoformat()).returncode == 0
        stack.wait_for(lambda: texts(night), what="the deferred SMS at 08:00 or after")
        time.sleep(0.5)
        assert len(texts(day)) == 1 and len(texts(night)) == 1  # never twice
        shown = json.loads(stack.cli("vehicle", night).stdout)
        assert [r["status"] for r in shown["reminders"] if r["kind"] == "first_service"] == ["sent"]
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)


def test_the_contract_is_served_over_http_without_a_key(stack: RunningStack) -> None:
    answer = stack.request("GET", "/openapi.json")
    assert answer.status == 200 and answer.header_values("Content-Type") == ["application/json"]
    document = answer.json()
    assert document["openapi"] == "3.1.0" and "/webhooks/{partner_id}" in document["paths"]


def configure_wechatpay(stack: RunningStack, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`clm gateway configure wechatpay` with the test gateway's merchant id, APIv3 key and platform key."""
    from tests.unit import test_gateways as gw

    pem = tmp_path / "wechat.pem"
    pem.write_text(gw.PLATFORM_PEM)
    return stack.cli(
        "gateway",
        "configure",
        "wechatpay",
        "--mchid",
        "1900000109",
        "--apiv3-key",
        gw.APIV3_KEY.decode(),
        "--platform-serial",
        "SERIAL-A",
        "--platform-public-key",
        str(pem),
    )


def test_a_booked_loan_is_paid_once_through_both_gateways_over_http(
    stack: RunningStack, tmp_path: Path
) -> None:
    """`clm gateway configure` both gateways, book a loan with `clm send`, and let WeChat Pay and
    Alipay notify (and re-notify) over HTTP as they do: two installments paid, once each."""
    import copy
    from datetime import UTC, datetime, timedelta

    from tests.unit import test_gateways as gw

    alipay_pem = tmp_path / "alipay.pem"
    alipay_pem.write_text(gw.ALIPAY_PEM)
    configured = configure_wechatpay(stack, tmp_path)
    assert json.loads(configured.stdout) == {
        "gateway": "wechatpay",
        "mchid": "1900000109",
        "platform_serials": ["SERIAL-A"],
    }
    assert gw.APIV3_KEY.decode() not in configured.stdout
    stack.cli(
        "gateway",
        "configure",
        "alipay",
        "--app-id",
        "2021000000000001",
        "--alipay-public-key",
        str(alipay_pem),
    )
    bad = stack.cli(
        "gateway", "configure", "alipay", "--app-id", "x", "--alipay-public-key", str(tmp_path), check=False
    )
    one_line_failure(bad, 2)

    vin = new_vin("LPAYE")
    booked = copy.deepcopy(example("loan.booked"))
    today = datetime.now(UTC).date()
    booked["data"].update(loan_id=f"L-{vin}", vin=vin)
    booked["data"]["schedule"] = [
        {
            "seq": n,
            "due_date": (today + timedelta(days=30 * n)).isoformat(),
            "amount_minor": 350000,
            "payment_ref": f"{vin}P{n}",
        }
        for n in (1, 2)
    ]
    loan_file = tmp_path / "loan.json"
    loan_file.write_text(json.dumps(booked, ensure_ascii=False))
    assert json.loads(stack.cli("send", str(loan_file), "--partner", "finance-demo").stdout)["status"] == 202
    key = stack.credentials["dealer-demo"]["api_key"]

    def the_loan() -> dict[str, Any] | None:
        items = stack.get("/dealers/dealer-demo/loans?limit=100", key).json()["items"]
        return next((i for i in items if i["loan_id"] == f"L-{vin}"), None)

    stack.wait_for(the_loan, what="the booked loan")
    now = datetime.now(UTC)
    for _ in range(2):  # each resend signed anew
        headers, body = gw.wechat_notification(
            at=now,
            transaction_id=f"42{vin}",
            out_trade_no=f"{vin}P1",
            amount={"total": 350000, "currency": "CNY"},
        )
        answer = stack.request("POST", "/webhooks/payments/wechatpay", body=body, headers=headers)
        assert answer.status == 204 and answer.body == b""
        _, form = gw.alipay_notification(trade_no=f"20{vin}", out_trade_no=f"{vin}P2", total_amount="3500.00")
        answer = stack.request(
            "POST",
            "/webhooks/payments/alipay",
            body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
        assert (answer.status, answer.body) == (200, b"success")
    found = stack.wait_for(
        lambda: (loan := the_loan()) is not None and loan["status"] == "settled" and loan,
        what="the loan paid off",
    )
    assert found["installments_paid"] == 2 and found["outstanding_minor"] == 0
    probe = {**headers, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/x"}
    answer = stack.request("POST", "/webhooks/payments/wechatpay", body=body, headers=probe)
    assert answer.status == 401 and json.loads(answer.body)["code"] == "FAIL"
    assert [h for h in answer.headers if h[0].lower() == "content-type"] == [
        ("Content-Type", "application/json")
    ]


def test_sweep_at_brings_repayment_and_overdue_work_to_customer_dealer_and_collections(
    stack: RunningStack, tmp_path: Path
) -> None:
    """A loan booked over HTTP, then `clm sweep --at` through its first installment's life: the
    repayment SMS 3 days before, on the day after the due date the overdue SMS, the dealer's
    follow-up task and its staff-tasks warning, at 30 days past due HQ collections' task under
    the dealer; a WeChat Pay payment then closes them all."""
    import copy
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from tests.unit import test_gateways as gw

    shanghai = ZoneInfo("Asia/Shanghai")
    vin = new_vin("LDPDR")
    deliver(stack, vin)
    stack.wait_for(lambda: stack.cli("vehicle", vin, check=False).returncode == 0, what="the delivery")
    due = datetime.now(shanghai).date() + timedelta(days=5)
    booked = copy.deepcopy(example("loan.booked"))
    booked["data"].update(loan_id=f"L-{vin}", vin=vin, dealer_id="dealer-demo")
    booked["data"]["customer_id"] = vin
    booked["data"]["schedule"] = [
        {"seq": n, "due_date": (due + timedelta(days=30 * (n - 1))).isoformat(), "amount_minor": 350000}
        | {"payment_ref": f"{vin}P{n}"}
        for n in (1, 2)
    ]
    loan_file = tmp_path / "loan.json"
    loan_file.write_text(json.dumps(booked, ensure_ascii=False))
    assert json.loads(stack.cli("send", str(loan_file), "--partner", "finance-demo").stdout)["status"] == 202
    key = stack.credentials["dealer-demo"]["api_key"]
    stack.wait_for(
        lambda: any(
            i["loan_id"] == f"L-{vin}"
            for i in stack.get("/dealers/dealer-demo/loans?limit=100", key).json()["items"]
        ),
        what="the booked loan",
    )

    def local(day: Any, hour: int = 10) -> str:
        return datetime(day.year, day.month, day.day, hour, tzinfo=shanghai).isoformat()

    def tasks() -> list[dict[str, Any]]:
        listed = json.loads(stack.cli("tasks", "dealer-demo", "--json").stdout)
        return [t for t in listed if t["kind"] in ("overdue_follow_up", "collections") and t["vin"] == vin]

    watcher, seen = start_watch(stack)
    try:

        def texts() -> list[str]:
            return [
                e["message"]
                for e in seen
                if e["channel"] == "sms" and vin[-6:] in e["message"] and "车贷" in e["message"]
            ]

        assert stack.cli("sweep", "--at", local(due - timedelta(days=3))).returncode == 0
        [repayment] = stack.wait_for(lambda: texts(), what="the repayment SMS")
        assert "第1期" in repayment and due.isoformat() in repayment and "将于" in repayment
        assert tasks() == []

        assert stack.cli("sweep", "--at", local(due + timedelta(days=1))).returncode == 0
        stack.wait_for(lambda: len(texts()) == 2, what="the overdue SMS")
        assert "已于" in texts()[1] and "3500.00" in texts()[1]
        [follow_up] = tasks()
        assert (follow_up["kind"], follow_up["assignee_role"], follow_up["status"]) == (
            "overdue_follow_up",
            "sales",
            "open",
        )
        warnings = stack.wait_for(
            lambda: [
                json.loads(e["message"])
                for e in seen
                if e["channel"] == "sns" and "loan.overdue" in e["message"] and vin in e["message"]
            ],
            what="the staff-tasks warning",
        )
        assert len(warnings) == 1 and warnings[0]["dealer_id"] == "dealer-demo"

        assert stack.cli("sweep", "--at", local(due + timedelta(days=30))).returncode == 0
        by_kind = {t["kind"]: t for t in tasks()}
        assert (
            by_kind["collections"]["assignee_role"] == "collections"
            and by_kind["collections"]["hold"] is None
        )
        time.sleep(0.5)
        overdue_texts = [t for t in texts() if "已于" in t]
        assert len(overdue_texts) == 1  # one overdue SMS per installment, however many stages pass
        assert any("第2期" in t and "将于" in t for t in texts())  # the next one's reminder is not held

        headers, body = gw.wechat_notification(
            at=datetime.now(UTC),
            transaction_id=f"42{vin}",
            out_trade_no=f"{vin}P1",
            amount={"total": 350000, "currency": "CNY"},
        )
        assert configure_wechatpay(stack, tmp_path).returncode == 0
        answer = stack.request("POST", "/webhooks/payments/wechatpay", body=body, headers=headers)
        assert answer.status == 204
        closed = stack.wait_for(
            lambda: {t["status"] for t in tasks()} == {"done"} and tasks(),
            what="the tasks closed by the payment",
        )
        assert sorted(t["kind"] for t in closed) == ["collections", "overdue_follow_up"]
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)


def test_a_50_minute_test_drive_shows_on_the_customer_and_on_the_advisor_s_care_call(
    stack: RunningStack, tmp_path: Path
) -> None:
    """`clm customer` shows 科技配置爱好者 with its evidence; after `clm sweep --at` the first-service
    reminder's care-call task, as `clm tasks` lists it, carries it with its talking point."""
    from datetime import UTC, datetime, timedelta

    vin = new_vin("LTAGS")
    deliver(stack, vin)  # the customer's id is the VIN: this test's own
    stack.wait_for(lambda: stack.cli("vehicle", vin, check=False).returncode == 0, what="the delivery")
    drive = example("sales.test_drive_completed")
    drive["data"] = {**drive["data"], "customer_id": vin, "duration_min": 50}
    drive["data"]["at"] = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    drive_file = tmp_path / "drive.json"
    drive_file.write_text(json.dumps(drive, ensure_ascii=False))
    assert json.loads(stack.cli("send", str(drive_file), "--partner", "dealer-demo").stdout)["status"] == 202

    def tagged() -> dict[str, Any] | None:
        shown = json.loads(stack.cli("customer", "dealer-demo", vin).stdout)
        return next((t for t in shown["tags"] if t["tag"] == "tech_enthusiast"), None)

    tag = stack.wait_for(tagged, what="the tag")
    assert tag["label"]["zh-CN"] == "科技配置爱好者"
    assert [(e["source"], e["duration_min"]) for e in tag["evidence"]] == [("sales.test_drive_completed", 50)]
    missing = stack.cli("customer", "dealer-demo", "nobody-here", check=False)
    assert "no customer nobody-here" in one_line_failure(missing)

    remind_at = json.loads(stack.cli("vehicle", vin).stdout)["next_service"]["remind_at"]
    assert stack.cli("sweep", "--at", remind_at).returncode == 0
    listed = json.loads(stack.cli("tasks", "dealer-demo", "--json").stdout)
    (call,) = [t for t in listed if t["kind"] == "first_service_care_call" and t["vin"] == vin]
    assert [t["tag"] for t in call["customer_tags"]] == ["tech_enthusiast"]
    assert call["customer_tags"][0]["label"]["zh-CN"] == "科技配置爱好者"
    assert call["customer_tags"][0]["talking_point"]["en"]
