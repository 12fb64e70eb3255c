"""The stack errors of :mod:`infra.errors`, also importable from the launcher package (the
search service, its command and its tests import them from here)."""

from infra.errors import ServiceUnavailable, StackError

__all__ = ["ServiceUnavailable", "StackError"]
