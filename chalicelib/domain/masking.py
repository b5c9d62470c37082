"""Masking personal data for read APIs (PIPL: show staff only what they need)."""

from __future__ import annotations


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
