"""`clm`: operate a CLM stack (the local one when CLM_AWS_ENDPOINT is set, AWS otherwise)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

DEFAULT_AWS_PORT = 4566
DEFAULT_API_PORT = 8000


def _emit(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _use_stack() -> None:
    """Point this process at the stack CLM_AWS_ENDPOINT names (or AWS when unset)."""
    endpoint = os.environ.get("CLM_AWS_ENDPOINT")
    if endpoint:
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        os.environ.setdefault("AWS_DEFAULT_REGION", "cn-north-1")
        os.environ.setdefault("CLM_STAGE", "local")
    else:
        os.environ.setdefault("CLM_STAGE", "dev")
    from chalicelib import runtime

    runtime.reset()


def api_url() -> str:
    explicit = os.environ.get("CLM_API_URL")
    if explicit:
        return explicit.rstrip("/")
    return f"http://127.0.0.1:{os.environ.get('CLM_API_PORT', DEFAULT_API_PORT)}"


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text}") from exc
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give the time with an offset, e.g. 2027-01-01T09:00:00+08:00")
    return value


def cmd_local(args: argparse.Namespace) -> int:
    from clm.local.stack import run

    return run(
        int(os.environ.get("CLM_AWS_PORT", DEFAULT_AWS_PORT)),
        int(os.environ.get("CLM_API_PORT", DEFAULT_API_PORT)),
    )


def cmd_info(args: argparse.Namespace) -> int:
    _use_stack()
    from chalicelib.settings import get_settings

    settings = get_settings()
    _emit(
        {
            "api_url": api_url(),
            "aws_endpoint": settings.endpoint_url,
            "stage": settings.stage,
            "table": settings.table_name,
            "topics": settings.topics,
            "queues": {name: url for name, url in settings.queue_urls.items()},
        }
    )
    return 0


def cmd_partner_add(args: argparse.Namespace) -> int:
    _use_stack()
    from chalicelib.inbound import partners
    from chalicelib.store.partners import PartnerExists

    try:
        creds = partners.add(args.partner_id, args.kind, args.name)
    except PartnerExists:
        print(f"clm: partner {args.partner_id} already exists", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"clm: {exc}", file=sys.stderr)
        return 2
    _emit(
        {
            "partner_id": creds.partner_id,
            "kind": creds.kind,
            "webhook_secret": creds.webhook_secret,
            "api_key": creds.api_key,
        }
    )
    return 0


def cmd_partner_rotate(args: argparse.Namespace) -> int:
    _use_stack()
    from chalicelib.inbound import partners

    try:
        secret = partners.rotate_secret(args.partner_id)
    except LookupError:
        print(f"clm: no partner {args.partner_id}", file=sys.stderr)
        return 1
    if os.environ.get("CLM_AWS_ENDPOINT"):
        _remember_local_secret(args.partner_id, secret)
    _emit(
        {
            "partner_id": args.partner_id,
            "webhook_secret": secret,
            "previous_secrets_valid_for_hours": int(partners.ROTATION_GRACE.total_seconds() // 3600),
        }
    )
    return 0


def _remember_local_secret(partner_id: str, secret: str) -> None:
    """Keep the local credentials file current, so `clm send` and the next `make run` use the new secret."""
    from clm.local.stack import CREDENTIALS_FILE, load_credentials

    path = Path(os.environ.get("CLM_CREDENTIALS", CREDENTIALS_FILE))
    known = load_credentials(path)
    if partner_id in known:
        known[partner_id]["webhook_secret"] = secret
        path.write_text(json.dumps(known, indent=2) + "\n")


def _secret_for(partner_id: str, given: str | None) -> str | None:
    if given:
        return given
    if os.environ.get("CLM_WEBHOOK_SECRET"):
        return os.environ["CLM_WEBHOOK_SECRET"]
    from clm.local.stack import CREDENTIALS_FILE, load_credentials

    path = Path(os.environ.get("CLM_CREDENTIALS", CREDENTIALS_FILE))
    return load_credentials(path).get(partner_id, {}).get("webhook_secret")


def cmd_send(args: argparse.Namespace) -> int:
    from chalicelib import clock
    from chalicelib.inbound import signatures

    secret = _secret_for(args.partner, args.secret)
    if not secret:
        print(
            f"clm: no webhook secret for {args.partner} (use --secret or CLM_WEBHOOK_SECRET)", file=sys.stderr
        )
        return 2
    body = Path(args.file).read_bytes()
    msg_id = args.id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(clock.now().timestamp())
    request = urllib.request.Request(
        f"{api_url()}/webhooks/{args.partner}",
        data=body,
        method="POST",
        headers={
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signatures.sign(signatures.secret_key(secret), msg_id, timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    try:
        shown: Any = json.loads(text)
    except ValueError:
        shown = text
    _emit({"status": status, "webhook_id": msg_id, "response": shown})
    return 0 if status < 400 else 1


def cmd_sweep(args: argparse.Namespace) -> int:
    _use_stack()
    from chalicelib import clock
    from chalicelib.service.sweep import sweep

    at = args.at or clock.now()
    with clock.pinned(at) as now:
        report = sweep(now)
    _emit(report.to_json())
    return 0


def cmd_event_show(args: argparse.Namespace) -> int:
    """The outcome of an accepted event, as its sender sees it, plus the true reason (ops only)."""
    _use_stack()
    from chalicelib.store import inbox

    item = inbox.load(inbox.InboxRef(args.partner_id, args.webhook_id))
    if item is None:
        print(f"clm: no event {args.webhook_id} from {args.partner_id}", file=sys.stderr)
        return 1
    _emit({**inbox.outcome(item), "ops_reason": item.ops_reason, "last_error": item.last_error})
    return 0


def _requeue_event(body: str) -> None:
    """A replayed event is `pending` again (not `dead_lettered`) while it waits for its retry."""
    from chalicelib.store import inbox

    try:
        ref = json.loads(body)
    except ValueError:
        return
    if isinstance(ref, dict) and ref.get("kind") == "inbox":
        inbox.requeue(inbox.InboxRef(str(ref.get("partner_id")), str(ref.get("webhook_id"))))


def cmd_dlq(args: argparse.Namespace) -> int:
    _use_stack()
    from chalicelib import aws
    from chalicelib.settings import get_settings

    sqs = aws.client("sqs")
    urls = get_settings().queue_urls
    moved: list[Any] = []
    held: list[dict[str, Any]] = []  # listed messages, hidden while paging so each is seen once
    while True:
        out = sqs.receive_message(
            QueueUrl=urls["dlq"],
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=60,
            AttributeNames=["All"],
        )
        messages = out.get("Messages", [])
        if not messages:
            break
        for message in messages:
            try:
                body: Any = json.loads(message["Body"])
            except ValueError:
                body = message["Body"]
            moved.append(
                {
                    "message_id": message["MessageId"],
                    "body": body,
                    "receive_count": message.get("Attributes", {}).get("ApproximateReceiveCount"),
                }
            )
            if args.action == "replay":
                _requeue_event(message["Body"])
                sqs.send_message(QueueUrl=urls["work"], MessageBody=message["Body"])
                sqs.delete_message(QueueUrl=urls["dlq"], ReceiptHandle=message["ReceiptHandle"])
            else:
                held.append(
                    {"Id": str(len(held)), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
                )
    for start in range(0, len(held), 10):
        sqs.change_message_visibility_batch(QueueUrl=urls["dlq"], Entries=held[start : start + 10])
    _emit({"action": args.action, "count": len(moved), "messages": moved})
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="clm", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("local", help="run the local stack (what `make run` does)").set_defaults(func=cmd_local)
    sub.add_parser("info", help="where the stack's API and resources are").set_defaults(func=cmd_info)

    partner = sub.add_parser("partner", help="manage partners").add_subparsers(dest="action", required=True)
    add = partner.add_parser("add", help="register a partner; prints its credentials once")
    add.add_argument("partner_id")
    add.add_argument("--kind", required=True, choices=("dealer", "finance", "hq"))
    add.add_argument("--name")
    add.set_defaults(func=cmd_partner_add)
    rotate = partner.add_parser("rotate-secret", help="new webhook secret; older ones stay valid 24 h")
    rotate.add_argument("partner_id")
    rotate.set_defaults(func=cmd_partner_rotate)

    send = sub.add_parser("send", help="sign an event file and post it to the webhook endpoint")
    send.add_argument("file")
    send.add_argument("--partner", required=True)
    send.add_argument("--secret", help="webhook secret (default: CLM_WEBHOOK_SECRET or .clm credentials)")
    send.add_argument("--id", help="webhook-id (default: a new one)")
    send.set_defaults(func=cmd_send)

    sweep = sub.add_parser("sweep", help="run every time-driven job as of an instant")
    sweep.add_argument("--at", type=_instant, help="ISO 8601 time with offset (default: now)")
    sweep.set_defaults(func=cmd_sweep)

    event = sub.add_parser("event", help="accepted events").add_subparsers(dest="action", required=True)
    show = event.add_parser("show", help="what became of an accepted event (outcome, reason, attempts)")
    show.add_argument("partner_id")
    show.add_argument("webhook_id")
    show.set_defaults(func=cmd_event_show)

    dlq = sub.add_parser("dlq", help="inspect or replay failed work")
    dlq.add_argument("action", choices=("list", "replay"))
    dlq.set_defaults(func=cmd_dlq)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
