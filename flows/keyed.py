"""The keyed-state adapter of every stateful step: a key's state, its batches, its expiry and
its snapshots.

Bytewax hands a keyed step its values a batch at a time, grouped by key
(:func:`bytewax.operators.stateful_batch`). Each key's state is created from the key on its
first value (the value carries its key, ``(key, value)``); ``apply`` takes the state and the
key's values of one batch, updates the state and returns what the step emits. A step thereby
emits per value only what must travel one by one (price changes, item pairs) and, once per key
and batch, the frozen values of what the batch changed (feature rows, a shopper's lists,
:mod:`flows.records`): however many events a batch holds for a key, its values are computed
once, and no live state leaves the step.

A batch mixes what the upstream steps (themselves keyed by other things) emitted in their key
order; the values of one key keep their order. With ``when`` (a value's event time) each batch
is applied in event-time order, so a state that counts time between its events does not see
it run backwards within a batch (the Kafka input hands over batches in timestamp order,
:mod:`flows.kafka_in`).

With ``grouped`` each value is a list of values (an upstream step grouped a batch per key,
:mod:`flows.fanout`): the lists are applied as one batch, in their order.

With ``idle_s`` the state is discarded ``idle_s`` after its last batch (wall clock, Bytewax's
notification timer): a shopper who never comes back costs memory for ``idle_s``, not forever;
one who comes back later starts afresh. Without it the state is kept as long as the flow runs.

With ``held_until`` and ``release`` a state may hold output back (a category's feature rows,
at most one per interval of wall time: :meth:`flows.steps.CategoryState.rows`):
``held_until`` tells when what it holds is due (None: nothing held), and the state is woken
then, though no value comes, to ``release`` it; what is still held when the input ends is
released too (``--once``), and a snapshot keeps it with the state (Bytewax tells a step
nothing at an epoch's end), so a recovered key releases it on its first wake-up.

Snapshots carry the state pickled once (:mod:`flows.snapshots`) and the time of its last
batch, so a recovered key keeps its deadline.

>>> import pickle
>>> clock = iter([0.0, 10.0, 20.0, 80.0]).__next__
>>> def append(state, values):
...     state.extend(values)
...     return [len(state)]
>>> logic = KeyedState(lambda key: [key], append, idle_s=60, clock=clock, when=len)
>>> logic.on_batch([("a", "xx"), ("a", "y")]), logic.on_batch([("a", "z")])
(([3], False), ([4], False))
>>> logic.state
['a', 'y', 'xx', 'z']
>>> logic.notify_at().timestamp(), logic.on_notify()
(80.0, ((), True))
>>> resumed = KeyedState(list, append, pickle.loads(pickle.dumps(logic.snapshot())))
>>> resumed.state, resumed.notify_at() is None
(['a', 'y', 'xx', 'z'], True)
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from bytewax.operators import StatefulBatchLogic

from flows.snapshots import Snapshot, pickled

S = TypeVar("S")  # the state
V = TypeVar("V")  # what a value carries besides its key
W = TypeVar("W")  # what the step emits


@dataclass(frozen=True, slots=True)
class KeyedSnapshot:
    state: Any  # the state, pickled once (flows.snapshots); loads as the state itself
    active_at: float  # wall clock (epoch seconds) of the key's latest batch

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Bytewax pickles every key's snapshot at each epoch's end, while the worker waits:
        # a pickled state goes as its bytes and the time under one global, ~3 µs a key,
        # where the dataclass's own pickle (its fields listed in Python by dataclasses'
        # __getstate__, then the Snapshot's reduce) took ~8.
        if isinstance(self.state, Snapshot):
            return _resume, (self.state.blob, self.active_at)
        return KeyedSnapshot, (self.state, self.active_at)


def _resume(blob: bytes, active_at: float) -> KeyedSnapshot:
    """A key's snapshot as Bytewax loads it: the state itself and the time."""
    return KeyedSnapshot(pickle.loads(blob), active_at)


class KeyedState(StatefulBatchLogic[tuple[str, Any], W, KeyedSnapshot], Generic[S, V, W]):
    """Applies each batch of ``(key, value)`` to the key's state (in the order of ``when``) and
    emits what ``apply`` returns; forgets the state ``idle_s`` after its last batch."""

    def __init__(
        self,
        new: Callable[[str], S],
        apply: Callable[[S, list[V]], Iterable[W]],
        resume: KeyedSnapshot | None = None,
        *,
        idle_s: float | None = None,
        clock: Callable[[], float] = time.time,
        when: Callable[[V], float] | None = None,
        grouped: bool = False,
        held_until: Callable[[S], float | None] | None = None,
        release: Callable[[S, float], Iterable[W]] = lambda _state, _now: (),
    ) -> None:
        self.new = new
        self.grouped = grouped
        self.apply = apply
        self.idle_s = idle_s
        self.clock = clock
        self.when = when
        self.held_until = held_until
        self.release = release
        self.state: S | None = resume.state if resume is not None else None
        self.active_at = resume.active_at if resume is not None else clock()

    def on_batch(self, values: list[tuple[str, Any]]) -> tuple[Iterable[W], bool]:
        if self.state is None:
            self.state = self.new(values[0][0])
        self.active_at = self.clock()
        if self.grouped:  # each value a list of the key's values (flows.fanout)
            items = [v for _, group in values for v in group]
        else:
            items = [v for _, v in values]
        if self.when is not None and len(items) > 1:
            items.sort(key=self.when)  # stable: equal times keep their order
        return self.apply(self.state, items), StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        at = None if self.idle_s is None else self.active_at + self.idle_s
        if self.held_until is not None and self.state is not None:
            due = self.held_until(self.state)
            if due is not None and (at is None or due < at):
                at = due
        return None if at is None else datetime.fromtimestamp(at, UTC)

    def on_notify(self) -> tuple[Iterable[W], bool]:
        now = self.clock()
        idle = self.idle_s is not None and now >= self.active_at + self.idle_s
        out = self._released(now, everything=idle)
        return out, StatefulBatchLogic.DISCARD if idle else StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[W], bool]:
        return self._released(self.clock(), everything=True), StatefulBatchLogic.RETAIN

    def _released(self, now: float, everything: bool) -> Iterable[W]:
        """What the state holds and is due at ``now`` (``everything``: all it holds)."""
        state = self.state
        if self.held_until is None or state is None:
            return ()
        due = self.held_until(state)
        if due is None or (due > now and not everything):
            return ()
        return self.release(state, now)

    def snapshot(self) -> KeyedSnapshot:
        return KeyedSnapshot(pickled(self.state), self.active_at)
