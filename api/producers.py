"""The producer client store: create, list and revoke (``tillflow producers``, synchronous) and
the API's per-request check that a token's client still exists and is not revoked.

The per-request check reads Redis at most once per ``TILLFLOW_PRODUCER_CHECK_S`` per client
(the answer is cached that long), so a revocation reaches every API process within that time;
while Redis is unavailable the last answer stands.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from api.cache import LastKnown, read_through
from api.passwords import hash_secret
from api.redis_gate import RedisGate
from infra.clients import AsyncRedis, SyncRedis
from schemas.keys import RedisKeys
from schemas.producers import ProducerClient
from schemas.topics import input_topic


class UnknownTopic(ValueError):
    """A producer client was asked for a topic that is not an input topic."""


@dataclass(frozen=True)
class NewClient:
    """A client just created, with its secret: shown once, never stored in clear."""

    client: ProducerClient
    secret: str


def create_client(
    client: SyncRedis, keys: RedisKeys, name: str, topics: list[str], now: datetime
) -> NewClient:
    """Register a producer client allowed to write ``topics``; its secret is returned once."""
    unknown = [t for t in topics if input_topic(t) is None]
    if unknown or not topics:
        raise UnknownTopic(f"not input topics: {', '.join(unknown) or '(none given)'}")
    secret = secrets.token_urlsafe(32)
    record = ProducerClient(
        client_id=f"pc-{secrets.token_hex(8)}",
        name=name,
        topics=sorted(set(topics)),
        secret_hash=hash_secret(secret),
        created_at=now.astimezone(UTC),
    )
    client.hset(keys.producer_clients, record.client_id, record.model_dump_json())
    return NewClient(record, secret)


def list_clients(client: SyncRedis, keys: RedisKeys) -> list[ProducerClient]:
    """Every producer client, revoked ones included, oldest first."""
    raw = client.hvals(keys.producer_clients)
    return sorted(
        (ProducerClient.model_validate_json(v) for v in raw),  # type: ignore[union-attr]
        key=lambda c: c.created_at,
    )


def revoke_client(
    client: SyncRedis, keys: RedisKeys, client_id: str, now: datetime
) -> ProducerClient | None:
    """Mark the client revoked (its tokens are refused from then on); None if unknown."""
    raw = client.hget(keys.producer_clients, client_id)
    if raw is None:
        return None
    record = ProducerClient.model_validate_json(raw)  # type: ignore[arg-type]
    if record.revoked_at is None:
        record = record.model_copy(update={"revoked_at": now.astimezone(UTC)})
        client.hset(keys.producer_clients, client_id, record.model_dump_json())
    return record


async def find_client(
    gate: RedisGate, keys: RedisKeys, cache: LastKnown[ProducerClient], client_id: str
) -> ProducerClient | None:
    """The client's record (cached for TILLFLOW_PRODUCER_CHECK_S), None when unknown.

    Raises ServiceUnavailable when Redis is away and the client was never looked up."""

    async def read(client: AsyncRedis, missing: list[str]) -> dict[str, ProducerClient]:
        raw = await client.hget(keys.producer_clients, missing[0])  # type: ignore[misc]
        return {} if raw is None else {missing[0]: ProducerClient.model_validate_json(raw)}

    found = await read_through(gate, cache, [client_id], read)
    if found.unavailable and found.error is not None:
        raise found.error
    return found.values.get(client_id)
