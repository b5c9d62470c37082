"""Partners as the request path sees them: decrypted keys, cached per warm Lambda.

A webhook must cost at most one conditional write, so partner look-ups are cached. Only partners
that exist are cached: an id or API key that was tried before its partner existed works on the
very next request after `clm partner add`. A signature that fails against a cached partner is
checked once against a fresh read, so a rotated secret works at once; the secrets are decrypted
again only when they changed (a stream of bad signatures costs reads, never KMS calls).
"""

from __future__ import annotations

import hashlib
import re
import secrets as pysecrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from chalicelib import clock, runtime
from chalicelib.inbound import signatures, vault
from chalicelib.store import accept

KINDS = ("dealer", "finance", "hq")
ROTATION_GRACE = timedelta(hours=24)
CACHE_SECONDS = 60.0
PARTNER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Partner:
    partner_id: str
    kind: str
    name: str | None
    keys: tuple[bytes, ...]
    sealed: tuple[str, ...] = ()  # the stored (encrypted) secrets the keys came from


@dataclass(frozen=True)
class Credentials:
    partner_id: str
    kind: str
    webhook_secret: str
    api_key: str


_lock = threading.Lock()
_cache: dict[str, tuple[float, Partner]] = {}
_key_cache: dict[str, tuple[float, Partner]] = {}


def _load(partner_id: str, known: Partner | None) -> Partner | None:
    """Read the partner; decrypt its secrets unless they are the ones `known` already holds."""
    stored = accept.get_partner(partner_id)
    if stored is None:
        return None
    now = clock.now()
    active = tuple(s.sealed for s in stored.secrets if s.retires_at is None or s.retires_at > now)
    if known is not None and known.sealed == active:
        keys = known.keys
    else:
        keys = tuple(signatures.secret_key(vault.unseal(stored.partner_id, sealed)) for sealed in active)
    return Partner(stored.partner_id, stored.kind, stored.name, keys, active)


def _remember(cache: dict[str, tuple[float, Partner]], key: str, partner: Partner) -> None:
    with _lock:
        if len(cache) > 10_000:
            cache.clear()
        cache[key] = (time.monotonic(), partner)


def get(partner_id: str, *, refresh: bool = False) -> Partner | None:
    """The partner, from cache when fresh; `refresh` reads it again. Unknown ids are never cached."""
    cached = _cache.get(partner_id)
    if cached is not None and not refresh and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    partner = _load(partner_id, cached[1] if cached is not None else None)
    if partner is None:
        with _lock:
            _cache.pop(partner_id, None)
        return None
    _remember(_cache, partner_id, partner)
    return partner


@runtime.keeps_state
def forget() -> None:
    """Drop every cached partner (tests; CLI after a change)."""
    with _lock:
        _cache.clear()
        _key_cache.clear()


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def for_api_key(api_key: str) -> Partner | None:
    """The partner an API key belongs to; unknown keys are never cached (a new key works at once)."""
    digest = hash_api_key(api_key)
    cached = _key_cache.get(digest)
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    from chalicelib.store import partners as store

    partner_id = store.partner_id_for_api_key(digest)
    partner = get(partner_id) if partner_id else None
    if partner is not None:
        _remember(_key_cache, digest, partner)
    return partner


def new_api_key() -> str:
    return f"clm_{pysecrets.token_urlsafe(32)}"


def add(
    partner_id: str,
    kind: str,
    name: str | None = None,
    *,
    webhook_secret: str | None = None,
    api_key: str | None = None,
) -> Credentials:
    """Register a partner with a webhook secret and API key (shown once, stored sealed/hashed).

    Fresh credentials unless given (the local stack re-registers its demo partners with the
    credentials of its previous run).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    if not PARTNER_ID.fullmatch(partner_id):
        raise ValueError("a partner id is 1-64 of a-z, A-Z, 0-9, '-', '_'")
    now = clock.now()
    secret = webhook_secret or signatures.new_secret()
    signatures.secret_key(secret)
    from chalicelib.store import partners as store

    store.create_partner(partner_id, kind, name, vault.seal(partner_id, secret), now)
    api_key = api_key or new_api_key()
    store.put_api_key(hash_api_key(api_key), partner_id, now)
    return Credentials(partner_id, kind, secret, api_key)


def rotate_secret(partner_id: str) -> str:
    """Add a new secret; every older one stays valid for 24 h, then retires."""
    from chalicelib.store import partners as store

    stored = accept.get_partner(partner_id)
    if stored is None:
        raise LookupError(partner_id)
    now = clock.now()
    kept = [
        accept.StoredSecret(s.sealed, s.created_at, s.retires_at or now + ROTATION_GRACE)
        for s in stored.secrets
        if s.retires_at is None or s.retires_at > now
    ]
    secret = signatures.new_secret()
    kept.append(accept.StoredSecret(vault.seal(partner_id, secret), now, None))
    store.replace_secrets(partner_id, kept)
    forget()
    return secret
