"""The accept path writes and reads items with the low-level client: in the models' own shapes."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import Harness


def test_inbox_hot_path_item_reads_back_as_the_model(harness: Harness) -> None:
    from chalicelib import clock
    from chalicelib.store import inbox

    ref = inbox.InboxRef("dealer-a", "msg_raw")
    assert isinstance(inbox.record(ref, "vehicle.delivered", '{"a": 1}', "h1", clock.now()), inbox.Accepted)
    again = inbox.record(ref, "vehicle.delivered", '{"a": 2}', "h2", clock.now())
    assert again == inbox.Existing(body_sha256="h1")
    item = inbox.load(ref)
    assert item is not None
    assert (item.partner_id, item.webhook_id, item.status, item.body) == (
        "dealer-a",
        "msg_raw",
        "pending",
        '{"a": 1}',
    )
    assert item.received_at == clock.now()
    assert item.expires_at is None  # an event not yet applied never expires
    from chalicelib.store import write_all

    write_all([inbox.applied_item(item, clock.now())])
    processed = inbox.load(ref)
    assert processed is not None and processed.status == "applied"
    assert processed.expires_at is not None and processed.expires_at >= clock.now() + timedelta(days=7)


def test_the_accept_paths_partner_read_is_the_models(harness: Harness) -> None:
    """A partner written and rotated through PynamoDB reads the same through `accept.get_partner`."""
    from chalicelib import clock
    from chalicelib.inbound import partners
    from chalicelib.store import accept
    from chalicelib.store.models import PartnerItem

    partners.add("dealer-shape", "dealer", "Shape Motors")
    partners.rotate_secret("dealer-shape")  # two secrets now, the older one retiring in 24 h
    item = PartnerItem.get("PARTNER#dealer-shape", "PARTNER", consistent_read=True)
    stored = accept.get_partner("dealer-shape")

    assert stored is not None
    assert (stored.partner_id, stored.kind, stored.name) == ("dealer-shape", "dealer", "Shape Motors")
    assert [(s.sealed, s.created_at, s.retires_at) for s in stored.secrets] == [
        (s.ciphertext, s.created_at, s.retires_at) for s in item.secrets
    ]
    assert stored.secrets[0].retires_at == clock.now() + partners.ROTATION_GRACE
    assert stored.secrets[1].retires_at is None
    assert accept.get_partner("dealer-nobody") is None


def test_a_partner_without_a_name_reads_as_none(harness: Harness) -> None:
    from chalicelib.inbound import partners
    from chalicelib.store import accept

    partners.add("dealer-anon", "finance")
    stored = accept.get_partner("dealer-anon")
    assert stored is not None and stored.name is None and stored.kind == "finance"
    assert len(stored.secrets) == 1 and stored.secrets[0].retires_at is None


def test_a_cold_webhook_never_imports_pynamodb() -> None:
    """A fresh process serves a signed delivery (202, AWS stubbed as in the bench) without PynamoDB."""
    import json
    import subprocess
    import sys

    from bench import cold_start

    loaded = "sorted(m for m in sys.modules if m.startswith(('pynamodb', 'chalicelib.store')))"
    code = cold_start.WEBHOOK + f"\nimport sys\nprint(json.dumps({loaded}))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cold_start.ROOT,
        env=cold_start.webhook_environment(),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["chalicelib.store", "chalicelib.store.accept"]
