"""The bronze sink appends each message exactly once, whatever a recovered flow replays."""

from __future__ import annotations

from pathlib import Path

from deltalake import DeltaTable

from flows.records import LakeRow
from flows.sinks.lake import BronzeSink
from schemas.lake import bronze_app_id, bronze_path
from schemas.topics import ORDERS, USER_ACTIVITY


def rows(topic: str, partition: int, offsets: range) -> tuple[str, list[LakeRow]]:
    return f"{topic}:{partition}", [
        LakeRow(topic, partition, o, None, b"{}", f"{topic}-{partition}-{o}", 1_767_607_200_000_000)
        for o in offsets
    ]


def test_one_commit_per_topic_and_replays_land_once(tmp_path: Path) -> None:
    sink = BronzeSink(tmp_path).build("bronze", 0, 1)
    sink.write_batch(
        [
            rows(ORDERS.name, 0, range(0, 5)),
            rows(ORDERS.name, 1, range(0, 3)),
            rows(USER_ACTIVITY.name, 2, range(0, 4)),
        ]
    )
    orders = DeltaTable(str(bronze_path(tmp_path, ORDERS)))
    assert orders.version() == 0  # both partitions in one commit
    assert orders.transaction_version(bronze_app_id(ORDERS, 0)) == 4
    assert orders.transaction_version(bronze_app_id(ORDERS, 1)) == 2
    # A restarted worker replays the last interval, with new messages after it.
    again = BronzeSink(tmp_path).build("bronze", 0, 1)
    again.write_batch([rows(ORDERS.name, 0, range(3, 8)), rows(ORDERS.name, 1, range(0, 3))])
    orders = DeltaTable(str(bronze_path(tmp_path, ORDERS)))
    ids = sorted(orders.to_pyarrow_table(columns=["event_id"]).column("event_id").to_pylist())
    expected = [f"orders-0-{o}" for o in range(8)] + [f"orders-1-{o}" for o in range(3)]
    assert ids == sorted(expected)
    assert orders.transaction_version(bronze_app_id(ORDERS, 0)) == 7
    activity = DeltaTable(str(bronze_path(tmp_path, USER_ACTIVITY)))
    assert activity.to_pyarrow_table().num_rows == 4
