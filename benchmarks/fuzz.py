"""Fuzz benchmark -> benchmarks/results/fuzz.json: hostile messages through the real flow.

HOSTILE generated hostile messages (benchmarks/hostile.py) are mixed 1:1 with as many simulator
events, in the same topics and partitions (each hostile message uses the key of the good event
it sits next to), and the whole dataflow (``bytewax.run`` with recovery, as ``tillflow flows
run`` runs it) reads them to the end of the topics. In the same run, the clean run reads the same
good events without the hostile ones, and an empty run measures start-up (subtracted from both).

- ``crashes``: flow exits with an error (the flow is then restarted from its recovery state);
- ``dead_lettered``: dead letters whose (topic, partition, offset) is a hostile message's;
  ``hostile_not_dead_lettered`` and ``hostile_accepted`` (in bronze) must be 0;
- ``good_events_lost``: good events missing from Delta bronze;
- ``events_per_s``: messages (good and hostile) read per second by the hostile run;
  ``clean_events_per_s``: good events per second of the clean run; ``ratio_to_clean``;
  ``good_events_per_s``: good events per second of the hostile run.

Clean and hostile runs alternate (REPEATS of each, over the same topics with fresh state);
throughputs are medians; ``dead_letters_per_hostile_message`` (per hostile run) must be 1.
``--smoke``: 2,000 of each through the hostile run alone (no clean or empty run, so no
throughput figures), results in a temporary folder (benchmarks.common.smoke_results).
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from deltalake import DeltaTable

from benchmarks.common import Mode, median, write_result
from benchmarks.hostile import hostile
from benchmarks.stream import drop_keys, env_of, variant
from flows.catalogue import store_catalogue
from flows.run import init_recovery, process_commands
from infra.readiness import require_kafka, require_redis
from infra.stack.topics import delete_topics, ensure_topics
from schemas.events import DeadLetter
from schemas.lake import bronze_path
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, DEAD_LETTER, INPUT_TOPICS, Topic, by_name
from simulator.config import ShopConfig
from simulator.shop import Emitted, Shop

HOSTILE = 100_000
SMOKE = 2_000
REPEATS = 2
MAX_RESTARTS = 5
Position = tuple[str, int, int]  # (topic, partition, offset)


def produce(s: Settings, messages: list[tuple[Topic, bytes, bytes]]) -> list[Position]:
    """Write ``messages`` in order; their positions, in the same order."""
    producer = Producer(
        {
            "bootstrap.servers": s.kafka_bootstrap,
            "linger.ms": 20,
            "queue.buffering.max.messages": 500_000,
        }
    )
    positions: dict[int, Position] = {}

    def delivered(i: int) -> Any:
        def report(err: Any, msg: Any) -> None:
            if err is not None:
                raise RuntimeError(f"produce failed: {err}")
            positions[i] = (msg.topic(), msg.partition(), msg.offset())

        return report

    for i, (topic, key, value) in enumerate(messages):
        while True:
            try:
                producer.produce(s.topic(topic), value, key, on_delivery=delivered(i))
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(120)
    return [positions[i] for i in range(len(messages))]


def run_flow(s: Settings, log: Path) -> tuple[float, int]:
    """Run the flow to the end of the topics; (seconds, crashes), restarting after a crash.

    Its log (a warning per dead letter) goes to ``log``; a crash prints the log's end.
    """
    init_recovery(s.recovery_dir, 1)
    env = {**env_of(s, tail=False), "TILLFLOW_FLOW_METRICS_PORT": "0"}
    crashes = 0
    started = time.perf_counter()
    while True:
        with log.open("ab") as out:
            code = subprocess.call(
                process_commands(s, 1, 1, recovery=True)[0],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=out,
            )
        if code == 0:
            return time.perf_counter() - started, crashes
        crashes += 1
        print(f"flow crashed (exit {code}):\n{log.read_text()[-3_000:]}")
        if crashes > MAX_RESTARTS:
            raise RuntimeError(f"the flow crashed {crashes} times; giving up")


def dead_letters(s: Settings) -> list[DeadLetter]:
    """Every dead letter, read up to the topic's end offsets."""
    consumer = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": uuid.uuid4().hex})
    name = s.topic(DEAD_LETTER)
    parts = consumer.list_topics(name, timeout=10).topics[name].partitions
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1] for p in parts
    }
    consumer.assign([TopicPartition(name, p, 0) for p, end in ends.items() if end > 0])
    letters: list[DeadLetter] = []
    while len(letters) < sum(ends.values()):
        for msg in consumer.consume(1_000, 1.0):
            if msg.error() is None:
                letters.append(DeadLetter.model_validate_json(msg.value() or b""))
    consumer.close()
    return letters


def bronze_ids(s: Settings) -> Counter[str]:
    ids: Counter[str] = Counter()
    for topic in INPUT_TOPICS:
        path = bronze_path(s.lake_dir, topic)
        if path.exists():
            table = DeltaTable(str(path)).to_pyarrow_table(columns=["event_id"])
            ids.update(table.column("event_id").to_pylist())
    return ids


def messages(count: int) -> tuple[list[Emitted], list[tuple[str, Topic, bytes, bytes]]]:
    shop = Shop(ShopConfig())
    good = [e for _, e in zip(range(count), shop.events(), strict=False)]
    rng = random.Random(12)
    return good, [hostile(rng, e, n) for n, e in enumerate(good)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE:,} of each, to a temp dir")
    args = parser.parse_args()
    count = SMOKE if args.smoke else HOSTILE
    base = Settings(environment="test")
    require_kafka(base)
    require_redis(base)
    good, bad = messages(count)
    good_raw = [(e.topic, e.key.encode(), orjson.dumps(e.payload)) for e in good]
    mixed: list[tuple[Topic, bytes, bytes]] = []
    for g, (_, topic, key, value) in zip(good_raw, bad, strict=True):
        mixed += [g, (topic, key, value)]
    workdir = Path(tempfile.mkdtemp(prefix="tillflow-fuzz-"))
    tag = uuid.uuid4().hex[:6]
    names = ("h",) if args.smoke else ("e", "c", "h")
    runs = {name: variant(base, f"fuzz{tag}{name}", workdir) for name in names}
    repeats = 1 if args.smoke else REPEATS
    seconds: dict[str, list[float]] = {"startup": [], "clean": [], "hostile": []}
    lost: dict[str, list[int]] = {"clean": [], "hostile": []}
    accepted: list[int] = []
    crashes = 0
    good_ids = {e.payload["event_id"] for e in good}

    def measure(kind: str, repeat: int) -> None:
        nonlocal crashes
        topics = runs[{"startup": "e", "clean": "c", "hostile": "h"}[kind]]
        s = topics.model_copy(
            update={
                "redis_prefix": f"{topics.redis_prefix}{repeat}:",
                "lake_dir": workdir / f"{kind}{repeat}" / "lake",
                "recovery_dir": workdir / f"{kind}{repeat}" / "recovery",
            }
        )
        store_catalogue(s, Shop(ShopConfig()).catalogue())
        elapsed, crashed = run_flow(s, workdir / f"{kind}{repeat}.log")
        seconds[kind].append(elapsed)
        crashes += crashed
        if kind != "startup":
            ids = bronze_ids(s)
            lost[kind].append(len(good_ids - set(ids)))
            if kind == "hostile":
                accepted.append(len(set(ids) - good_ids))

    try:
        for s in runs.values():
            ensure_topics(s)
        positions = produce(runs["h"], mixed)
        hostile_at = set(positions[1::2])
        if not args.smoke:
            produce(runs["c"], good_raw)
            measure("startup", 0)
        for repeat in range(repeats):  # alternate the order: load drifts on a shared machine
            order = ["hostile"] if args.smoke else ["clean", "hostile"][:: 1 - 2 * (repeat % 2)]
            for kind in order:
                measure(kind, repeat)
        letters = dead_letters(runs["h"])
    finally:
        for s in runs.values():
            delete_topics(s, [s.topic(t) for t in ALL_TOPICS])
            drop_keys(s)
        shutil.rmtree(workdir, ignore_errors=True)
    lettered = {(runs["h"].topic(by_name(d.topic)), d.partition, d.offset) for d in letters}
    truncated = {(d.topic, d.partition, d.offset) for d in letters if d.raw_truncated}
    figures: dict[str, float] = {
        "hostile_messages": len(bad),
        "dead_lettered": len(lettered & hostile_at),
        "hostile_not_dead_lettered": len(hostile_at - lettered),
        "dead_letters_not_hostile": len(lettered - hostile_at),
        "dead_letters_per_hostile_message": len(letters) / len(bad) / repeats,
        "hostile_accepted": max(accepted),
        "truncated_dead_letters": len(truncated),
        "crashes": crashes,
        "good_events": len(good),
        "good_events_lost": max(lost["hostile"]),
    }
    if not args.smoke:
        startup = seconds["startup"][0]
        busy = median(seconds["hostile"]) - startup
        clean = median(seconds["clean"]) - startup
        figures |= {
            "events_per_s": len(mixed) / busy,
            "clean_events_per_s": len(good) / clean,
            "ratio_to_clean": len(mixed) / busy / (len(good) / clean),
            "good_events_per_s": len(good) / busy,
            "clean_good_events_lost": max(lost["clean"]),
            "startup_s": startup,
        }
    meta = {
        "repeats": repeats,
        "kinds": dict(Counter(kind for kind, *_ in bad)),
        "seconds": seconds,
        "errors": dict(Counter(d.error.split(":")[0] for d in letters).most_common(12)),
    }
    path = write_result("fuzz", figures, meta, Mode(smoke=args.smoke))
    print(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
