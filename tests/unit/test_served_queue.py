"""The served-list log's queue (``api/served.py``): what serving a list costs and keeps."""

from __future__ import annotations

from datetime import UTC, datetime

from api.metrics import ApiMetrics
from api.served import ServedLog, served_list
from ingest.producer import EventProducer
from schemas.serving import Recommendations, RecommendedItem
from schemas.settings import Settings

WHEN = datetime(2026, 1, 5, 10, tzinfo=UTC)


def _shown(user: str, skus: list[str]) -> Recommendations:
    items = [RecommendedItem(sku=s, score=1.0, source="popular") for s in skus]
    return Recommendations(user_id=user, list_name="discover", items=items, source="popularity")


def test_a_full_queue_drops_the_oldest_list_and_counts_it() -> None:
    metrics = ApiMetrics()
    log = ServedLog(
        EventProducer(Settings(environment="test")), 1.0, metrics, capacity=2, clock=lambda: WHEN
    )
    log.record(_shown("u-0", []))  # nothing shown: nothing to learn from
    for n in range(1, 4):
        log.record(_shown(f"u-{n}", ["a", "b"]))
    assert [shown.user_id for shown, _, _ in log.pending] == ["u-2", "u-3"]
    dropped = {"outcome": "dropped"}
    assert metrics.registry.get_sample_value("tillflow_served_lists_total", dropped) == 1
    ids = {event_id for _, _, event_id in log.pending}
    assert len(ids) == 2  # each list keeps one id, whatever retries send it again
    event = served_list(*log.pending[0])
    assert (event.user_id, event.event_time, [i.sku for i in event.items]) == (
        "u-2",
        WHEN,
        ["a", "b"],
    )
