"""The flow's first steps work on groups (per key and input batch): whatever the batch
boundaries, each keyed step receives the values the message-by-message path gave it, and the
bronze buffer holds no row longer than its wait."""

from __future__ import annotations

import pickle
import random
from collections import Counter, defaultdict
from typing import Any

import bytewax.operators as op
import orjson
import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main

from flows.buffer import Buffered, RowBuffer
from flows.dedupe import Deduped, Item, SeenBatches, SeenIds, dedupe_key
from flows.fanout import FanOut
from flows.ingest import Ingest, Message
from flows.keyed import KeyedState
from flows.parse import parse_message
from flows.records import Accepted, LakeRow, Rejected, SkuSignal
from flows.steps import CategoryState, Routed, category_key
from schemas.catalogue import CatalogueItem
from schemas.event_time import EventTimePolicy
from schemas.topics import INPUT_TOPICS
from simulator.config import ShopConfig
from simulator.shop import Shop

PREFIX = "t."
TOPICS = {f"{PREFIX}{t.name}": t for t in INPUT_TOPICS}
POLICY = EventTimePolicy()


def _messages(n: int, seed: int) -> list[Message]:
    """Simulator events over three partitions, with repeats and a few invalid messages."""
    rng = random.Random(seed)
    shop = Shop(ShopConfig(seed=seed))
    raw: list[tuple[str, bytes | None, bytes]] = [
        (e.topic.name, e.key.encode(), orjson.dumps(e.payload))
        for _, e in zip(range(n), shop.events(), strict=False)
    ]
    raw += [rng.choice(raw) for _ in range(n // 10)]  # re-sent events
    raw += [("orders", b"k", b"{"), ("inventory", None, b'{"sku": 1}')]
    rng.shuffle(raw)
    offsets: Counter[tuple[str, int]] = Counter()
    out: list[Message] = []
    for topic, key, value in raw:
        partition = rng.randrange(3)
        offset = offsets[(topic, partition)]
        offsets[(topic, partition)] += 1
        out.append(
            KafkaSourceMessage(
                key, value, topic=f"{PREFIX}{topic}", partition=partition, offset=offset
            )
        )
    return out


def _batches(items: list[Any], rng: random.Random) -> list[list[Any]]:
    out, at = [], 0
    while at < len(items):
        size = rng.choice([1, 2, 7, 50, 300])
        out.append(items[at : at + size])
        at += size
    return out


def _one_by_one(
    messages: list[Message], categories: dict[str, str]
) -> tuple[dict[str, list[LakeRow]], dict[str, Counter[Any]], dict[str, Counter[Any]], int]:
    """What the message-by-message steps made: bronze rows per partition, signals per
    category key and per shopper (as multisets: each key's state sorts them by event time),
    and the repeats dropped."""
    lake: dict[str, list[LakeRow]] = defaultdict(list)
    sku: dict[str, Counter[Any]] = defaultdict(Counter)
    user: dict[str, Counter[Any]] = defaultdict(Counter)
    seen: dict[str, SeenIds[Routed]] = {}
    repeats = 0
    for m in messages:
        rec = parse_message(
            TOPICS, m.topic or "", m.partition or 0, m.offset or 0, m.key, m.value, policy=POLICY
        )
        if not isinstance(rec, Accepted):
            continue
        lake[f"{rec.topic}:{rec.partition}"].append(LakeRow.of(rec))
        routed = Routed.of(rec)
        key = dedupe_key(routed.event_id, routed.t)
        (first,), _ = seen.setdefault(key, SeenIds(3_600.0)).on_item(routed)
        if first is None:
            repeats += 1
            continue
        for name, value in first.sku:
            sku[category_key(name, categories)][value] += 1
        if first.user is not None:
            user[first.user[0]][first.user[1][1]] += 1
    return lake, sku, user, repeats


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_grouped_steps_hand_each_key_what_the_message_by_message_steps_did(seed: int) -> None:
    rng = random.Random(seed)
    messages = _messages(1_500, seed)
    categories = {item.sku: item.category for item in Shop(ShopConfig(seed=seed)).catalogue()}
    ingest, fan_out = Ingest(TOPICS, POLICY), FanOut(categories)
    dedupe: dict[str, SeenBatches[Routed]] = {}
    lake: dict[str, list[LakeRow]] = defaultdict(list)
    sku: dict[str, Counter[Any]] = defaultdict(Counter)
    user: dict[str, Counter[Any]] = defaultdict(Counter)
    counts: Counter[str] = Counter()
    rejected: list[Rejected] = []
    for batch in _batches(messages, rng):
        for ingested in ingest(batch):
            rejected.extend(ingested.rejected)
            for key, rows in ingested.lake:
                lake[key].extend(rows)
            deduped = []
            for key, events in ingested.events:
                logic = dedupe.setdefault(key, SeenBatches(SeenIds(3_600.0)))
                (out,), _ = logic.on_batch([events])
                deduped.append((key, out))
            for fanned in fan_out(deduped):
                for key, (same, values) in fanned.categories:
                    assert same == key
                    sku[key].update(values)
                for key, (same, signals) in fanned.shoppers:
                    assert same == key
                    user[key].update(signals)
                counts.update(dict(fanned.stats))
    want_lake, want_sku, want_user, want_repeats = _one_by_one(messages, categories)
    assert len(rejected) == 2
    assert dict(lake) == dict(want_lake)  # every partition's rows, in offset order
    assert dict(sku) == dict(want_sku)
    assert dict(user) == dict(want_user)
    assert counts["duplicates"] == want_repeats > 0


def test_grouped_values_are_applied_as_the_same_values_one_by_one() -> None:
    catalogue = {
        s: CatalogueItem(sku=s, category="tea", list_price=10.0, unit_cost=5.0) for s in "AB"
    }
    t0 = 1_767_571_200.0
    signals = [("A", SkuSignal("view", t0 + i % 7)) for i in range(30)]
    signals += [("B", SkuSignal("sale", t0 + 3, 2, 9.0)), ("A", SkuSignal("sale", t0 + 1, 1, 9.5))]

    def logic(grouped: bool) -> KeyedState:  # type: ignore[type-arg]
        return KeyedState(
            lambda _key: CategoryState(),
            lambda state, items: state.apply_batch(items, catalogue),
            when=lambda item: item[1].t,
            grouped=grouped,
        )

    flat = logic(False).on_batch([("c", s) for s in signals])
    grouped = logic(True).on_batch([("c", signals[:5]), ("c", signals[5:6]), ("c", signals[6:])])
    assert grouped == flat


def test_repeats_within_and_across_groups_and_batches_are_dropped_in_a_dataflow() -> None:
    events = [Item(f"e-{i % 50}") for i in range(200)]  # each id four times
    random.Random(2).shuffle(events)
    groups = [
        (dedupe_key(e.event_id, 0.0), [e, e] if i % 9 == 0 else [e]) for i, e in enumerate(events)
    ]
    flow = Dataflow("grouped-dedupe")
    out = op.stateful_batch(
        "dedupe",
        op.input("in", flow, TestingSource(groups, 10)),
        lambda resume: SeenBatches(SeenIds[Item](3_600.0, resume)),
    )
    got: list[tuple[str, Deduped[Item]]] = []
    op.output("out", out, TestingSink(got))
    run_main(flow)
    firsts = [e.event_id for _, d in got for e in d.unique]
    assert sorted(firsts) == sorted(f"e-{i}" for i in range(50))
    assert sum(d.repeats for _, d in got) == sum(len(g) for _, g in groups) - 50


def _row(offset: int) -> LakeRow:
    return LakeRow("orders", 0, offset, None, b"{}", f"e{offset}", 1_767_607_200_000_000)


class _Kept:
    """Keeps the rows themselves (the flow's lake keeps their offsets: test_lake_offsets)."""

    def keep(self, rows: list[LakeRow]) -> tuple[LakeRow, ...]:
        return tuple(rows)

    def restore(self, kept: tuple[LakeRow, ...]) -> list[LakeRow]:
        return list(kept)


def _buffer(clock: list[float], max_rows: int = 100) -> RowBuffer[LakeRow]:
    return RowBuffer(_Kept(), wait_s=2.0, max_rows=max_rows, clock=lambda: clock[0])


def test_the_bronze_buffer_leaves_a_wait_after_its_first_row_however_many_follow() -> None:
    now = [100.0]
    buffer = _buffer(now)
    for i in range(10):  # rows keep coming: the deadline stays where the first row set it
        now[0] = 100.0 + i * 0.5
        assert buffer.on_batch([[_row(i)]]) == ((), False)
        assert buffer.notify_at().timestamp() == 102.0  # type: ignore[union-attr]
    assert buffer.on_notify() == ([[_row(i) for i in range(10)]], True)


def test_the_bronze_buffer_leaves_when_full_and_at_the_end_and_resumes_from_its_snapshot() -> None:
    now = [0.0]
    full = _buffer(now, max_rows=5)
    assert full.on_batch([[_row(1), _row(2)], [_row(3)]]) == ((), False)
    assert full.on_batch([[_row(4), _row(5), _row(6)]]) == ([[_row(i) for i in range(1, 7)]], True)
    ending = _buffer(now)
    ending.on_batch([[_row(7)]])
    snapshot = pickle.loads(pickle.dumps(ending.snapshot()))
    assert snapshot == Buffered((_row(7),), 2.0)
    ending.on_batch([[_row(8)]])  # the snapshot does not change with the buffer
    assert ending.on_eof() == ([[_row(7), _row(8)]], True)
    resumed = RowBuffer(_Kept(), 2.0, 100, snapshot)
    assert resumed.notify_at().timestamp() == 2.0  # type: ignore[union-attr]
    (rows,), discard = resumed.on_eof()
    assert rows == [_row(7)]
    assert type(rows[0]) is LakeRow
    assert discard
