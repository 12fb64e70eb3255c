"""``tillflow replay`` against the real broker: good lines land, bad lines are named."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from schemas.settings import Settings
from schemas.topics import COMPETITOR_PRICES, Topic

pytestmark = pytest.mark.integration

LINE = (
    '{"event_id": "rp-%d", "event_time": "2026-01-05T00:00:00Z", "sku": "A", '
    '"competitor": "c", "price": %s}'
)


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "TILLFLOW_TOPIC_PREFIX": settings.topic_prefix,
        "TILLFLOW_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TILLFLOW_KAFKA_TIMEOUT_S": "3",
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_replay_produces_valid_lines_and_reports_bad_ones(
    stack: Settings,
    tmp_path: Path,
    end_offsets: Callable[[Topic], int],
    consume: Callable[..., list[tuple[bytes, dict[str, object]]]],
) -> None:
    path = tmp_path / "prices.jsonl"
    lines = [LINE % (i, "9.99") for i in range(200)]
    lines[10] = LINE % (10, "-1")
    lines[57] = "not json at all"
    path.write_text("\n".join(lines) + "\n")
    before = end_offsets(COMPETITOR_PRICES)
    result = run_cli(stack, "replay", str(path), "--topic", "competitor-prices")
    assert result.returncode == 1, result.stderr
    assert f"{path}:11: rejected: price" in result.stderr
    assert f"{path}:58: rejected: (event): not valid JSON" in result.stderr
    assert "produced 198 events to competitor-prices; rejected 2" in result.stdout
    # not a terminal: the progress ends with one plain summary line of every line handled
    assert re.search(
        r"^replay prices\.jsonl: 200 lines in [\d.]+s \([\d,]+/s\)$", result.stderr, re.MULTILINE
    ), result.stderr
    assert end_offsets(COMPETITOR_PRICES) - before == 198
    ids = {
        v["event_id"]
        for _, v in consume(
            COMPETITOR_PRICES, 198, where=lambda v: str(v["event_id"]).startswith("rp-")
        )
    }
    assert "rp-10" not in ids
    assert "rp-199" in ids


def test_replay_to_an_unknown_topic_is_refused(stack: Settings, tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text("{}\n")
    result = run_cli(stack, "replay", str(path), "--topic", "price-updates")
    assert result.returncode == 1
    assert "unknown input topic 'price-updates'" in result.stderr


def test_unreachable_broker_is_named_not_hung(stack: Settings, tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text((LINE % (1, "1.5")) + "\n")
    dead = stack.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})
    result = run_cli(dead, "replay", str(path), "--topic", "competitor-prices")
    assert result.returncode == 1
    assert "Kafka is not reachable at 127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.stderr
