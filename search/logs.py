"""Log indices: one a day (``<prefix>YYYY.MM.DD``), their template, and their retention (pure
decisions, thin client calls).

The local node is assembled without the Index State Management plugin, so retention is done
here: :func:`prune_log_indices` deletes the daily indices older than ``log_retention_days``
(``tillflow up`` and the daily ``maintain`` job call it). The compose image could use an ISM
policy instead; this keeps one mechanism for both.

>>> from datetime import date
>>> expired_log_indices(["tl-2026.01.01", "tl-2026.01.05", "tl-x", "other-2025.01.01"],
...                     "tl-", date(2026, 1, 8), keep_days=5)
['tl-2026.01.01']
>>> log_index("tl-", date(2026, 3, 4))
'tl-2026.03.04'
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from opensearchpy import OpenSearch

from schemas.settings import Settings

DATE_FORMAT = "%Y.%m.%d"


def log_index(prefix: str, day: date) -> str:
    return f"{prefix}{day.strftime(DATE_FORMAT)}"


def expired_log_indices(
    names: Iterable[str], prefix: str, today: date, keep_days: int
) -> list[str]:
    """The daily indices under ``prefix`` dated before ``today - keep_days`` (others kept)."""
    oldest_kept = today - timedelta(days=keep_days)
    out = []
    for name in sorted(names):
        if not name.startswith(prefix):
            continue
        try:
            day = datetime.strptime(name.removeprefix(prefix), DATE_FORMAT).date()
        except ValueError:
            continue
        if day < oldest_kept:
            out.append(name)
    return out


def log_template(prefix: str) -> dict[str, Any]:
    """Index template of the log indices: one shard, no replica, fields the logs always carry
    typed; any other string is a keyword (no full-text mapping explosion)."""
    return {
        "index_patterns": [f"{prefix}*"],
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "1s"},
            "mappings": {
                "dynamic_templates": [
                    {
                        "strings": {
                            "match_mapping_type": "string",
                            "mapping": {"type": "keyword", "ignore_above": 1024},
                        }
                    }
                ],
                "properties": {
                    "timestamp": {"type": "date"},
                    "shipped_at": {"type": "date"},
                    "event": {
                        "type": "text",
                        "fields": {"raw": {"type": "keyword", "ignore_above": 256}},
                    },
                    "message": {"type": "text"},
                    "level": {"type": "keyword"},
                    "process": {"type": "keyword"},
                    "host": {"type": "keyword"},
                    "correlation_id": {"type": "keyword"},
                    "request_id": {"type": "keyword"},
                },
            },
        },
    }


def ensure_log_template(client: OpenSearch, settings: Settings) -> None:
    """Put the template, named after the prefix (each deployment or test run keeps its own)."""
    name = settings.log_index_prefix.rstrip("-_.") or "logs"
    client.indices.put_index_template(name=name, body=log_template(settings.log_index_prefix))


def prune_log_indices(client: OpenSearch, settings: Settings, today: date) -> list[str]:
    """Delete the expired daily log indices; return their names."""
    names = client.indices.get(index=f"{settings.log_index_prefix}*", expand_wildcards="open")
    expired = expired_log_indices(
        names, settings.log_index_prefix, today, settings.log_retention_days
    )
    for name in expired:
        client.indices.delete(index=name)
    return expired
