"""(a) DynamoDB requests on the synchronous path, and (b) handler time against the unavoidable work."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any

from bench.common import delivered_body, fake_aws_env, reading_body, reset, signed

EVENTS = 600


def _api_event(path: str, partner_id: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """An API Gateway proxy event as Lambda hands it to Chalice."""
    return {
        "resource": "/webhooks/{partner_id}",
        "path": path,
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"partner_id": partner_id},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/webhooks/{partner_id}",
            "httpMethod": "POST",
            "stage": "api",
            "requestId": "bench",
            "identity": {"sourceIp": "127.0.0.1"},
            "path": path,
        },
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def requests_per_event() -> tuple[dict[str, float], str]:
    """Count DynamoDB calls (botocore `before-call` events) per accepted event on moto, cold and warm."""
    fake_aws_env()
    from moto import mock_aws

    with mock_aws():
        reset()
        from chalice.test import Client

        import app as app_module
        from chalicelib import aws, clock
        from chalicelib.inbound import partners
        from clm.local.provision import provision

        provision("bench")
        creds = partners.add("dealer-bench", "dealer")
        partners.forget()
        calls: list[str] = []
        aws.client("dynamodb").meta.events.register(
            "before-call.dynamodb", lambda model, **_: calls.append(model.name)
        )
        counts = []
        with Client(app_module.app, stage_name="test") as client, quiet():
            for n in range(20):
                body = delivered_body(n)
                calls.clear()
                headers = signed(creds.webhook_secret, body, f"msg_{n}", int(clock.now().timestamp()))
                status = client.http.post("/webhooks/dealer-bench", headers=headers, body=body).status_code
                assert status == 202, status
                counts.append(len(calls))
            # Readings are judged against the vehicle's latest accepted one: apply one delivery first.
            from chalicelib.service.process import process
            from chalicelib.store.inbox import InboxRef

            process(InboxRef("dealer-bench", "msg_0"))
            readings = []
            for n in range(10):
                body = reading_body(0, km=1_000 + 100 * n, day=n)
                calls.clear()
                headers = signed(creds.webhook_secret, body, f"odo_{n}", int(clock.now().timestamp()))
                status = client.http.post("/webhooks/dealer-bench", headers=headers, body=body).status_code
                assert status == 202, status
                readings.append(len(calls))
        reset()
    cold, warm = counts[0], statistics.mean(counts[1:])
    odometer = statistics.mean(readings)
    return (
        {
            "ddb_requests_per_event": float(cold),
            "ddb_requests_per_event_warm": warm,
            "ddb_requests_per_odometer_event_warm": odometer,
        },
        f"cold Lambda {cold} (partner read + conditional put), warm {warm:g} (conditional put); "
        f"a reading of an own vehicle, warm: {odometer:g} (ownership read + conditional update + put)",
    )


@contextlib.contextmanager
def quiet(fds: tuple[int, ...] = (1,)) -> Iterator[None]:
    """Send fds to /dev/null: log and metric lines are formatted and written, but not to a terminal."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in fds]
    sink = os.open(os.devnull, os.O_WRONLY)
    for fd in fds:
        os.dup2(sink, fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip(fds, saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(sink)


def _stub_aws() -> None:
    """Answer every AWS call at botocore's send step: no moto, no network is timed."""
    from botocore.awsrequest import AWSResponse

    from chalicelib import aws

    class Raw:
        def __init__(self, body: bytes) -> None:
            self.body = body

        def stream(self, **_: Any) -> Any:
            yield self.body

    import base64

    # The data key that seals the stored payload (one call: the process keeps it for an hour).
    data_key = {"Plaintext": base64.b64encode(bytes(32)).decode(), "CiphertextBlob": "AA==", "KeyId": "k"}

    def answer(request: Any, **_: Any) -> AWSResponse:
        target = request.headers.get("X-Amz-Target", b"")
        made = (target.decode() if isinstance(target, bytes) else target).endswith(".GenerateDataKey")
        body = json.dumps(data_key).encode() if made else b"{}"
        return AWSResponse(request.url, 200, {"content-type": "application/x-amz-json-1.0"}, Raw(body))

    aws.session().register("before-send", answer)


def ingest_vs_baseline() -> tuple[dict[str, float], str]:
    fake_aws_env()
    reset()
    from chalicelib import aws, clock
    from chalicelib.events import spec_for, validate_event
    from chalicelib.inbound import partners, signatures

    _stub_aws()
    import app as app_module

    secret = signatures.new_secret()
    key = signatures.secret_key(secret)
    partners._cache["dealer-bench"] = (
        time.monotonic() + 3600,
        partners.Partner("dealer-bench", "dealer", None, (key,)),
    )
    now = int(clock.now().timestamp())
    bodies = [delivered_body(n) for n in range(EVENTS)]
    headers = [signed(secret, b, f"msg_{n}", now) for n, b in enumerate(bodies)]
    events = [
        _api_event("/webhooks/dealer-bench", "dealer-bench", h, b)
        for h, b in zip(headers, bodies, strict=True)
    ]
    from chalice.local import LambdaContext

    context = LambdaContext("api_handler", 512, max_runtime_ms=60_000)
    ddb = aws.client("dynamodb")
    spec = spec_for("vehicle.delivered")
    assert spec is not None
    table = "clm-bench"

    def baseline(n: int) -> None:
        body, h = bodies[n], headers[n]
        signatures.verify(
            [key], h["webhook-id"], h["webhook-timestamp"], h["webhook-signature"], body, clock.now()
        )
        validate_event(spec, json.loads(body))
        ddb.put_item(
            TableName=table,
            Item={"pk": {"S": f"INBOX#dealer-bench#{n}"}, "sk": {"S": "INBOX"}, "body": {"S": body.decode()}},
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )

    def handler(n: int) -> None:
        response = app_module.app(events[n], context)
        assert response["statusCode"] == 202, response

    base_times: list[float] = []
    handler_times: list[float] = []
    with quiet():
        for n in range(20):  # warm both paths (first pydantic model, first botocore call)
            baseline(n)
            handler(n)
        for n in range(EVENTS):  # interleaved, so drift hits both alike
            start = time.perf_counter()
            baseline(n)
            middle = time.perf_counter()
            handler(n)
            handler_times.append(time.perf_counter() - middle)
            base_times.append(middle - start)
    reset()
    b, h = statistics.median(base_times), statistics.median(handler_times)
    return (
        {"ingest_vs_baseline": h / b},
        f"median of {EVENTS}: handler {h * 1e3:.3f} ms, baseline {b * 1e3:.3f} ms",
    )
