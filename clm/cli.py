"""`clm`: operate a CLM stack.

It talks to the stack CLM_AWS_ENDPOINT names; when that is unset, to the local stack running in
this directory (`make run` announces itself in `.clm/local-stack.json`, so other ports need no
variable); otherwise to AWS. Every failure is one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

DEFAULT_AWS_PORT = 4566
DEFAULT_API_PORT = 8000


class CliError(Exception):
    """A failure the user is told of in one line (`clm: ...`), with its exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see `{self.prog} --help`)", 2)


_results: TextIO | None = None  # where a command's answer goes; everything else goes to stderr


def _say(text: str = "", flush: bool = False) -> None:
    """One line of the command's answer (stdout), apart from the metrics and logs the work emits."""
    print(text, file=_results or sys.stdout, flush=flush)


def _emit(value: Any) -> None:
    _say(json.dumps(value, indent=2, ensure_ascii=False))


@contextlib.contextmanager
def _answer_on_stdout_only() -> Iterator[None]:
    """While a command runs, what the code it calls prints (EMF metrics, Powertools' JSON logs)
    goes to stderr: stdout carries the answer alone, so `clm sweep | jq` always parses."""
    import logging

    from chalicelib.observability import logger

    global _results
    previous, _results = _results, sys.stdout
    handlers = [h for h in logger.handlers if isinstance(h, logging.StreamHandler)]
    streams = [h.setStream(sys.stderr) for h in handlers]
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for handler, stream in zip(handlers, streams, strict=True):
            if stream is not None:
                handler.setStream(stream)
        _results = previous


def _state_dir() -> Path:
    from clm.local.stack import CREDENTIALS_FILE

    return Path(os.environ.get("CLM_CREDENTIALS", CREDENTIALS_FILE)).parent


def _local_stack() -> dict[str, str] | None:
    from clm.local.stack import running_stack

    return running_stack(_state_dir())


def _local_endpoint() -> str | None:
    """The local stack's AWS endpoint: the one CLM_AWS_ENDPOINT names, or the running stack's here."""
    explicit = os.environ.get("CLM_AWS_ENDPOINT")
    if explicit:
        return explicit
    found = _local_stack()
    return found["aws_endpoint"] if found else None


def _use_stack() -> None:
    """Point this process at the local stack (named or found), or at AWS when there is none."""
    endpoint = _local_endpoint()
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
    """CLM_API_URL, else CLM_API_PORT on this machine, else where the local stack here answers."""
    explicit = os.environ.get("CLM_API_URL")
    if explicit:
        return explicit.rstrip("/")
    if os.environ.get("CLM_API_PORT"):
        return f"http://127.0.0.1:{os.environ['CLM_API_PORT']}"
    found = _local_stack()
    return found["api_url"] if found else f"http://127.0.0.1:{DEFAULT_API_PORT}"


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text}") from exc
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give the time with an offset, e.g. 2027-01-01T09:00:00+08:00")
    return value


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is free
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port(name: str, default: int) -> int:
    text = os.environ.get(name, str(default))
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise CliError(f"{name} must be a port number, not {text!r}", 2)
    return int(text)


def cmd_local(args: argparse.Namespace) -> int:
    from chalicelib.domain import tags
    from clm.local.stack import run

    try:
        tags.default_rules()  # a bad rule file stops the stack before it starts, naming the rule
    except tags.RuleError as exc:
        raise CliError(f"{tags.RULES_FILE.name}: {exc}", 2) from None
    running = _local_stack()
    if running:
        raise CliError(f"a local stack already runs here (pid {running['pid']}, API {running['api_url']})")
    ports = {"CLM_AWS_PORT": _port("CLM_AWS_PORT", DEFAULT_AWS_PORT)}
    ports["CLM_API_PORT"] = _port("CLM_API_PORT", DEFAULT_API_PORT)
    for name, port in ports.items():
        if not _port_free(port):
            raise CliError(f"port {port} is in use: stop what holds it, or choose another with {name}=…")
    return run(ports["CLM_AWS_PORT"], ports["CLM_API_PORT"], fresh=args.fresh)


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
        raise CliError(f"partner {args.partner_id} already exists") from None
    except ValueError as exc:
        raise CliError(str(exc), 2) from None
    if _local_endpoint():
        _remember_local(
            creds.partner_id,
            {"kind": creds.kind, "webhook_secret": creds.webhook_secret, "api_key": creds.api_key},
        )
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
        raise CliError(f"no partner {args.partner_id}") from None
    if _local_endpoint():
        _remember_local(args.partner_id, {"webhook_secret": secret})
    _emit(
        {
            "partner_id": args.partner_id,
            "webhook_secret": secret,
            "previous_secrets_valid_for_hours": int(partners.ROTATION_GRACE.total_seconds() // 3600),
        }
    )
    return 0


def _remember_local(partner_id: str, fields: dict[str, str]) -> None:
    """Keep the local credentials file current: `clm send`, tests and the next `make run` use it."""
    from clm.local.stack import CREDENTIALS_FILE, load_credentials

    path = Path(os.environ.get("CLM_CREDENTIALS", CREDENTIALS_FILE))
    known = load_credentials(path)
    known[partner_id] = {**known.get(partner_id, {}), **fields}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(known, indent=2) + "\n")
    path.chmod(0o600)


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
        raise CliError(f"no webhook secret for {args.partner} (use --secret or CLM_WEBHOOK_SECRET)", 2)
    try:
        body = Path(args.file).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror or exc}", 2) from None
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
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"the API at {api_url()} does not answer ({reason}): is `make run` running?") from None
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
    _emit(report.to_json())  # what ran, whatever failed: a script reads both
    if report.jobs_failed:
        failed = ", ".join(sorted(report.jobs_failed))
        raise CliError(f"sweep: {failed} failed (see jobs_failed); the other jobs ran; run again to resume")
    return 0


def cmd_event_show(args: argparse.Namespace) -> int:
    """The outcome of an accepted event, as its sender sees it, plus the true reason (ops only)."""
    _use_stack()
    from chalicelib.store import inbox

    item = inbox.load(inbox.InboxRef(args.partner_id, args.webhook_id))
    if item is None:
        raise CliError(f"no event {args.webhook_id} from {args.partner_id}")
    _emit({**inbox.outcome(item), "ops_reason": item.ops_reason, "last_error": item.last_error})
    return 0


def _requeue_event(body: str) -> None:
    """A replayed unit is back in its re-drive queue with its attempts counted afresh: an event
    reads `pending` again (not `dead_lettered`) while it waits for its retry."""
    from chalicelib import clock
    from chalicelib.store import inbox, outbox

    try:
        ref = json.loads(body)
    except ValueError:
        return
    if not isinstance(ref, dict):
        return
    if ref.get("kind") == "inbox":
        inbox.requeue(
            inbox.InboxRef(str(ref.get("partner_id")), str(ref.get("webhook_id"))), clock.system_now()
        )
    elif ref.get("kind") == "outbox":
        outbox.requeue(str(ref.get("outbox_id")), clock.system_now())


def cmd_dlq(args: argparse.Namespace) -> int:
    """List or replay the dead-letter queue. A replay re-sends each message to the work queue and
    only then deletes it: a replay cut short re-sends again, and the work itself is idempotent."""
    wanted = set(args.message_ids)
    if args.action == "list" and (wanted or args.all):
        raise CliError("dlq list takes no IDs or --all (those choose what `dlq replay` replays)")
    if wanted and args.all:
        raise CliError("dlq replay takes IDs or --all, not both")
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
            if args.action == "replay" and wanted and message["MessageId"] not in wanted:
                held.append(
                    {"Id": str(len(held)), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
                )
                continue
            moved.append(
                {
                    "message_id": message["MessageId"],
                    "body": body,
                    "receive_count": message.get("Attributes", {}).get("ApproximateReceiveCount"),
                    "why": _dlq_why(body),
                }
            )
            if args.action == "replay" and (not wanted or message["MessageId"] in wanted):
                _requeue_event(message["Body"])
                sqs.send_message(QueueUrl=urls["work"], MessageBody=message["Body"])
                sqs.delete_message(QueueUrl=urls["dlq"], ReceiptHandle=message["ReceiptHandle"])
            else:
                held.append(
                    {"Id": str(len(held)), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
                )
    for start in range(0, len(held), 10):
        sqs.change_message_visibility_batch(QueueUrl=urls["dlq"], Entries=held[start : start + 10])
    missing = wanted - {m["message_id"] for m in moved}
    if missing:
        raise CliError(
            f"not in the dead-letter queue (replayed already?): {', '.join(sorted(missing))}"
            + (f"; replayed {len(moved)}" if moved else "")
        )
    if args.action == "list" and not args.json:
        _table(
            ["message_id", "receives", "kind", "ref", "why"],
            [[m["message_id"], m["receive_count"], *_dlq_summary(m["body"]), m["why"]] for m in moved],
        )
        return 0
    _emit({"action": args.action, "count": len(moved), "messages": moved})
    return 0


def _dlq_why(body: Any) -> str | None:
    """Why the work failed, as its last failure left it on its inbox or outbox item, or in the
    message itself for a tags refresh (phones masked); None when nothing was recorded."""
    if not isinstance(body, dict):
        return None
    if body.get("kind") == "tags":
        why = body.get("why")
        return why if isinstance(why, str) else None
    if body.get("kind") == "inbox":
        from chalicelib.store import inbox

        item = inbox.load(inbox.InboxRef(str(body.get("partner_id")), str(body.get("webhook_id"))))
        if item is None:
            return "the event is no longer stored"
        return (
            f"{item.status} since (a replay does nothing)" if item.status in inbox.FINAL else item.last_error
        )
    if body.get("kind") == "outbox":
        from chalicelib.store import outbox

        message = outbox.get(str(body.get("outbox_id")))
        if message is None:
            return "the message is no longer stored"
        if message.status in ("delivered", "suppressed"):
            return f"{message.status} since (a replay does nothing)"
        return message.last_error
    return None


def _dlq_summary(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["?", str(body)[:60]]
    names = ("dealer_id", "customer_id") if body.get("kind") == "tags" else ("partner_id", "webhook_id")
    ref = body.get("outbox_id") or "/".join(str(body.get(k, "")) for k in names)
    return [str(body.get("kind", "?")), ref]


def _table(columns: list[str], rows: list[list[Any]]) -> None:
    """A plain text table: a header, one line per row, columns as wide as their widest value."""
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    for row in [columns, *cells]:
        _say("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())
    if not rows:
        _say("(none)")


def cmd_partner_list(args: argparse.Namespace) -> int:
    _use_stack()
    from chalicelib import clock
    from chalicelib.store.partners import list_partners

    found = list_partners(clock.now())
    if args.json:
        _emit(
            [
                {
                    "partner_id": p.partner_id,
                    "kind": p.kind,
                    "name": p.name,
                    "created_at": clock.iso(p.created_at),
                    "active_secrets": p.active_secrets,
                }
                for p in found
            ]
        )
        return 0
    _table(
        ["partner_id", "kind", "name", "active_secrets", "created_at"],
        [[p.partner_id, p.kind, p.name, p.active_secrets, clock.iso(p.created_at)] for p in found],
    )
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    """A dealer's tasks as the read API lists them: by due time, then id; every page."""
    _use_stack()
    from chalicelib import errors
    from chalicelib.service import read

    found: list[dict[str, Any]] = []
    cursor = ""
    try:
        while True:
            page = read.list_tasks(
                args.dealer_id, {"status": args.status or "", "limit": "100", "next": cursor}
            )
            found += page["items"]
            if not page["next"]:
                break
            cursor = page["next"]
    except errors.Refusal as exc:
        raise CliError(exc.detail, 2) from None
    if args.json:
        _emit(found)
        return 0
    _table(
        ["due_at", "status", "kind", "role", "assignee", "vin", "task_id"],
        [
            [
                t["due_at"],
                t["status"],
                t["kind"],
                t["assignee_role"],
                t["assignee_id"],
                t["vin"],
                t["task_id"],
            ]
            for t in found
        ],
    )
    return 0


def cmd_gateway_configure(args: argparse.Namespace) -> int:
    """Store a payment gateway's merchant id and keys (the APIv3 key sealed, never printed)."""
    _use_stack()
    from chalicelib.inbound import gateway_keys
    from chalicelib.inbound.gateways import GatewayRefused

    path = Path(args.platform_public_key if args.gateway == "wechatpay" else args.alipay_public_key)
    try:
        pem = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}", 2) from None
    try:
        if args.gateway == "wechatpay":
            if not (args.mchid and args.apiv3_key and args.platform_serial):
                raise CliError(
                    "wechatpay needs --mchid, --apiv3-key, --platform-serial and --platform-public-key", 2
                )
            shown = gateway_keys.configure_wechatpay(args.mchid, args.apiv3_key, args.platform_serial, pem)
        else:
            if not args.app_id:
                raise CliError("alipay needs --app-id and --alipay-public-key", 2)
            shown = gateway_keys.configure_alipay(args.app_id, pem)
    except GatewayRefused:
        raise CliError(f"{path} is not a PEM public key", 2) from None
    except ValueError as exc:
        raise CliError(str(exc), 2) from None
    _emit(shown)
    return 0


def cmd_kpis(args: argparse.Namespace) -> int:
    """A dealer's KPI board of an ISO week, as the read API serves it."""
    _use_stack()
    from chalicelib import errors
    from chalicelib.service import read

    try:
        board = read.kpis(args.dealer_id, {"week": args.week or ""})
    except errors.Refusal as exc:
        raise CliError(exc.detail, 2) from None
    if args.json:
        _emit(board)
        return 0
    _say(f"{board['dealer_id']}  {board['week']}  ({board['from']} to {board['to']})")

    def shown(value: Any) -> str:
        return "-" if value is None else f"{value:g}"

    _table(
        ["kpi", "value", "target", "status", "n"],
        [
            [
                name,
                shown(board[name]["value"]),
                shown(board[name]["target"]),
                board[name]["status"],
                board[name]["n"],
            ]
            for name in (
                "handover_accuracy",
                "lead_conversion",
                "joint_satisfaction",
                "complaint_response_24h",
            )
        ],
    )
    hours = board["lead_follow_up_hours"]
    _say(f"lead follow-up median hours: {shown(hours['median'])} (n={hours['n']})")
    for signal in board["risk_signals"]:
        _say(f"risk signal {signal['audited_at']}: {', '.join(signal['reasons'])}")
    return 0


def cmd_customer(args: argparse.Namespace) -> int:
    """A dealer's customer as the read API shows it: preferences, vehicles, tags with evidence."""
    _use_stack()
    from chalicelib import errors
    from chalicelib.service import read

    try:
        _emit(read.customer_profile(args.dealer_id, args.customer_id))
    except errors.NotFound:
        raise CliError(f"no customer {args.customer_id} at {args.dealer_id}") from None
    return 0


def cmd_vehicle(args: argparse.Namespace) -> int:
    """A vehicle's timeline as its dealer's read API shows it (the current dealer unless --dealer)."""
    _use_stack()
    from chalicelib import errors
    from chalicelib.service import read
    from chalicelib.store import records

    dealer = args.dealer
    if dealer is None:
        owner = records.get_owner(args.vin)
        if owner is None:
            raise CliError(f"no vehicle {args.vin}: nobody delivered it")
        dealer = owner.dealer_id
    try:
        _emit({"dealer_id": dealer, **read.vehicle_timeline(dealer, args.vin)})
    except errors.NotFound:
        raise CliError(f"no vehicle {args.vin} at {dealer}") from None
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """Every SNS message and SMS the local stack sends, as it is sent (Ctrl-C stops)."""
    from clm.local.watch import FILE_NAME, follow, render

    if not _local_endpoint():
        raise CliError("no local stack runs here: `clm watch` shows the local stack's notifications")
    path = _state_dir() / FILE_NAME
    print(f"watching {path} (Ctrl-C stops)", file=sys.stderr, flush=True)
    for entry in follow(path, from_start=args.all):
        _say(json.dumps(entry, ensure_ascii=False) if args.json else render(entry), flush=True)
    return 0


def parser() -> argparse.ArgumentParser:
    top = Parser(prog="clm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)
    local = sub.add_parser("local", help="run the local stack (what `make run` does); it keeps its data")
    local.add_argument("--fresh", action="store_true", help="start empty (forget what earlier runs kept)")
    local.set_defaults(func=cmd_local)
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
    listing = partner.add_parser("list", help="every partner: id, kind, name, active secrets")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    listing.set_defaults(func=cmd_partner_list)

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
    dlq.add_argument(
        "message_ids", nargs="*", metavar="ID", help="replay: only these messages (see `dlq list`)"
    )
    dlq.add_argument("--all", action="store_true", help="replay: every message (the default without IDs)")
    dlq.add_argument("--json", action="store_true", help="list: JSON instead of a table")
    dlq.set_defaults(func=cmd_dlq)

    tasks = sub.add_parser("tasks", help="a dealer's tasks, by due time (as the read API lists them)")
    tasks.add_argument("dealer_id")
    tasks.add_argument("--status", choices=("open", "overdue", "done", "cancelled"))
    tasks.add_argument("--json", action="store_true", help="JSON instead of a table")
    tasks.set_defaults(func=cmd_tasks)

    gateway = sub.add_parser("gateway", help="payment gateways").add_subparsers(dest="action", required=True)
    configure = gateway.add_parser("configure", help="a gateway's merchant id and keys (stored sealed)")
    configure.add_argument("gateway", choices=("wechatpay", "alipay"))
    configure.add_argument("--mchid", help="wechatpay: the merchant id")
    configure.add_argument("--apiv3-key", help="wechatpay: the 32-byte APIv3 key")
    configure.add_argument("--platform-serial", help="wechatpay: the platform key's serial")
    configure.add_argument("--platform-public-key", help="wechatpay: PEM file of the platform public key")
    configure.add_argument("--app-id", help="alipay: the app id")
    configure.add_argument("--alipay-public-key", help="alipay: PEM file of Alipay's public key")
    configure.set_defaults(func=cmd_gateway_configure)

    kpis = sub.add_parser("kpis", help="a dealer's weekly KPI board (as the read API serves it)")
    kpis.add_argument("dealer_id")
    kpis.add_argument("--week", help="ISO week YYYY-Www (default: the current week)")
    kpis.add_argument("--json", action="store_true", help="JSON instead of a table")
    kpis.set_defaults(func=cmd_kpis)

    customer = sub.add_parser("customer", help="a dealer's customer: preferences, vehicles, preference tags")
    customer.add_argument("dealer_id")
    customer.add_argument("customer_id")
    customer.set_defaults(func=cmd_customer)

    vehicle = sub.add_parser("vehicle", help="a vehicle's timeline (its current dealer's view)")
    vehicle.add_argument("vin")
    vehicle.add_argument("--dealer", help="another dealer's view (a dealer it was resold from)")
    vehicle.set_defaults(func=cmd_vehicle)

    watch = sub.add_parser("watch", help="print the local stack's SNS messages and SMS as they are sent")
    watch.add_argument("--all", action="store_true", help="start with what was sent before")
    watch.add_argument("--json", action="store_true", help="one JSON object per line")
    watch.set_defaults(func=cmd_watch)
    return top


def describe(exc: BaseException) -> str:
    """One line for a failure nobody planned for: what happened, and what to do when that is known."""
    cause = getattr(exc, "cause", None) or exc.__cause__  # PynamoDB wraps botocore's errors
    if isinstance(cause, Exception) and type(cause).__name__ in (
        "EndpointConnectionError",
        "NoCredentialsError",
        "PartialCredentialsError",
        "NoRegionError",
        "ClientError",
    ):
        exc = cause
    name = type(exc).__name__
    if name == "EndpointConnectionError":
        where = _local_endpoint()
        if where:
            return f"the local stack at {where} does not answer: is `make run` running?"
        return f"AWS does not answer: {exc}"
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return "no AWS credentials: start the local stack (`make run`) or configure AWS credentials"
    if name == "NoRegionError":
        return "no AWS region: set AWS_DEFAULT_REGION (or start the local stack with `make run`)"
    if name == "ClientError":
        error = getattr(exc, "response", {}).get("Error", {})
        return f"AWS refused: {error.get('Code', '?')}: {error.get('Message', '')}"
    if isinstance(exc, FileNotFoundError):
        return f"no such file: {exc.filename}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return f"{name}: {exc}"


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        if args.func is cmd_local:  # the stack's own output (its logs and metrics) is what it prints
            code: int = args.func(args)
            return code
        with _answer_on_stdout_only():
            code = args.func(args)
        return code
    except CliError as exc:
        print(f"clm: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `clm tasks … | head`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # one line, never a traceback (set CLM_DEBUG=1 for one)
        if os.environ.get("CLM_DEBUG"):
            raise
        print(f"clm: {describe(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
