"""Field types shared by every event (DESIGN.md §4): VINs, E.164 phones, RFC 3339 instants, ids, money.

Partners' systems differ; these types make the contract exact in one place. JSON numbers and
booleans are taken as they are (no "42" for 42, no 1 for true) and times only as RFC 3339 text,
so a sender's bug is a 422 rather than a silently different value. Error messages never repeat
the input: it may be personal data (names, phone numbers).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

VIN_PATTERN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")
PAYMENT_REF_PATTERN = r"^[0-9a-zA-Z_-]{6,32}$"
PAYMENT_REF_RE = re.compile(r"[0-9a-zA-Z_-]{6,32}")
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
RFC3339_PATTERN = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
DAY_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
VIN_RULE = "a VIN is 17 characters of A-H, J-N, P, R-Z, 0-9 (no I, O, Q)"
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(minutes=5)
EARLIEST_DAY, LATEST_DAY = date(1900, 1, 1), date(2999, 12, 31)


def check_vin(value: str) -> str:
    """Accept a VIN by its alphabet and length only: not every market sets the check digit."""
    if VIN_PATTERN.fullmatch(value):
        return value
    if len(value) != 17:
        raise PydanticCustomError("vin", f"{VIN_RULE}; this one has {len(value)} characters")
    if value != value.upper():
        raise PydanticCustomError("vin", f"{VIN_RULE}, in upper case")
    if set(value) & set("IOQ"):
        raise PydanticCustomError("vin", f"{VIN_RULE}: I, O and Q are never used (they read as 1 and 0)")
    raise PydanticCustomError("vin", VIN_RULE)


def normalise_phone(value: str) -> str:
    """An E.164 number that `phonenumbers` knows to be valid, written without spaces or dashes."""
    import phonenumbers  # imported by the first event that carries a phone, not at cold start

    if not value.startswith("+"):
        raise PydanticCustomError(
            "phone_number", "a phone number is E.164: '+', the country code, the number"
        )
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise PydanticCustomError("phone_number", "not a phone number in E.164 form") from None
    if not phonenumbers.is_valid_number(parsed):
        raise PydanticCustomError("phone_number", "not a valid phone number for its country code")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def check_id(value: str) -> str:
    """Ids end up inside composite table keys, where a space or '#' would blur them."""
    if any(ch.isspace() or ch == "#" for ch in value):
        raise PydanticCustomError("id", "an id has no spaces and no '#'")
    return value


def check_payment_ref(value: str) -> str:
    if not PAYMENT_REF_RE.fullmatch(value):
        raise PydanticCustomError("payment_ref", "a payment_ref is 6-32 characters of 0-9, a-z, A-Z, _ and -")
    return value


def check_currency(value: str) -> str:
    if not CURRENCY_PATTERN.fullmatch(value):
        raise PydanticCustomError("currency", "a currency is 3 upper-case letters (ISO 4217), e.g. CNY")
    return value


def rfc3339_only(value: Any) -> Any:
    """Let only RFC 3339 text (or a datetime, from Python callers) through to datetime parsing."""
    if isinstance(value, datetime) or (isinstance(value, str) and RFC3339_PATTERN.fullmatch(value.strip())):
        return value.strip() if isinstance(value, str) else value
    raise PydanticCustomError("rfc3339", "a time is RFC 3339 with an offset, e.g. 2026-11-20T10:00:00+08:00")


def iso_day_only(value: Any) -> Any:
    """Let only YYYY-MM-DD text (or a date, from Python callers) through to date parsing."""
    is_day = isinstance(value, date) and not isinstance(value, datetime)
    if is_day or (isinstance(value, str) and DAY_PATTERN.fullmatch(value.strip())):
        return value.strip() if isinstance(value, str) else value
    raise PydanticCustomError("iso_date", "a date is YYYY-MM-DD, e.g. 2027-01-20")


def instant_in_bounds(value: datetime, info: ValidationInfo) -> datetime:
    """An event time on or after 2000, and no more than 5 minutes ahead of the receiver's clock.

    The future bound applies when validation is given ``context={"now": ...}`` (at accept time):
    an event that was accepted is never refused later because time has moved on. Both bounds
    keep every later date computation (deadlines, reminders) inside `datetime`'s range.
    """
    if value < EARLIEST_TIME:
        raise PydanticCustomError("time_too_early", "a time is on or after 2000-01-01T00:00:00Z")
    now = (info.context or {}).get("now")
    if now is not None and value > now + FUTURE_TOLERANCE:
        raise PydanticCustomError(
            "time_in_future", "a time is at most 5 minutes ahead of the receiver's clock"
        )
    return value


def day_in_bounds(value: date) -> date:
    """Calendar dates far enough from `date`'s limits that adding days or months never overflows."""
    if not EARLIEST_DAY <= value <= LATEST_DAY:
        raise PydanticCustomError("date_range", "a date lies between 1900-01-01 and 2999-12-31")
    return value


Vin = Annotated[str, AfterValidator(check_vin)]
Phone = Annotated[str, Field(max_length=64), AfterValidator(normalise_phone)]
Instant = Annotated[AwareDatetime, BeforeValidator(rfc3339_only), AfterValidator(instant_in_bounds)]
Day = Annotated[date, BeforeValidator(iso_day_only), AfterValidator(day_in_bounds)]

Id = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(check_id)]
"""An identifier in a partner's system."""
Label = Annotated[str, Field(min_length=1, max_length=128)]
"""A short human-readable value: a name, a model, a category, a list entry."""
Text = Annotated[str, Field(min_length=1, max_length=4000)]
Note = Annotated[str, Field(max_length=4000)]
"""Free text that may be left empty."""

Count = Annotated[int, Field(strict=True, ge=0)]
Km = Annotated[int, Field(strict=True, ge=0, le=9_999_999)]
Score = Annotated[int, Field(strict=True, ge=0, le=100)]
Ratio = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
Flag = Annotated[bool, Field(strict=True)]
MinorUnits = Annotated[int, Field(strict=True, ge=0)]
"""Money in the currency's minor unit (fen for CNY)."""
Currency = Annotated[str, AfterValidator(check_currency)]
"""ISO 4217 code."""
PaymentRef = Annotated[str, AfterValidator(check_payment_ref)]
"""What a gateway sends back as the order number (`out_trade_no`): WeChat Pay's rule, 6-32 of 0-9a-zA-Z_-."""

Locale = Literal["zh-CN", "en"]
Channel = Literal["sms", "phone", "wechat"]

MODEL_CONFIG = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True, defer_build=True)


class Part(BaseModel):
    """A nested object inside an event's data; same rules as the data itself."""

    model_config = MODEL_CONFIG


class EventData(BaseModel):
    """Base of every `data` payload: unknown fields are ignored, values are immutable once parsed."""

    model_config = MODEL_CONFIG


class Envelope(BaseModel):
    """What a partner signs: the event type, when its system emitted it, and the data."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    type: str
    timestamp: Instant
    data: dict[str, Any]
