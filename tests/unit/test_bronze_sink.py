"""The bronze sink appends each message exactly once, whatever a recovered flow replays."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from deltalake import DeltaTable

from flows.records import LakeRow
from flows.sinks import lake
from flows.sinks.lake import BronzeSink
from schemas.lake import bronze_app_id, bronze_path
from schemas.topics import ORDERS, USER_ACTIVITY


def rows(topic: str, partition: int, offsets: range) -> list[LakeRow]:
    return [
        LakeRow(topic, partition, o, None, b"{}", f"{topic}-{partition}-{o}", 1_767_607_200_000_000)
        for o in offsets
    ]


def test_one_commit_per_topic_and_replays_land_once(tmp_path: Path) -> None:
    sink = BronzeSink(tmp_path, 1).writer_for("bronze", 0)
    sink.write_batch(
        rows(ORDERS.name, 0, range(0, 5))
        + rows(ORDERS.name, 1, range(0, 3))
        + rows(USER_ACTIVITY.name, 2, range(0, 4))
    )
    orders = DeltaTable(str(bronze_path(tmp_path, ORDERS)))
    assert orders.version() == 0  # both partitions in one commit
    assert orders.transaction_version(bronze_app_id(ORDERS, 0)) == 4
    assert orders.transaction_version(bronze_app_id(ORDERS, 1)) == 2
    # A restarted worker replays the last interval, with new messages after it.
    again = BronzeSink(tmp_path, 1).writer_for("bronze", 0)
    again.write_batch(rows(ORDERS.name, 0, range(3, 8)) + rows(ORDERS.name, 1, range(0, 3)))
    orders = DeltaTable(str(bronze_path(tmp_path, ORDERS)))
    ids = sorted(orders.to_pyarrow_table(columns=["event_id"]).column("event_id").to_pylist())
    expected = [f"orders-0-{o}" for o in range(8)] + [f"orders-1-{o}" for o in range(3)]
    assert ids == sorted(expected)
    assert orders.transaction_version(bronze_app_id(ORDERS, 0)) == 7
    activity = DeltaTable(str(bronze_path(tmp_path, USER_ACTIVITY)))
    assert activity.to_pyarrow_table().num_rows == 4


def test_open_tables_follow_their_commits_and_each_others(tmp_path: Path) -> None:
    """Each sink keeps its table open across commits; two sinks (two flow processes) appending
    to one table alternately, each from its own open table, both land every row once."""
    first, second = (BronzeSink(tmp_path, 1).writer_for("bronze", i) for i in range(2))
    path = bronze_path(tmp_path, ORDERS)
    for i in range(3):
        first.write_batch(rows(ORDERS.name, 0, range(i * 5, i * 5 + 5)))
        second.write_batch(rows(ORDERS.name, 1, range(i * 5, i * 5 + 5)))
    kept = first.tables.open[path]
    first.write_batch(rows(ORDERS.name, 0, range(15, 20)))
    assert first.tables.open[path] is kept  # the same table, moved to its own commit
    assert kept.version() == DeltaTable(str(path)).version() == 6
    orders = DeltaTable(str(path))
    ids = orders.to_pyarrow_table(columns=["event_id"]).column("event_id").to_pylist()
    expected = [f"orders-0-{o}" for o in range(20)] + [f"orders-1-{o}" for o in range(15)]
    assert sorted(ids) == sorted(expected)
    assert orders.transaction_version(bronze_app_id(ORDERS, 1)) == 14


def test_a_failed_append_reopens_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = BronzeSink(tmp_path, 1).writer_for("bronze", 0)
    sink.write_batch(rows(ORDERS.name, 0, range(0, 2)))
    path = bronze_path(tmp_path, ORDERS)
    assert sink.tables.get(path) is not None

    def refused(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(lake, "_append", refused)
    with pytest.raises(OSError, match="disk full"):
        sink.tables.append(path, lake.to_arrow([], datetime.now(UTC)), [])
    assert path not in sink.tables.open  # the next attempt reads the log afresh
    monkeypatch.undo()
    sink.write_batch(rows(ORDERS.name, 0, range(2, 4)))
    assert DeltaTable(str(path)).to_pyarrow_table().num_rows == 4
