"""The event-time policy: which event times tillflow accepts, for the API and the flows alike.

- The contract accepts timezone-aware event times from :data:`EARLIEST` to :data:`LATEST`
  (:func:`check_range`): anything else is not a plausible shop event, and the bounds keep every
  conversion (to UTC, to epoch seconds, to a date partition) inside ``datetime``'s range.
- An event later than *now + skew* is refused as "in the future" (:class:`EventTimePolicy`,
  skew ``TILLFLOW_EVENT_TIME_SKEW_S``, 5 minutes by default): such an event would move every
  latest-wins value and every window of its key ahead of the real events that follow.
  *Now* is the wall clock; for a message read from Kafka it is the earlier of the wall clock
  and the message's timestamp, so a message is judged the same way when it is read again
  (a restart, a replay of the topic) as when it was first read.
- Older events are accepted (backfills, ``tillflow replay`` of history): the lake keeps them;
  latest-wins state only moves forward in event time and windows end at the latest event time
  seen, so an old event can neither move state backwards nor freeze a window.

>>> policy = EventTimePolicy(skew_s=300, clock=lambda: 1_000_000.0)
>>> policy.problem(1_000_299.0) is None, policy.problem(0.0) is None
(True, True)
>>> policy.problem(1_000_301.0)
'in the future: 301 s after now (the clock skew allowed is 300 s)'
>>> policy.problem(1_000_100.0, received=999_000.0)  # judged against the Kafka timestamp
'in the future: 1100 s after now (the clock skew allowed is 300 s)'
>>> check_range(datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))))
Traceback (most recent call last):
...
ValueError: event time must lie between 2000-01-01T00:00:00+00:00 and 2100-01-01T00:00:00+00:00
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone  # noqa: F401  (doctest)

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
DEFAULT_SKEW_S = 300.0
FUTURE = "in the future"


def check_range(value: datetime) -> datetime:
    """``value`` if it lies within the contract's range; ``ValueError`` otherwise.

    Aware datetimes compare without conversion, so this is safe for any offset and year
    (converting year 1 at +01:00 to UTC overflows). A year strictly inside the range is
    inside it at any offset (offsets are under a day), and is accepted without the
    comparison, which asks the value's ``tzinfo`` (pydantic's own class) for its offset
    at each bound: ~5 µs an event, against ~0.5 µs for the year test.

    >>> from datetime import timedelta, timezone
    >>> check_range(datetime(2026, 1, 5, tzinfo=UTC)).year
    2026
    >>> check_range(datetime(2099, 12, 31, 23, 0, tzinfo=timezone(-timedelta(hours=2))))
    Traceback (most recent call last):
    ValueError: event time must lie between 2000-01-01T00:00:00+00:00 and 2100-01-01T00:00:00+00:00
    """
    if EARLIEST.year < value.year < LATEST.year - 1:
        return value
    if not EARLIEST <= value <= LATEST:
        raise ValueError(
            f"event time must lie between {EARLIEST.isoformat()} and {LATEST.isoformat()}"
        )
    return value


@dataclass(frozen=True, slots=True)
class EventTimePolicy:
    """Refuses events later than now + ``skew_s``; ``clock`` gives now in epoch seconds."""

    skew_s: float = DEFAULT_SKEW_S
    clock: Callable[[], float] = time.time

    def problem(self, t: float, received: float | None = None) -> str | None:
        """Why an event at epoch seconds ``t`` is refused, or None when it is accepted.

        ``received`` is when the message reached Kafka (its timestamp), if known.
        """
        now = self.clock()
        if received is not None and received < now:
            now = received
        ahead = t - now
        if ahead <= self.skew_s:
            return None
        return f"{FUTURE}: {ahead:.0f} s after now (the clock skew allowed is {self.skew_s:.0f} s)"
