"""Soak benchmark -> benchmarks/results/soak.json: does the flow's memory plateau?

The real flow (one ``bytewax.run`` process, recovery on) tails the input topics for MINUTES
while this process produces RATE events/s from SHOPPERS distinct shoppers (each id comes
back only after all the others: nearly every event names a new shopper) over the simulator's
catalogue, into a Redis of its own (the launcher's options: AOF, maxmemory, volatile-lru) so
``used_memory`` is the flow's alone. The state horizons are short enough to be reached within
the run (``TILLFLOW_DEDUPE_HORIZON_S``, ``TILLFLOW_SHOPPER_IDLE_S`` = HORIZON_S): bounded
state must then stop growing.

Figures, each ``[start, middle, end]`` (start: the flow has read its first events):
``flow_rss_mb`` (the flow process's resident memory), ``redis_used_mb``, ``recovery_mb``
(the recovery store on disk); ``late_growth_ratio``, the largest of the three
``(end − middle) / (middle − start)`` (goal ≤ 0.25: a plateau); ``events_per_s`` (events the
flow read per second of the run) and ``distinct_shoppers`` (in the messages up to the offsets
the flow consumed; ``distinct_shoppers_produced``: offered); ``bytes_per_dedupe_id``, the
dedupe snapshots in the recovery store per id they hold (goal ≤ 16), next to the same ids
kept in memory by a SeenIds (``bytes_per_dedupe_id_in_memory``) and as a set of strings
(``bytes_per_dedupe_id_as_strings_in_memory``, the baseline). The machine's load average is
recorded at each sample (the machine is shared).

``--smoke``: SMOKE_SECONDS at 500 events/s, results in a temporary folder
(benchmarks.common.smoke_results).
"""

from __future__ import annotations

import argparse
import os
import pickle
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import redis
from confluent_kafka import Producer

from benchmarks.common import Mode, free_port, write_result
from flows.catalogue import store_catalogue
from flows.dedupe import Item, SeenIds, SeenSnapshot
from flows.recovered import latest_snapshots
from flows.run import TAIL_ENV, init_recovery, process_commands
from infra.readiness import require_kafka
from infra.stack.redis import server_args
from infra.stack.topics import delete_topics, ensure_topics
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, ORDERS, USER_ACTIVITY
from simulator.config import ShopConfig
from simulator.shop import Shop

MINUTES = 10.0
RATE = 2_100.0  # offered 5 % above the 2,000/s goal, so the rate read can reach it
SHOPPERS = 1_000_000
HORIZON_S = 120.0  # dedupe horizon and shopper idle time during the soak
SAMPLE_S = 15.0
SMOKE_SECONDS = 8.0  # enough for a start, a middle and an end sample a second apart
FIRST_READ_TIMEOUT_S = 180.0  # from the metrics endpoint up to the flow's first read


def start_redis(settings: Settings, data: Path) -> subprocess.Popen[bytes]:
    """A redis-server of this run alone, with the local launcher's options."""
    data.mkdir(parents=True, exist_ok=True)
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = subprocess.Popen(
        [binary, *server_args(settings, data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=data,
    )
    client = redis.Redis.from_url(settings.redis_url)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"redis-server did not start on {settings.redis_url}") from None


class Events:
    """Views, carts and orders of SHOPPERS shoppers over the catalogue, stamped with now."""

    def __init__(self, skus: list[str], shoppers: int, seed: int = 7) -> None:
        self.skus = skus
        self.shoppers = shoppers
        self.rng = random.Random(seed)
        self.n = 0

    def next(self) -> tuple[str, bytes, bytes]:
        """``(topic name, key, value)`` of the next event."""
        n, self.n = self.n, self.n + 1
        user = f"U-{n % self.shoppers:07d}"
        now = datetime.now(UTC).isoformat()
        sku = self.skus[int(self.rng.paretovariate(1.2)) % len(self.skus)]
        roll = self.rng.random()
        if roll < 0.04:
            body: dict[str, Any] = {
                "event_id": f"soak-o-{n}",
                "event_time": now,
                "order_id": f"o-{n}",
                "user_id": user,
                "store_id": "store-01",
                "lines": [{"sku": sku, "quantity": 1, "unit_price": "10.00"}],
            }
            return ORDERS.name, user.encode(), orjson.dumps(body)
        action = "add_to_cart" if roll < 0.12 else "view"
        body = {
            "event_id": f"soak-{n}",
            "event_time": now,
            "user_id": user,
            "session_id": f"s-{user}",
            "action": action,
            "sku": sku,
        }
        return USER_ACTIVITY.name, user.encode(), orjson.dumps(body)


def events_read(metrics_url: str) -> float:
    """Input messages the flow has read (``tillflow_flow_events_total``, every topic)."""
    with urllib.request.urlopen(metrics_url, timeout=10) as r:
        text = r.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("tillflow_flow_events_total{")
    )


class Delivered:
    """The shopper of every delivered message, per (topic, partition), in offset order."""

    def __init__(self) -> None:
        self.shoppers: dict[tuple[str, int], list[int]] = {}

    def __call__(self, err: Any, msg: Any) -> None:
        if err is None:
            shoppers = self.shoppers.setdefault((msg.topic(), msg.partition()), [])
            if msg.offset() == len(shoppers):  # fresh topics: offsets count from 0
                shoppers.append(int(msg.key().decode().removeprefix("U-")))

    def distinct_read(self, consumed: dict[tuple[str, int], int]) -> int:
        """Distinct shoppers in the messages up to each partition's consumed offset."""
        seen: set[int] = set()
        for tp, shoppers in self.shoppers.items():
            seen.update(shoppers[: consumed.get(tp, -1) + 1])
        return len(seen)


def consumed_offsets(metrics_url: str, names: dict[str, str]) -> dict[tuple[str, int], int]:
    """``tillflow_flow_consumed_offset`` per (broker-side topic, partition)."""
    with urllib.request.urlopen(metrics_url, timeout=10) as r:
        text = r.read().decode()
    found: dict[tuple[str, int], int] = {}
    for line in text.splitlines():
        match = re.match(
            r'tillflow_flow_consumed_offset\{partition="(\d+)",topic="([^"]+)"\} (\S+)', line
        )
        if match and match.group(2) in names:
            found[(names[match.group(2)], int(match.group(1)))] = int(float(match.group(3)))
    return found


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` (``VmRSS`` in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def sample(flow: int, client: redis.Redis, settings: Settings, at: float) -> dict[str, float]:
    info: Any = client.info("memory")
    return {
        "t_s": round(at, 1),
        "flow_rss_mb": rss_mb(flow),
        "redis_used_mb": info["used_memory"] / 2**20,
        "recovery_mb": dir_mb(settings.recovery_dir),
        "load_1m": os.getloadavg()[0],
    }


def dedupe_bytes(recovery: Path) -> tuple[float, int]:
    """Bytes per id of the dedupe snapshots in the recovery store, and the ids they hold."""
    blobs = ids = 0
    for _key, snap in latest_snapshots(recovery, "dedupe"):
        assert isinstance(snap, SeenSnapshot)
        blobs += len(pickle.dumps(snap, protocol=pickle.HIGHEST_PROTOCOL))
        ids += len(snap.hashes) // 8
    return (blobs / ids if ids else 0.0), ids


def dedupe_baselines(n: int) -> tuple[float, float]:
    """Bytes per id of ``n`` soak-like ids in memory: in a SeenIds, and as a set of strings."""
    seen = SeenIds[Item](HORIZON_S)
    ids = {f"soak-{i}" for i in range(n)}
    for i in ids:
        seen.on_item(Item(i))
    as_strings = sys.getsizeof(ids) + sum(sys.getsizeof(i) for i in ids)
    return seen.memory_bytes() / n, as_strings / n


def ratio(series: list[float]) -> float | None:
    """``(end − middle) / (middle − start)``; None when nothing grew before the middle."""
    start, middle, end = series
    return (end - middle) / (middle - start) if middle > start else None


def run(minutes: float, rate: float, shoppers: int, mode: Mode, every_s: float) -> Path:
    t0 = time.monotonic()
    base = Settings()
    require_kafka(base)
    tag = uuid.uuid4().hex[:6]
    work = Path(tempfile.mkdtemp(prefix="tillflow-soak-"))
    metrics_port = free_port()
    settings = base.model_copy(
        update={
            "topic_prefix": f"soak-{tag}.",
            "redis_prefix": f"soak-{tag}:",
            "redis_url": f"redis://127.0.0.1:{free_port()}/0",
            "lake_dir": work / "lake",
            "recovery_dir": work / "recovery",
            "catalogue_file": work / "catalogue.jsonl",
            "dedupe_horizon_s": HORIZON_S,
            "shopper_idle_s": HORIZON_S,
            "redis_maxmemory": "2gb",
        }
    )
    settings = settings.model_copy(
        update={"redis_port": int(settings.redis_url.rsplit(":", 1)[1].split("/")[0])}
    )
    redis_proc = start_redis(settings, work / "redis")
    client = redis.Redis.from_url(settings.redis_url)
    ensure_topics(settings)
    catalogue = Shop(ShopConfig()).catalogue()
    store_catalogue(settings, catalogue)
    init_recovery(settings.recovery_dir, 1)
    env = {
        **os.environ,
        "PYTHONPATH": str(Path.cwd()),
        TAIL_ENV: "1",
        "TILLFLOW_TOPIC_PREFIX": settings.topic_prefix,
        "TILLFLOW_REDIS_PREFIX": settings.redis_prefix,
        "TILLFLOW_REDIS_URL": settings.redis_url,
        "TILLFLOW_LAKE_DIR": str(settings.lake_dir),
        "TILLFLOW_RECOVERY_DIR": str(settings.recovery_dir),
        "TILLFLOW_CATALOGUE_FILE": str(settings.catalogue_file),
        "TILLFLOW_DEDUPE_HORIZON_S": str(HORIZON_S),
        "TILLFLOW_SHOPPER_IDLE_S": str(HORIZON_S),
        "TILLFLOW_FLOW_METRICS_PORT": str(metrics_port),
        "TILLFLOW_LOG_LEVEL": "warning",
    }
    (cmd,) = process_commands(settings, 1, 1, recovery=True)
    flow_proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    flow = flow_proc.pid
    metrics_url = f"http://{settings.metrics_host}:{metrics_port}/metrics"
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 20})
    events = Events([item.sku for item in catalogue], shoppers)
    topics = {t.name: settings.topic(t) for t in (ORDERS, USER_ACTIVITY)}
    samples: list[dict[str, float]] = []
    delivered = Delivered()
    read_at_start = 0.0
    try:
        _wait_for_flow(flow_proc, metrics_url)
        print(f"flow up after {time.monotonic() - t0:.1f} s; soaking {minutes:g} min")
        began = time.monotonic()
        duration = minutes * 60
        next_sample = 0.0
        started: float | None = None  # when the flow had read its first events
        while True:
            now = time.monotonic() - began
            if started is not None and now - started >= duration:
                break  # the run lasts ``minutes`` from the flow's first read
            if started is None and now > FIRST_READ_TIMEOUT_S:
                raise RuntimeError(f"the flow read nothing in {FIRST_READ_TIMEOUT_S:.0f} s")
            due = int(rate * now) - events.n
            for _ in range(max(0, min(due, int(rate)))):
                topic, key, value = events.next()
                producer.produce(topics[topic], value=value, key=key, on_delivery=delivered)
            producer.poll(0)
            if flow_proc.poll() is not None:
                raise RuntimeError(f"the flow exited with {flow_proc.returncode}")
            if now >= next_sample:
                next_sample += every_s
                read = _read_or_zero(metrics_url)
                if started is None and read > 0:
                    started, read_at_start = now, read
                if started is not None:
                    samples.append({**sample(flow, client, settings, now), "read": read})
            time.sleep(0.01)  # pacing: produce in 10 ms slices
        producer.flush(30)
        names = {t.name: settings.topic(t) for t in (ORDERS, USER_ACTIVITY)}
        shoppers_read = delivered.distinct_read(consumed_offsets(metrics_url, names))
        samples.append({**sample(flow, client, settings, now), "read": events_read(metrics_url)})
    finally:
        flow_proc.terminate()
        try:
            flow_proc.wait(30)
        except subprocess.TimeoutExpired:
            flow_proc.kill()
        client.close()
        redis_proc.terminate()
        redis_proc.wait(30)
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])
    bytes_per_id, ids = dedupe_bytes(settings.recovery_dir)
    in_memory, as_strings = dedupe_baselines(max(ids, 1_000))
    shutil.rmtree(work, ignore_errors=True)
    middle = min(
        samples, key=lambda s: abs(s["t_s"] - (samples[0]["t_s"] + samples[-1]["t_s"]) / 2)
    )
    points = [samples[0], middle, samples[-1]]
    figures: dict[str, Any] = {
        key: [round(p[key], 1) for p in points]
        for key in ("flow_rss_mb", "redis_used_mb", "recovery_mb")
    }
    seconds = samples[-1]["t_s"] - samples[0]["t_s"]
    ratios = [
        ratio([p[k] for p in points]) for k in ("flow_rss_mb", "redis_used_mb", "recovery_mb")
    ]
    known = [r for r in ratios if r is not None]
    figures["late_growth_ratio"] = round(max(known), 4) if known else None
    figures["minutes"] = round(duration / 60, 2)
    figures["events_per_s"] = round((samples[-1]["read"] - read_at_start) / seconds, 1)
    figures["produced_events_per_s"] = round(events.n / samples[-1]["t_s"], 1)
    figures["distinct_shoppers"] = shoppers_read  # in the messages the flow read
    figures["distinct_shoppers_produced"] = min(events.n, shoppers)
    figures["bytes_per_dedupe_id"] = round(bytes_per_id, 3)
    figures["bytes_per_dedupe_id_in_memory"] = round(in_memory, 3)
    figures["bytes_per_dedupe_id_as_strings_in_memory"] = round(as_strings, 3)
    figures["dedupe_ids_at_end"] = ids
    figures["lag_at_end"] = int(events.n - samples[-1]["read"])
    figures["load_1m"] = [round(p["load_1m"], 2) for p in points]
    meta_runs = {"repeats": 1, "rate": rate, "horizon_s": HORIZON_S, "samples": samples}
    return write_result("soak", figures, meta_runs, mode)


def _wait_for_flow(proc: subprocess.Popen[bytes], url: str, timeout_s: float = 180.0) -> None:
    """Until the flow's metrics endpoint answers (the flow is built and reading)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            events_read(url)
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the flow did not start (exit code {proc.poll()})") from None
            time.sleep(0.5)


def _read_or_zero(url: str) -> float:
    try:
        return events_read(url)
    except OSError:  # the flow's metrics endpoint is not up yet
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="8 s at 500 events/s")
    parser.add_argument("--minutes", type=float, default=MINUTES)
    parser.add_argument("--rate", type=float, default=RATE)
    parser.add_argument("--shoppers", type=int, default=SHOPPERS)
    args = parser.parse_args()
    if args.smoke:
        path = run(SMOKE_SECONDS / 60, 500.0, 5_000, Mode(smoke=True), every_s=1.0)
    else:
        path = run(args.minutes, args.rate, args.shoppers, Mode(), every_s=SAMPLE_S)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
