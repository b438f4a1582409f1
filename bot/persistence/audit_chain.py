"""The audit trail's hash chain: what a row's hash is taken over (pure; the store writes it, bot/persistence/audit.py
checks it).

Every audit row carries `prev_hash`, the hash of the row before it (GENESIS for the first row), and `hash`, the
SHA-256 (hex) of the canonical JSON of its own fields (id, at, event, request id, actor, target, details) and
`prev_hash`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64  # what the first row chains to
CHAIN_FORMAT = 1  # part of every hashed document: a later format can be told apart
HASHED_FIELDS = (
    "id",
    "at",
    "event",
    "request_id",
    "actor_aad_id",
    "actor_name",
    "target_id",
    "target_upn",
    "details",
)


def _timestamp(value: Any) -> str:
    if isinstance(value, str):  # SQLite read without column types
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"an audit time must be a datetime, not {type(value).__name__}")
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def canonical(fields: Mapping[str, Any], prev_hash: str) -> bytes:
    """The bytes a row's hash is taken over: its fields and the previous hash as sorted, compact JSON (UTF-8)."""
    document = {name: fields[name] for name in HASHED_FIELDS}
    document["at"] = _timestamp(fields["at"])
    document["prev_hash"] = prev_hash
    document["format"] = CHAIN_FORMAT
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def row_hash(fields: Mapping[str, Any], prev_hash: str) -> str:
    return hashlib.sha256(canonical(fields, prev_hash)).hexdigest()
