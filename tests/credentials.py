"""Credentials for tests that exercise something else than the credentials themselves.

Producer clients are registered in the real Redis (the API checks them per request); their
tokens, like admin tokens, are signed with the test run's own secret.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from api.producers import create_client
from api.tokens import issue_token
from infra.clients import redis_client
from schemas.producers import write_scope
from schemas.settings import Settings
from schemas.topics import INPUT_TOPICS


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def producer_headers(settings: Settings, topics: list[str] | None = None) -> dict[str, str]:
    """A registered producer client's token for ``topics`` (every input topic by default)."""
    names = topics or [t.name for t in INPUT_TOPICS]
    client = redis_client(settings)
    try:
        created = create_client(client, settings.keys, "test", names, datetime.now(UTC))
    finally:
        client.close()
    token, _ = issue_token(
        settings,
        "producer",
        created.client.client_id,
        [write_scope(t) for t in names],
        now=time.time(),
    )
    return bearer(token)


def admin_headers(settings: Settings, scopes: tuple[str, ...] = ("admin:read",)) -> dict[str, str]:
    token, _ = issue_token(
        settings, "admin", settings.admin_username, list(scopes), now=time.time()
    )
    return bearer(token)
