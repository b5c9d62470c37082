"""Masking personal data for read APIs (PIPL: show staff only what they need)."""

from __future__ import annotations

import re

PHONE_MASK = "[phone]"
_DIGIT_RUN = re.compile(r"\+?\d[\d\s\-()]{5,}\d")


def mask_phone(phone: str | None) -> str | None:
    """Keep the country code, the first three and last four digits: +86138****8000."""
    if not phone:
        return phone
    digits = phone.lstrip("+")
    if len(digits) <= 7:
        return "+" + "*" * len(digits)
    cc = 2 if digits.startswith("86") else 1
    head, tail = digits[: cc + 3], digits[-4:]
    return f"+{head}{'*' * (len(digits) - len(head) - 4)}{tail}"


def mask_name(name: str | None) -> str | None:
    """First character only: 张伟 -> 张*, Li Na -> L***."""
    if not name:
        return name
    return name[0] + "*" * max(1, len(name.replace(" ", "")) - 1)


def mask_phones_in(text: str) -> str:
    """Free text (a complaint, a note) without phone numbers: those the phone library finds, and any
    run of seven or more digits, which may be one it does not recognise."""
    import phonenumbers

    spans = [
        (m.start, m.end)
        for m in phonenumbers.PhoneNumberMatcher(text, "CN", leniency=phonenumbers.Leniency.VALID)
    ]
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + PHONE_MASK + text[end:]
    return _DIGIT_RUN.sub(
        lambda m: PHONE_MASK if sum(c.isdigit() for c in m.group()) >= 7 else m.group(), text
    )
