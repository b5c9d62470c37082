from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from chalicelib.inbound import signatures

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
AT_VECTOR = datetime.fromtimestamp(VECTOR_TS, UTC)


def key() -> bytes:
    return signatures.secret_key(VECTOR_SECRET)


def test_official_test_vector_signs_and_verifies() -> None:
    assert signatures.sign(key(), VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIG
    signatures.verify([key()], VECTOR_ID, str(VECTOR_TS), VECTOR_SIG, VECTOR_BODY, AT_VECTOR)


def test_agrees_with_the_reference_library() -> None:
    secret = signatures.new_secret()
    body = '{"type":"x","data":{"名字":"张伟"}}'
    reference = Webhook(secret).sign("msg_1", AT_VECTOR, body)
    assert signatures.sign(signatures.secret_key(secret), "msg_1", VECTOR_TS, body.encode()) == reference


def test_any_of_several_signatures_and_any_key_passes() -> None:
    other = signatures.secret_key(signatures.new_secret())
    header = f"v2,abc v1,{base64.b64encode(b'x' * 32).decode()} {VECTOR_SIG}"
    signatures.verify([other, key()], VECTOR_ID, str(VECTOR_TS), header, VECTOR_BODY, AT_VECTOR)


@pytest.mark.parametrize("shift", [timedelta(minutes=-5), timedelta(minutes=5)])
def test_tolerance_is_five_minutes_either_way(shift: timedelta) -> None:
    signatures.verify([key()], VECTOR_ID, str(VECTOR_TS), VECTOR_SIG, VECTOR_BODY, AT_VECTOR + shift)


@pytest.mark.parametrize("shift", [timedelta(minutes=-5, seconds=-1), timedelta(minutes=5, seconds=1)])
def test_stale_or_future_timestamps_fail(shift: timedelta) -> None:
    with pytest.raises(signatures.SignatureError):
        signatures.verify([key()], VECTOR_ID, str(VECTOR_TS), VECTOR_SIG, VECTOR_BODY, AT_VECTOR + shift)


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "header", "body"),
    [
        (VECTOR_ID, str(VECTOR_TS), VECTOR_SIG, b'{"test": 2432232315}'),  # body changed
        ("msg_other", str(VECTOR_TS), VECTOR_SIG, VECTOR_BODY),  # id changed
        (VECTOR_ID, str(VECTOR_TS), "v1,not-base64!!", VECTOR_BODY),  # malformed entry
        (VECTOR_ID, str(VECTOR_TS), "v1", VECTOR_BODY),  # no signature after the comma
        (VECTOR_ID, str(VECTOR_TS), VECTOR_SIG.replace("v1,", "v2,"), VECTOR_BODY),  # wrong version
        (VECTOR_ID, "16142653.30", VECTOR_SIG, VECTOR_BODY),  # not unix seconds
        (VECTOR_ID, str(VECTOR_TS), "", VECTOR_BODY),  # missing header
        ("", str(VECTOR_TS), VECTOR_SIG, VECTOR_BODY),
    ],
)
def test_tampered_or_malformed_requests_fail(msg_id: str, timestamp: str, header: str, body: bytes) -> None:
    with pytest.raises(signatures.SignatureError):
        signatures.verify([key()], msg_id, timestamp, header, body, AT_VECTOR)


def test_a_retired_key_alone_fails() -> None:
    with pytest.raises(signatures.SignatureError):
        signatures.verify(
            [signatures.secret_key(signatures.new_secret())],
            VECTOR_ID,
            str(VECTOR_TS),
            VECTOR_SIG,
            VECTOR_BODY,
            AT_VECTOR,
        )


def test_signature_covers_raw_bytes_even_when_not_utf8() -> None:
    body = b"\xff\xfe not utf-8"
    sig = signatures.sign(key(), "m", VECTOR_TS, body)
    signatures.verify([key()], "m", str(VECTOR_TS), sig, body, AT_VECTOR)


def test_secrets_are_standard_format() -> None:
    secret = signatures.new_secret()
    assert secret.startswith("whsec_")
    assert len(signatures.secret_key(secret)) == 32
    with pytest.raises(ValueError):
        signatures.secret_key("whsec_***")
