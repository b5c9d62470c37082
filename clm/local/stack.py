"""`make run`: CLM on one machine, on moto's server, with every handler running.

Chalice's own `chalice local` serves HTTP routes only, so this runs the same app object in one
process: the HTTP routes through Chalice's local server, and the stream, queue and schedule
handlers through pollers that build the events Lambda would send.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from chalicelib import clock
from clm.local import stream_filter

log = logging.getLogger("clm.local")

DEMO_PARTNERS = (
    ("dealer-demo", "dealer", "Demo Dealer"),
    ("finance-demo", "finance", "Demo Finance"),
    ("hq", "hq", "CLM HQ"),
)
STATE_DIR = Path(".clm")  # beside the project: credentials, where the running stack answers, notifications
CREDENTIALS_FILE = STATE_DIR / "local-credentials.json"
STACK_FILE = "local-stack.json"  # written once the stack answers, removed when it stops
STREAM_RECORDS = 20  # records per stream read (the stream handler's batch size)
QUEUE_WORKERS = 2  # concurrent work-queue consumers (Lambda scales SQS consumers out)
STREAM_RETRIES = 10  # the stream source's MaximumRetryAttempts in infra/
STREAM_LANES = 3  # concurrent invocations per batch (Lambda's ParallelizationFactor)
SCHEDULE_HANDLERS = ("sweep_reminders", "sweep_deadlines")  # run every minute here (AWS: hourly, 5 min)


def local_region() -> str:
    """The region the local stack lives in; the CLI resolves it the same way (settings)."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "cn-north-1"


def local_environment(aws_port: int) -> dict[str, str]:
    """What every process talking to the local stack needs (the CLI sets the same)."""
    region = local_region()
    return {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{aws_port}",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "CLM_STAGE": "local",
    }


def _context(name: str) -> Any:
    from chalice.local import LambdaContext

    return LambdaContext(name, memory_size=512, max_runtime_ms=60_000)


SERIAL_KINDS = frozenset({"Request", "CloudWatchEvent"})


def one_invocation_per_function(app: Any) -> None:
    """The API and the schedule serve one invocation at a time; the stream and queue consumers run
    several at once, as Lambda scales them.

    An API instance never runs two invocations at once on AWS, and Powertools keeps its metrics
    object per process, which the webhook handler flushes: its invocations must not overlap here.
    The consumers count with standalone metrics (`observability.count`), so they may. Different
    kinds run side by side, so a long sweep never stalls the API. The lock is the outermost
    middleware (Chalice runs the first registered one outermost; `register_middleware` appends).
    """
    locks: dict[str, threading.Lock] = {}
    guard = threading.Lock()

    def serialized(event: Any, get_response: Callable[[Any], Any]) -> Any:
        kind = type(event).__name__  # Request, DynamoDBEvent, SQSEvent, CloudWatchEvent
        if kind not in SERIAL_KINDS:
            return get_response(event)
        with guard:
            lock = locks.setdefault(kind, threading.Lock())
        with lock:
            return get_response(event)

    app.middleware_handlers.insert(0, (serialized, "all"))


class Worker(threading.Thread):
    """A loop that stops when asked; errors are logged and the loop goes on."""

    def __init__(self, name: str, step: Callable[[], bool], stop: threading.Event, idle: float) -> None:
        super().__init__(name=name, daemon=True)
        self.step, self.stop_event, self.idle = step, stop, idle
        self.last_busy = time.monotonic()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                busy = self.step()
            except Exception:
                log.exception("%s failed; retrying", self.name)
                busy = False
            if busy:
                self.last_busy = time.monotonic()
            else:
                self.stop_event.wait(self.idle)


class StreamPoller:
    """Feeds the table stream to the `table_stream` handler, like Lambda's event source mapping."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], Any]) -> None:
        from chalicelib import aws
        from chalicelib.settings import get_settings

        settings = get_settings()
        self.handler = handler
        self.unfinished: list[dict[str, Any]] = []  # a batch's records from its first failed one on
        self.filters = stream_filter.patterns()  # the event source's FilterCriteria in infra/
        self.retries = 0
        self.pool = ThreadPoolExecutor(max_workers=STREAM_LANES, thread_name_prefix="stream")
        self.streams = aws.client("dynamodbstreams")
        table = aws.client("dynamodb").describe_table(TableName=settings.table_name)["Table"]
        self.arn = table["LatestStreamArn"]
        shard = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"][0]
        self.iterator = self.streams.get_shard_iterator(
            StreamArn=self.arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
        )["ShardIterator"]
        self.region = settings.region

    def step(self) -> bool:
        """One batch, as Lambda's event source mapping sends it; a reported failure is sent again,
        from the failed record on (Lambda's `ReportBatchItemFailures` for streams)."""
        if self.unfinished:
            self.retries += 1
            if self.retries > STREAM_RETRIES:  # Lambda's MaximumRetryAttempts: the sweep re-drives them
                log.error("stream records failed %d times; left to the re-drive", STREAM_RETRIES)
                self.unfinished, self.retries = [], 0
                return True
            records = self.unfinished
            self.unfinished = []
            try:
                self._invoke(records)
            except Exception:
                self.unfinished = records  # as Lambda: the batch comes again
                raise
            if not self.unfinished:
                self.retries = 0
            return True
        out = self.streams.get_records(ShardIterator=self.iterator, Limit=STREAM_RECORDS)
        read = out.get("Records", [])
        records = [r for r in read if stream_filter.passes(self.filters, r)]  # as Lambda filters them
        if records:
            for record in records:
                record.setdefault("eventSourceARN", self.arn)
                record.setdefault("awsRegion", self.region)
                record.setdefault("eventID", record["dynamodb"]["SequenceNumber"])
                record["dynamodb"].setdefault("ApproximateCreationDateTime", clock.now().timestamp())
                record["dynamodb"].setdefault("SizeBytes", 0)
                created = record["dynamodb"]["ApproximateCreationDateTime"]
                if not isinstance(created, int | float):
                    record["dynamodb"]["ApproximateCreationDateTime"] = created.timestamp()
            # Like Lambda: a batch that raises is retried as a whole, the iterator stays put.
            try:
                self._invoke(records)
            except Exception:
                self.unfinished = records
                self.iterator = out["NextShardIterator"]
                raise
        self.iterator = out["NextShardIterator"]
        return bool(read)

    def _invoke(self, records: list[dict[str, Any]]) -> None:
        """The batch in `STREAM_LANES` concurrent invocations, records of one partition key in one lane
        and in order (Lambda's ParallelizationFactor); what a lane reports failed is sent again."""
        lanes: list[list[dict[str, Any]]] = [[] for _ in range(STREAM_LANES)]
        for record in records:
            key = json.dumps(record["dynamodb"].get("Keys", {}).get("pk"), sort_keys=True)
            lanes[zlib.crc32(key.encode()) % STREAM_LANES].append(record)
        busy = [lane for lane in lanes if lane]
        answers = list(self.pool.map(self._invoke_lane, busy))
        failed = {f for answer in answers for f in answer}
        for index, record in enumerate(records):
            if record["dynamodb"]["SequenceNumber"] in failed:
                self.unfinished = records[index:]
                return

    def _invoke_lane(self, records: list[dict[str, Any]]) -> set[str]:
        response = self.handler({"Records": records}, _context("table_stream")) or {}
        return {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}


class QueuePoller:
    """Feeds the work queue to the `work_queue` handler; a message is deleted only on success."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], Any]) -> None:
        from chalicelib import aws
        from chalicelib.settings import get_settings

        self.handler = handler
        self.sqs = aws.client("sqs")
        self.url = get_settings().queue_urls["work"]
        self.arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def step(self, wait_seconds: int = 1) -> bool:
        """One batch of up to 10 messages in one invocation; the ones it reports failed stay in
        the queue for SQS to redeliver after the visibility timeout, the others are deleted."""
        out = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds, AttributeNames=["All"]
        )
        messages = out.get("Messages", [])
        if not messages:
            return False
        records = [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": self.arn,
                "awsRegion": self.arn.split(":")[3],
            }
            for message in messages
        ]
        try:
            response = self.handler({"Records": records}, _context("work_queue")) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:
            log.exception("work batch failed as a whole; SQS will redeliver it")
            failed = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:  # at most 10: one batch
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        if failed:
            log.warning("%d work message(s) failed; SQS will redeliver them", len(failed))
        return True

    def step_now(self) -> bool:
        """One poll without waiting (tests drive the queue by hand)."""
        return self.step(wait_seconds=0)


class Scheduler:
    """Runs the schedule handlers (reminders, deadlines) every minute, as EventBridge would run
    them hourly and every 5 minutes: one machine's ops want to see time-driven work soon."""

    def __init__(self, handlers: list[Callable[[dict[str, Any], Any], Any]], every: float = 60.0) -> None:
        self.handlers, self.every, self.next_at = handlers, every, time.monotonic() + every

    def step(self) -> bool:
        if time.monotonic() < self.next_at:
            return False
        self.next_at = time.monotonic() + self.every
        event = {
            "version": "0",
            "id": "local",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": clock.iso(clock.now()),
            "region": "cn-north-1",
            "resources": [],
            "detail": {},
        }
        for handler in self.handlers:  # as on AWS, one schedule's failure does not skip the other's run
            try:
                handler(event, _context("sweep"))
            except Exception:
                log.exception("scheduled sweep failed; the next run resumes it")
        return False


def load_credentials(path: Path) -> dict[str, dict[str, str]]:
    try:
        loaded: dict[str, dict[str, str]] = json.loads(path.read_text())
        return loaded
    except (OSError, ValueError):
        return {}


def create_demo_partners(path: Path) -> dict[str, dict[str, str]]:
    """Register the demo partners, keeping the credentials of a previous run so senders keep working.

    On a kept stack they exist already: the credentials file still holds theirs (and every partner
    `clm partner add` made); one missing from the file gets a new secret and key.
    """
    from chalicelib.inbound import partners
    from chalicelib.store.partners import PartnerExists, put_api_key

    known = load_credentials(path)
    out: dict[str, dict[str, str]] = dict(known)
    for partner_id, kind, name in DEMO_PARTNERS:
        previous = known.get(partner_id, {})
        try:
            creds = partners.add(
                partner_id,
                kind,
                name,
                webhook_secret=previous.get("webhook_secret"),
                api_key=previous.get("api_key"),
            )
        except PartnerExists:
            if previous.get("webhook_secret") and previous.get("api_key"):
                continue
            from chalicelib import clock

            secret, api_key = partners.rotate_secret(partner_id), partners.new_api_key()
            put_api_key(partners.hash_api_key(api_key), partner_id, clock.now())
            out[partner_id] = {"kind": kind, "webhook_secret": secret, "api_key": api_key}
            continue
        out[partner_id] = {"kind": kind, "webhook_secret": creds.webhook_secret, "api_key": creds.api_key}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    path.chmod(0o600)
    return out


def local_api_server(app: Any, config: Any, host: str, port: int) -> Any:
    """Chalice's local HTTP server, answering as the deployed API Gateway does (infra/ sets the same).

    An unknown route gets a 404 problem: Chalice's local gateway answers it, like API Gateway's
    default, with a 403 that repeats the caller's Authorization header. The access log cuts what
    callers sent (a path can carry a 60 KB partner id). The listen backlog takes bursts of
    concurrent senders (socketserver's default of 5 resets connections).
    """
    from chalice.local import (
        ChaliceRequestHandler,
        CustomLocalChalice,
        ForbiddenError,
        LocalChalice,
        LocalDevServer,
        ThreadedHTTPServer,
    )

    from chalicelib.api.problems import CONTENT_TYPE, body
    from chalicelib.errors import NotFound
    from chalicelib.observability import cut

    class Handler(ChaliceRequestHandler):
        # Headers and body leave in two writes: with Nagle's algorithm the body waits for the
        # client's delayed ACK (about 40 ms per keep-alive request).
        disable_nagle_algorithm = True

        def _send_error_response(self, error: Any) -> None:
            if isinstance(error, ForbiddenError):  # no route matched: this app defines no authorizers
                answer = json.dumps(body(NotFound("route"))).encode()
                self._send_http_response(404, {"Content-Type": CONTENT_TYPE}, answer)
                return
            super()._send_error_response(error)

        def log_message(self, format: str, *args: Any) -> None:
            super().log_message(format, *(cut(a) if isinstance(a, str) else a for a in args))

        def __getattr__(self, name: str) -> Any:
            # Any other method (TRACE, QUERY …) is routed like the rest: 405 on a known path, else
            # 404. The standard library's 501 would be a 5xx, which tells a sender to retry.
            if name.startswith("do_"):
                return self._generic_handle
            raise AttributeError(name)

    class Server(ThreadedHTTPServer):
        request_queue_size = 128

    # As `chalice local` does: the request being served is per thread, not one attribute of the app
    # that concurrent requests overwrite.
    CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
    app.__class__ = CustomLocalChalice
    return LocalDevServer(app, config, host, port, handler_cls=Handler, server_cls=Server)


def start_embedded_aws(port: int, state_dir: Path, fresh: bool = False) -> tuple[subprocess.Popen[str], bool]:
    """moto's server in a process of its own (`clm.local.embedded_aws`), once it answers; and
    whether it loaded the state a previous run kept."""
    from clm.local import persist, watch

    notifications, state = state_dir / watch.FILE_NAME, state_dir / persist.FILE_NAME
    state_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "clm.local.embedded_aws", str(port), str(notifications), str(state)]
        + (["--fresh"] if fresh else []),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "ready" not in line:
        process.kill()
        raise RuntimeError(f"the embedded AWS did not start on port {port}")
    return process, "kept state" in line


class LocalStack:
    def __init__(
        self,
        aws_port: int,
        api_port: int,
        credentials: Path = CREDENTIALS_FILE,
        sweep_every: float = 60.0,
        fresh: bool = False,
    ) -> None:
        self.aws_port, self.api_port, self.credentials = aws_port, api_port, credentials
        self.fresh, self.kept = fresh, False
        self.sweep_every = sweep_every
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.moto: Any = None
        self.http: Any = None

    def start(self) -> None:
        os.environ.update(local_environment(self.aws_port))
        from chalicelib import runtime

        runtime.reset()
        self.moto, self.kept = start_embedded_aws(self.aws_port, self.credentials.parent, self.fresh)
        from clm.local.provision import provision

        provision("local")
        create_demo_partners(self.credentials)

        from chalice.cli.factory import CLIFactory

        import app as app_module

        app = app_module.app
        one_invocation_per_function(app)
        project_dir = str(Path(app_module.__file__).resolve().parent)
        config = CLIFactory(project_dir).create_config_obj(chalice_stage_name="local")
        self.http = local_api_server(app, config, "127.0.0.1", self.api_port)
        api = threading.Thread(target=self.http.serve_forever, name="api", daemon=True)
        api.start()
        self.threads.append(api)
        queues = [
            (f"queue-{n}", QueuePoller(app.handler_map["work_queue"]).step, 0.1) for n in range(QUEUE_WORKERS)
        ]
        for name, step, idle in (
            ("stream", StreamPoller(app.handler_map["table_stream"]).step, 0.05),
            *queues,
            (
                "schedule",
                Scheduler([app.handler_map[name] for name in SCHEDULE_HANDLERS], self.sweep_every).step,
                0.5,
            ),
        ):
            worker = Worker(name, step, self.stop_event, idle)
            worker.start()
            self.threads.append(worker)
        self.wait_healthy()
        self.announce()

    @property
    def stack_file(self) -> Path:
        return self.credentials.parent / STACK_FILE

    def announce(self) -> None:
        """Tell `clm` in another terminal where this stack answers (non-default ports need no variable)."""
        where = {
            "api_url": f"http://127.0.0.1:{self.api_port}",
            "aws_endpoint": f"http://127.0.0.1:{self.aws_port}",
            "credentials": str(self.credentials.resolve()),
            "pid": os.getpid(),
        }
        self.stack_file.write_text(json.dumps(where, indent=2) + "\n")

    def wait_idle(self, quiet: float = 1.0, timeout: float = 120.0) -> None:
        """Block until no worker has had work for `quiet` seconds (benchmarks, tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = [t for t in self.threads if isinstance(t, Worker)]
            if all(time.monotonic() - w.last_busy >= quiet for w in workers):
                return
            time.sleep(0.1)
        raise TimeoutError("the local stack did not settle")

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.api_port}/health"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)

    def stop(self) -> None:
        if self._announced_by_us():
            self.stack_file.unlink(missing_ok=True)
        self.stop_event.set()
        if self.http is not None:
            self.http.shutdown()
            self.http.server.server_close()
        for thread in self.threads:
            thread.join(timeout=5)
        if self.moto is not None:
            self.moto.terminate()
            try:
                self.moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.moto.kill()

    def _announced_by_us(self) -> bool:
        try:
            return bool(json.loads(self.stack_file.read_text()).get("pid") == os.getpid())
        except (OSError, ValueError):
            return False


def running_stack(state_dir: Path = STATE_DIR) -> dict[str, str] | None:
    """Where the local stack announced in `state_dir` answers, if its process still runs and its API
    takes connections: a stack that was killed leaves its file, and the system may have given its pid
    to another process since."""
    import socket
    import urllib.parse

    try:
        where = json.loads((state_dir / STACK_FILE).read_text())
        os.kill(int(where["pid"]), 0)
        api = urllib.parse.urlsplit(str(where["api_url"]))
        socket.create_connection((api.hostname or "127.0.0.1", api.port or 80), timeout=5).close()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {key: str(value) for key, value in where.items()}


def run(aws_port: int, api_port: int, fresh: bool = False) -> int:
    """Start everything, print `CLM ready`, and stop cleanly on Ctrl-C or SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sweep_every = float(os.environ.get("CLM_SWEEP_SECONDS", "60"))
    stack = LocalStack(aws_port, api_port, sweep_every=sweep_every, fresh=fresh)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        stack.start()
        kept = "data kept from the last run" if stack.kept else "empty"
        print(
            f"CLM ready: API http://127.0.0.1:{api_port}  AWS http://127.0.0.1:{aws_port}  "
            f"credentials {stack.credentials}  ({kept}; `clm local --fresh` starts empty)\n"
            "  in another terminal: .venv/bin/clm info | send FILE --partner dealer-demo | tasks dealer-demo"
            " | watch",
            flush=True,
        )
        while not stopping.is_set():
            stopping.wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("CLM stopping", flush=True)
        stack.stop()
    print("CLM stopped", flush=True)
    return 0
