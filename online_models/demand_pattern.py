"""When demand happens: the hour-of-day × weekday pattern of a category, learned online.

A price that held from midnight to six sold less than one that held from noon to six, whatever
the price. The pattern turns clock time into *exposure*: hours weighted by how busy they are
(1.0 = an average hour of the week), so units per exposure hour compare across times of day.

The pattern is the product of an hour-of-day profile and a weekday profile, each the rate of
units sold in its slot (units over the time observed in that slot, so a week seen from a
Wednesday is not biased toward Wednesdays), shrunk toward the overall rate by pseudo-counts
while a slot has seen little.

>>> pattern = DemandPattern()
>>> t0 = 4 * 86_400.0  # a Monday, 00:00 UTC
>>> for day in range(14):
...     for hour in range(24):
...         t = t0 + day * 86_400 + hour * 3600
...         pattern.observe(t)
...         pattern.add_units(t, 30 if 9 <= hour < 21 else 10)
>>> pattern.observe(t0 + 14 * 86_400)
>>> round(pattern.factor(t0 + 12 * 3600), 1), round(pattern.factor(t0 + 3 * 3600), 1)
(1.5, 0.5)
>>> round(pattern.exposure_hours(t0, t0 + 86_400), 1)
24.0
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY = 86_400.0
HOUR = 3_600.0
# A slot's own rate is shrunk toward the overall rate as if it had also been observed this long
# at that rate: a weekday is one day a week, and one day's demand is mostly that day's noise
# and prices until a few weeks were seen.
HOUR_PSEUDO_S = HOUR / 2  # half a day's worth of one hour slot
WARM_AFTER_S = 2 * DAY  # the hour profile is usable once this much time was observed
WEEKDAY_PSEUDO_S = 3 * DAY  # three weeks' worth of one weekday
WEEKDAY_PSEUDO_VIEWS = 2_000.0  # views per weekday before its own conversion rate dominates
MAX_GAP_S = 7 * DAY  # a longer silence is an outage of the feed, not a quiet week
REFRESH_EVERY = 16  # recompute the profiles after this many additions


def hour_of(t: float) -> int:
    return int(t % DAY // HOUR)


def weekday_of(t: float) -> int:
    """Monday = 0 (1970-01-01 was a Thursday)."""
    return (int(t // DAY) + 3) % 7


def _profile(units: list[float], seconds: list[float], pseudo_s: float) -> list[float]:
    """Rate per slot, shrunk toward the overall rate, normalised to mean 1."""
    total_units, total_s = sum(units), sum(seconds)
    if total_units <= 0 or total_s <= 0:
        return [1.0] * len(units)
    overall = total_units / total_s
    rates = [(u + overall * pseudo_s) / (s + pseudo_s) for u, s in zip(units, seconds, strict=True)]
    mean = sum(rates) / len(rates)
    return [r / mean for r in rates]


@dataclass
class DemandPattern:
    """Units per hour by hour of day and weekday, and the exposure they imply."""

    hour_units: list[float] = field(default_factory=lambda: [0.0] * 24)
    hour_seconds: list[float] = field(default_factory=lambda: [0.0] * 24)
    weekday_units: list[float] = field(default_factory=lambda: [0.0] * 7)
    weekday_seconds: list[float] = field(default_factory=lambda: [0.0] * 7)
    clock: float | None = None
    _hours: list[float] = field(default_factory=lambda: [1.0] * 24)
    _weekdays: list[float] = field(default_factory=lambda: [1.0] * 7)
    _pending: int = 0

    def observe(self, t: float) -> None:
        """The stream reached ``t``: the time since the last event was observed, slot by slot."""
        if self.clock is None or t - self.clock > MAX_GAP_S:
            self.clock = max(self.clock or t, t)
            return
        start = self.clock
        if t <= start:
            return
        self.clock = t
        while start < t:
            end = min(t, (start // HOUR + 1) * HOUR)
            self.hour_seconds[hour_of(start)] += end - start
            self.weekday_seconds[weekday_of(start)] += end - start
            start = end

    @property
    def warm(self) -> bool:
        """Enough time observed for the hour-of-day profile to mean something."""
        return sum(self.hour_seconds) >= WARM_AFTER_S

    def add_units(self, t: float, units: float) -> None:
        self.hour_units[hour_of(t)] += units
        self.weekday_units[weekday_of(t)] += units
        self._pending += 1

    def _refresh(self) -> None:
        if self._pending >= REFRESH_EVERY:
            self._hours = _profile(self.hour_units, self.hour_seconds, HOUR_PSEUDO_S)
            self._weekdays = _profile(self.weekday_units, self.weekday_seconds, WEEKDAY_PSEUDO_S)
            self._pending = 0

    def factor(self, t: float) -> float:
        """How busy the hour holding ``t`` is, relative to an average hour of the week."""
        self._refresh()
        return self._hours[hour_of(t)] * self._weekdays[weekday_of(t)]

    def exposure_hours(self, start: float, end: float) -> float:
        """Busy-weighted hours between ``start`` and ``end``."""
        self._refresh()
        total = 0.0
        while start < end:
            stop = min(end, (start // HOUR + 1) * HOUR)
            total += (
                (stop - start) * self._hours[hour_of(start)] * self._weekdays[weekday_of(start)]
            )
            start = stop
        return total / HOUR


@dataclass
class WeekdayConversion:
    """Conversions per view by weekday (mean 1): the weekly rhythm of buying, not browsing."""

    views: list[float] = field(default_factory=lambda: [0.0] * 7)
    units: list[float] = field(default_factory=lambda: [0.0] * 7)
    _factors: list[float] = field(default_factory=lambda: [1.0] * 7)
    _pending: int = 0

    def add(self, t: float, views: float, units: float) -> None:
        day = weekday_of(t)
        self.views[day] += views
        self.units[day] += units
        self._pending += 1

    def factor(self, t: float) -> float:
        if self._pending >= REFRESH_EVERY:
            total_v, total_u = sum(self.views), sum(self.units)
            if total_v > 0 and total_u > 0:
                overall = total_u / total_v
                rates = [
                    (u + WEEKDAY_PSEUDO_VIEWS * overall) / (v + WEEKDAY_PSEUDO_VIEWS)
                    for u, v in zip(self.units, self.views, strict=True)
                ]
                mean = sum(rates) / 7
                self._factors = [r / mean for r in rates]
            self._pending = 0
        return self._factors[weekday_of(t)]
