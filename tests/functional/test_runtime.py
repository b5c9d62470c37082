"""One reset forgets all the process built: the CLI, the local stack and tests switch stacks with it."""

from __future__ import annotations

from typing import Any


def test_one_reset_forgets_every_client_binding_setting_and_cache(harness: Any, monkeypatch: Any) -> None:
    from chalicelib import aws, runtime, store
    from chalicelib.inbound import partners
    from chalicelib.outbound import deliver
    from chalicelib.settings import get_settings
    from chalicelib.store.models import ALL_MODELS

    settings, ddb = get_settings(), aws.client("dynamodb")
    assert partners.get("dealer-a") is not None and "dealer-a" in partners._cache
    store.bind()
    deliver._guarded = deliver._build_guard()  # the idempotency layer, around the current client
    assert deliver._guarded is not None

    monkeypatch.setenv("CLM_TABLE_NAME", "another-table")
    runtime.reset()

    assert get_settings() is not settings and get_settings().table_name == "another-table"
    assert aws.client("dynamodb") is not ddb
    assert partners._cache == {} and partners._key_cache == {}
    assert deliver._guarded is None
    store.bind()
    assert {model.Meta.table_name for model in ALL_MODELS} == {"another-table"}


def test_without_a_reset_the_process_keeps_what_it_built(harness: Any, monkeypatch: Any) -> None:
    from chalicelib import aws
    from chalicelib.settings import get_settings

    settings, ddb = get_settings(), aws.client("dynamodb")
    monkeypatch.setenv("CLM_TABLE_NAME", "another-table")
    assert get_settings() is settings and aws.client("dynamodb") is ddb
