"""Producer clients: who may write which input topics through ``POST /events/{topic}``.

Stored in Redis (``RedisKeys.producer_clients``) by ``tillflow producers``, read by the API.
The secret is kept only as an argon2 hash; a revoked client keeps its record (for audit) with
``revoked_at`` set, and the API refuses its tokens from then on.

>>> c = ProducerClient(client_id="pc-0123456789abcdef", name="pos", topics=["orders"],
...                    secret_hash="$argon2id$x", created_at=datetime(2026, 1, 5, tzinfo=UTC))
>>> c.scopes, c.active
(['events:write:orders'], True)
>>> write_scope("inventory")
'events:write:inventory'
"""

from __future__ import annotations

from datetime import UTC, datetime  # noqa: F401  (UTC is used by the doctest)

from pydantic import AwareDatetime, BaseModel, Field

CLIENT_ID_PATTERN = r"^pc-[a-f0-9]{16}$"
WRITE_SCOPE_PREFIX = "events:write:"


def write_scope(topic: str) -> str:
    """The scope that lets a producer write ``topic`` (its contract name, e.g. ``orders``)."""
    return f"{WRITE_SCOPE_PREFIX}{topic}"


class ProducerClient(BaseModel):
    """One producer client and the input topics it may write."""

    client_id: str = Field(pattern=CLIENT_ID_PATTERN)
    name: str = Field(min_length=1, max_length=128)
    topics: list[str] = Field(min_length=1)
    secret_hash: str
    created_at: AwareDatetime
    revoked_at: AwareDatetime | None = None

    @property
    def scopes(self) -> list[str]:
        return [write_scope(t) for t in self.topics]

    @property
    def active(self) -> bool:
        return self.revoked_at is None
