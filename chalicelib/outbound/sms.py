"""Customer SMS: the text of each reminder kind in the customer's language, from a data file.

zh-CN messages start with the brand signature in 【】 (a requirement for SMS in China); English
ones name the brand in brackets inside the template. Service notices carry no marketing.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib.store.outbox import SMS_PREFIX, Message

TEMPLATES = Path(__file__).with_name("sms_templates.json")
LOCALES = ("zh-CN", "en")


@cache
def templates() -> dict[str, dict[str, str]]:
    loaded = json.loads(TEMPLATES.read_text(encoding="utf-8"))
    return {kind: texts for kind, texts in loaded.items() if not kind.startswith("_")}


def render(kind: str, locale: str, brand: str, **values: Any) -> str:
    """The message for `kind` in `locale` (zh-CN when the locale has no template)."""
    texts = templates()[kind]
    chosen = locale if locale in texts else "zh-CN"
    text = texts[chosen].format(brand=brand, **values)
    return f"【{brand}】{text}" if chosen == "zh-CN" else text


def message(
    outbox_id: str,
    phone: str,
    text: str,
    send_after: datetime,
    *,
    reminder_owner: str,
    reminder_id: str,
    kind: str,
    dealer_id: str,
    customer_id: str,
) -> Message:
    """An SMS for the outbox; its attributes say whose it is (the opt-out check before sending)
    and which reminder it carries (what became of it shows on the vehicle). They are never sent."""
    return Message(
        outbox_id,
        "sms",
        phone,
        text,
        {
            "reminder_owner": reminder_owner,
            "reminder_id": reminder_id,
            "kind": kind,
            "dealer_id": dealer_id,
            "customer_id": customer_id,
        },
        source=reminder_id,
        send_after=send_after,
    )


def outbox_id(reminder_id: str) -> str:
    """One SMS per logical reminder: its id derives from the reminder's."""
    return f"{SMS_PREFIX}{reminder_id}"


def vin_tail(vin: str | None) -> str:
    return (vin or "")[-6:]
