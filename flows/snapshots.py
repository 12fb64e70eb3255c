"""Cheap state snapshots (the state pickled once, when the epoch closes) and the format of the
recovery folder that holds them.

Bytewax pickles each changed key's snapshot into the recovery store. The keyed-state adapter's
``snapshot()`` (:mod:`flows.keyed`) returns :func:`pickled` of its state: an immutable blob
whose own pickle is "unpickle this blob", so a recovered step gets the state itself back. One
``pickle.dumps`` per key and snapshot, and the snapshot does not change when the live state
does.

>>> import pickle
>>> from flows.steps import ItemNeighbours
>>> item = ItemNeighbours()
>>> snap = pickled(item)
>>> _ = item.add([("b", 1.0)])  # the snapshot does not change with the state
>>> len(pickle.loads(pickle.dumps(snap)).similarity.co.weights), len(item.similarity.co.weights)
(0, 1)

A snapshot names the classes of the state it holds, so a flow can resume only from snapshots
whose layout it knows. :data:`STATE_FORMAT` is that layout's version, stamped in the recovery
folder when its partitions are created (:func:`stamp_format`); a flow refuses a folder of
another format (:func:`require_format`) instead of failing on, or silently dropping, state it
cannot read. Raise it whenever a keyed state, a snapshot class or a stateful step's id changes.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> stamp_format(folder); format_of(folder) == STATE_FORMAT
True
"""

from __future__ import annotations

import copyreg
import pickle
import sqlite3
from collections import deque
from pathlib import Path
from typing import Any

from infra.errors import StackError

# 1: the layout before the format was recorded (a folder without a stamp but with snapshots).
# 2: one keyed-state adapter (flows.keyed.KeyedSnapshot) for products, shoppers and item
#    neighbours; each emits frozen values.
# 3: a category's pricing state names its category and holds the shop level above its prior
#    (online_models.pooling.CategoryPool.name / .shop, CategoryPrior.base_std).
# 4: values grouped per key and batch: dedupe as one batch step (flows.dedupe.SeenBatches),
#    bronze rows buffered per partition as flows.buffer.Buffered.
# 5: a product's windows sum its four measures in one list of buckets per window
#    (flows.windows.SlidingSums in flows.features.SkuFeatures.windows).
# 6: the shop level of the pricing state counts its reports (online_models.pooling.ShopPrior
#    .version), and a category remembers the count it last took (CategoryPool.shop_seen).
# 7: a product's demand model has a fifth coefficient, the open day's effect
#    (online_models.elasticity.ElasticityModel.day), and a category learns the day-to-day
#    variance of demand (CategoryPool.day_sum / .day_weight).
# 8: a product's demand model keeps its open carts, to tell a web order from a till sale
#    (online_models.elasticity.ElasticityModel._carts).
# 9: a product's demand learner pickles its arrays as one block of doubles
#    (online_models.poisson_glm.PoissonLaplace.__reduce__), which the code of format 8 cannot load.
# 10: a key's snapshot pickles as its state's bytes and its time under one function
#    (flows.keyed.KeyedSnapshot.__reduce__, loaded by flows.keyed._resume), which the code of
#    format 9 cannot load.
# 11: a product's popularity is a log score of its interactions decayed in event time
#    (online_models.popularity), no longer a count decayed per interaction.
# 12: a shopper's state pickles as one flat tuple (flows.steps.ShopperState.__reduce__, loaded
#    by flows.steps._shopper), which the code of format 11 cannot load.
# 13: a bronze buffer's snapshot keeps its rows' Kafka offsets, read again on resume
#    (flows.lake_offsets.KafkaOffsets), instead of the rows.
# 14: a category's state keeps the latest feature row of each product touched since its last
#    row went out, and the time of its last rows (flows.steps.CategoryState.pending, rows_at).
# 15: a category's state holds the products touched since their last row went out with their
#    elasticity priors, not their rows (flows.steps.CategoryState.pending): rows are built when
#    they go out.
# 16: a product's demand learner keeps its odd days' evidence apart as well (the halves,
#    online_models.poisson_glm.PoissonLaplace._odd_precision / _odd_info / _halves, in its
#    block of doubles), a category the halves its products reported (CategoryPrior.halves),
#    and a product's pricer the day's draw of its elasticity (ProductPricer.held_day /
#    held_deviate).
STATE_FORMAT = 16
FORMAT_FILE = "state-format"
UNSTAMPED = 1


class StateFormatMismatch(StackError):
    """The recovery folder holds snapshots of a layout this flow cannot read."""


def _reduce_deque(d: deque[Any]) -> tuple[Any, ...]:
    """What ``deque.__reduce__`` returns, without its call into :func:`copyreg._slotnames`.

    A deque pickles through ``object``'s state lookup, which asks ``copyreg._slotnames`` for
    the type's slot names; that function caches them on the type, but a built-in type takes
    no attribute, so the lookup runs again (in Python, raising and catching an error) for
    every deque, ~5 µs each. Registered in :data:`copyreg.dispatch_table`, the pickle is the
    same bytes; deque subclasses are untouched (the table is looked up by exact type).

    >>> d = deque([1.0, 2.0], maxlen=20)
    >>> pickle.loads(pickle.dumps(d)), _reduce_deque(deque())[:3]
    (deque([1.0, 2.0], maxlen=20), (<class 'collections.deque'>, (), None))
    """
    return deque, () if d.maxlen is None else ((), d.maxlen), None, iter(d)


copyreg.pickle(deque, _reduce_deque)


def _restore(blob: bytes) -> Any:
    return pickle.loads(blob)


class Snapshot:
    """A pickled state; pickling it yields the state itself when loaded."""

    __slots__ = ("blob",)

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return _restore, (self.blob,)


def pickled(state: Any) -> Snapshot:
    """A snapshot of ``state`` as it is now."""
    return Snapshot(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))


def stamp_format(directory: Path) -> None:
    """Record that ``directory``'s snapshots are written in :data:`STATE_FORMAT`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / FORMAT_FILE).write_text(f"{STATE_FORMAT}\n")


def _holds_snapshots(directory: Path) -> bool:
    for part in sorted(directory.glob("part-*.sqlite3")):
        db = sqlite3.connect(f"file:{part}?mode=ro", uri=True)
        try:
            if db.execute("SELECT 1 FROM snaps LIMIT 1").fetchone() is not None:
                return True
        except sqlite3.OperationalError:  # no snaps table yet: nothing written
            continue
        finally:
            db.close()
    return False


def format_of(directory: Path) -> int | None:
    """The state format of ``directory``: its stamp; :data:`UNSTAMPED` for snapshots written
    before formats were stamped; None when it holds no snapshots and no stamp (fresh)."""
    stamp = directory / FORMAT_FILE
    if stamp.exists():
        return int(stamp.read_text().strip())
    if directory.is_dir() and _holds_snapshots(directory):
        return UNSTAMPED
    return None


def require_format(directory: Path) -> None:
    """Stamp a fresh folder; refuse one whose snapshots this flow cannot read."""
    found = format_of(directory)
    if found is None:
        stamp_format(directory)
    elif found != STATE_FORMAT:
        raise StateFormatMismatch(
            f"the recovery folder {directory} holds flow state of format {found}, this flow "
            f"reads format {STATE_FORMAT}: start from fresh state (remove the folder, or "
            "`make clean`), or run the version that wrote it"
        )
