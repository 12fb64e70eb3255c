"""``tillflow replay`` reads a file, keeps the valid lines and names the bad ones by line."""

from __future__ import annotations

from pathlib import Path

from ingest.replay import ReplayReport, read_events
from schemas.event_time import EventTimePolicy
from schemas.topics import INVENTORY

GOOD = (
    '{"event_id": "e%d", "event_time": "2026-01-05T00:00:00Z", "sku": "A", '
    '"store_id": "s", "on_hand": %d}'
)


def test_bad_lines_are_reported_with_their_numbers(tmp_path: Path) -> None:
    path = tmp_path / "inventory.jsonl"
    path.write_text(
        "\n".join([GOOD % (1, 5), "{broken", "", GOOD % (2, -1), GOOD % (3, 0), "[]"]) + "\n"
    )
    report = ReplayReport()
    events = list(read_events(path, INVENTORY, report, EventTimePolicy()))
    assert [e.event_id for e in events] == ["e1", "e3"]
    assert [r.line for r in report.rejected] == [2, 4, 6]
    assert "not valid JSON" in report.rejected[0].error
    assert "on_hand" in report.rejected[1].error
    assert "JSON object" in report.rejected[2].error
    assert report.blank == 1
