"""The stack errors, under the launcher package's name for code that has not moved to
:mod:`infra.errors` (where they are defined)."""

from infra.errors import ServiceUnavailable, StackError

__all__ = ["ServiceUnavailable", "StackError"]
