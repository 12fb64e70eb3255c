"""From the deduplicated events of a batch to the inputs of the per-category and per-shopper
steps, grouped by their key, in one Python step.

What dedupe let through (:class:`flows.dedupe.Deduped`, one per dedupe key) leaves as one
:class:`Fanned` value: each category's product signals as one list, each shopper's signals as
one list, in the order the events came, and the batch's counts (repeats dropped, events naming
a product outside the catalogue). The keyed states apply each key's list at once
(:class:`flows.keyed.KeyedState` with ``grouped=True``).

>>> from flows.dedupe import Deduped
>>> from flows.records import SkuSignal, UserSignal
>>> view = Routed("e1", 5.0, [("A", ("A", SkuSignal("view", 5.0)))],
...               ("u", ("u", UserSignal("view", 5.0, "s", ("A",)))))
>>> odd = Routed("e2", 6.0, [("Z", ("Z", SkuSignal("stock", 6.0, 3)))], None)
>>> (out,) = FanOut({"A": "tea"})([("k1", Deduped([view], 2)), ("k2", Deduped([odd], 0))])
>>> [(key, len(values)) for key, (_, values) in out.categories]
[('category:tea', 1), ('sku:Z', 1)]
>>> [(key, [s.kind for s in values]) for key, (_, values) in out.shoppers], out.stats
([('u', ['view'])], [('duplicates', 2), ('unknown_products', 1)])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from flows.dedupe import Deduped
from flows.records import UserSignal
from flows.steps import Routed, category_key

Stat = tuple[str, int]  # (counter name, increment)
Grouped = tuple[str, tuple[str, list[Any]]]  # (key, (key, values)): the state is made from key


class Fanned(NamedTuple):
    """One batch's unique events, per category and per shopper."""

    categories: list[Grouped]  # (category key, (key, [(sku, SkuSignal), ...]))
    shoppers: list[tuple[str, tuple[str, list[UserSignal]]]]  # (user, (user, [UserSignal]))
    stats: list[Stat]


def _unobserved(_step_id: str, _item: Routed) -> None:
    return None


class FanOut:
    """The ``flat_map_batch`` mapper after dedupe: its outputs in, one :class:`Fanned` out."""

    def __init__(
        self,
        categories: dict[str, str],
        on_unique: Callable[[str, Routed], None] = _unobserved,
        step_id: str = "fan-out",
    ) -> None:
        self.categories = categories
        self.on_unique = on_unique
        self.step_id = step_id

    def __call__(self, batch: Sequence[tuple[str, Deduped[Routed]]]) -> list[Fanned]:
        categories = self.categories
        by_category: dict[str, list[Any]] = {}
        by_shopper: dict[str, list[UserSignal]] = {}
        repeats = unknown = 0
        for _key, deduped in batch:
            repeats += deduped.repeats
            for routed in deduped.unique:
                self.on_unique(self.step_id, routed)
                known = True
                for sku, value in routed.sku:
                    if sku not in categories:
                        known = False
                    by_category.setdefault(category_key(sku, categories), []).append(value)
                unknown += not known
                if routed.user is not None:
                    user, (_, signal) = routed.user
                    by_shopper.setdefault(user, []).append(signal)
        if not by_category and not by_shopper and not repeats:
            return []
        stats = (("duplicates", repeats), ("unknown_products", unknown))
        return [
            Fanned(
                [(key, (key, values)) for key, values in by_category.items()],
                [(user, (user, signals)) for user, signals in by_shopper.items()],
                [(name, n) for name, n in stats if n],
            )
        ]
