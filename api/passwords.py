"""Secrets at rest: argon2 hashes (pwdlib) of admin passwords and producer client secrets.

Hashing is slow on purpose (tens of milliseconds); call these off the event loop.

>>> stored = hash_secret("correct horse")
>>> stored.startswith("$argon2id$"), verify_secret("correct horse", stored)
(True, True)
>>> verify_secret("wrong", stored), verify_secret("x", "not a hash")
(False, False)
"""

from __future__ import annotations

from functools import cache

from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher

# OWASP's argon2id parameters (19 MiB, 2 passes, 1 lane): a few tens of milliseconds on one
# core, so a login cannot be turned into a denial of service of a small API process.
MEMORY_KIB = 19_456
PASSES = 2


@cache
def _hasher() -> PasswordHash:
    return PasswordHash((Argon2Hasher(time_cost=PASSES, memory_cost=MEMORY_KIB, parallelism=1),))


def hash_secret(secret: str) -> str:
    """An argon2id hash of ``secret`` with a random salt (PHC string format)."""
    return _hasher().hash(secret)


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches ``stored``; False for anything that is not an argon2 hash."""
    try:
        return bool(_hasher().verify(secret, stored))
    except (UnknownHashError, ValueError):
        return False


def is_hash(stored: str) -> bool:
    """Whether ``stored`` looks like a hash this module can verify.

    >>> is_hash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"), is_hash("plain")
    (True, False)
    """
    return stored.startswith("$argon2")
