"""One running instance per job, across processes and machines: a Redis lock with a token.

``SET key token NX EX ttl`` takes the lock; only the holder's token releases it (a Lua
compare-and-delete), and a crashed holder's lock expires after ``TILLFLOW_JOB_LOCK_TTL_S``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from infra.clients import SyncRedis
from schemas.keys import RedisKeys

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class JobBusy(Exception):
    """Another process is running the job."""


@contextmanager
def job_lock(client: SyncRedis, keys: RedisKeys, job: str, ttl_s: int) -> Iterator[str]:
    """Hold ``job``'s lock for the ``with`` block; ``JobBusy`` if someone else holds it."""
    token = uuid.uuid4().hex
    if not client.set(keys.job_lock(job), token, nx=True, ex=ttl_s):
        raise JobBusy(f"job {job!r} is already running in another process")
    try:
        yield token
    finally:
        client.eval(_RELEASE, 1, keys.job_lock(job), token)
