"""Personal data on the running local stack: what its table holds and what its process prints.

A customer with a name and number of their own goes through delivery, handover, a complaint that
names a phone and the first-service SMS; then every item of the embedded AWS's table is read raw,
and every line the stack printed (logs, EMF metrics) is searched: neither holds the name or a
number in plaintext, while the read API shows them masked.
"""

from __future__ import annotations

import copy
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, RunningStack, new_vin
from tests.support import strings_in

pytestmark = pytest.mark.e2e
DEALER = "dealer-demo"


def _example(event_type: str, vin: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((ROOT / "examples" / "events" / f"{event_type}.json").read_text())
    payload = copy.deepcopy(payload)
    payload["data"]["vin"] = vin
    return payload


def test_the_stack_keeps_and_prints_no_name_or_phone_in_plaintext(stack: RunningStack) -> None:
    import boto3

    key = stack.credentials[DEALER]["api_key"]
    vin, tag = new_vin("LPRV"), secrets.token_hex(3)
    name, phone = f"隐私{tag}", "+86139" + str(secrets.randbelow(10**8)).zfill(8)
    said = "+86137" + str(secrets.randbelow(10**8)).zfill(8)
    customer_id = f"C-PII-{tag}"
    delivered_at = datetime.now(UTC) - timedelta(days=1)

    delivery = _example("vehicle.delivered", vin)
    delivery["data"]["delivered_at"] = delivered_at.isoformat()
    delivery["data"]["customer"].update(id=customer_id, name=name, phone=phone)
    handover = _example("handover.submitted", vin)
    handover["data"]["form"]["basic"]["customer_name"] = name
    complaint = _example("complaint.opened", vin)
    complaint["data"].update(
        complaint_id=f"CP-PII-{tag}",
        customer_id=customer_id,
        text=f"{name}说刹车有异响,请回电 {said}",
        opened_at=datetime.now(UTC).isoformat(),
    )
    for payload in (delivery, handover, complaint):
        answer = stack.post_event(DEALER, payload)
        assert answer.status == 202, answer.body
        assert stack.settled_outcome(DEALER, answer.json()["id"], key)["outcome"] == "applied"
    first_service = delivered_at + timedelta(days=92) - timedelta(days=7)
    stack.cli("sweep", "--at", first_service.replace(hour=2).isoformat())

    shown = stack.get(f"/dealers/{DEALER}/customers/{customer_id}", key).json()
    assert shown["phone"].endswith(phone[-4:]) and phone not in json.dumps(shown)
    assert shown["name"] != name and shown["name"].startswith(name[0])

    info = json.loads(stack.cli("info").stdout)
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=info["aws_endpoint"],
        region_name=info["topics"]["ops"].split(":")[3],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    items = [i for page in ddb.get_paginator("scan").paginate(TableName=info["table"]) for i in page["Items"]]
    ours = [i for i in items if customer_id in json.dumps(i) or vin in json.dumps(i)]
    assert len(ours) > 5 and any(i.get("et", {}).get("S") == "customer" for i in ours)
    held = "\n".join(strings_in(items))
    printed = "\n".join(stack.output)
    for value in (name, phone, phone.removeprefix("+86"), said, said.removeprefix("+86")):
        assert value not in held, f"{value!r} rests in the table in plaintext"
        assert value not in printed, f"{value!r} printed by the stack"
