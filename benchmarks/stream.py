"""Streaming benchmark -> benchmarks/results/stream.json.

- ``events_per_s_1proc`` / ``events_per_s_2proc``: the whole dataflow (Kafka → validation →
  features → learners → Redis + Delta, with recovery snapshots) over EVENTS pre-produced
  simulator events, as 1 and 2 processes. Each run's start-up time (the same flow over empty
  topics, measured in the same run) is subtracted.
- ``raw_consume_events_per_s``: a plain confluent-kafka consume-and-parse (orjson) loop over
  the same events: the baseline; ``ratio_to_raw_consume`` = 1proc / raw.
- ``scaling_2proc`` = 2proc / 1proc: what a second process adds (≥ 1: it does not slow
  the flow down).
- ``exchange_us_per_event`` / ``exchange_bytes_per_event``: what a worker pays to send one
  event's items to the keyed steps of another process (lake batch, dedupe, per category, per
  shopper): the items the flow's own steps make of the simulator's events, grouped per key
  and input batch (EXCHANGE_BATCH messages), pickled and unpickled as Bytewax does for every
  item that crosses a process boundary; with ``n`` processes a share (n - 1) / n of them
  crosses. ``exchange_items_per_event`` counts them.
- ``freshness_p50_ms`` / ``freshness_p99_ms``: probe events produced while the flow tails the
  topics under a 5,000 events/s load, until the shopper's features in the Feast online store
  show them (the probe compares the stored ``event_time`` value with the expected bytes);
  a probe not seen within PROBE_WAIT_S counts as that late, and ``freshness_missed`` counts
  them. A probe views PROBE_SKU, a product outside the catalogue (features only, never
  priced): the load is simulated months before the wall clock, and a probe stamped now on a
  catalogue product would move that product's and its category's clocks months ahead, so the
  category would stop re-pricing on time for the rest of the run (measured in-process: 50 such
  probes cut the price changes of the next 35k load events from 3,570 to 3,162) and the load
  would be lighter than the one the throughput figures measure. The load rate is close to
  what one process sustains (``events_per_s_1proc``): one pause delays a probe by about its
  own length, but a probe unseen for PROBE_WAIT_S waits behind seconds of backlog, built
  while the flow ran slower than the load, which is what the p99 shows.
  ``freshness_cpu_us_per_event``: the flow process's CPU over that run per load event
  produced (a lower bound when probes were missed: the flow had not yet processed them all);
  above 200 µs (1 s ÷ 5,000) one process cannot keep up with the load on one core.
- ``freshness_2proc_*``: the same at 5,000 events/s with two flow processes.
- ``freshness_sustained_*``: the same with one process at ``freshness_sustained_rate``,
  SUSTAINED of the one-process rate this repeat measured (at most 5,000/s): the freshness of a
  process that has headroom, which the pauses (snapshots, commits, sink round trips) set.
``--only freshness`` runs the one-process freshness run alone (REPEATS times) and prints its
figures (and p90) without writing the results, every probe to a JSON file: to see what its
slow probes wait for. ``benchmarks.stream_ab --freshness`` runs it at several commits in turn.
Medians of REPEATS runs. Every run's Redis keys (its prefix and its Feast entities) are deleted
when it ends, so a long-lived Redis keeps none of them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import orjson
import redis
from bytewax.connectors.kafka import KafkaSourceMessage
from confluent_kafka import Consumer, Producer, TopicPartition

from benchmarks.common import (
    Mode,
    median,
    parse_mode,
    percentile,
    print_repeat,
    write_medians,
)
from featurestore.layout import USER_VIEW, encode_value, field_name, project_name, user_layout
from flows.catalogue import store_catalogue
from flows.dedupe import Deduped
from flows.fanout import FanOut
from flows.ingest import Ingest, Message
from flows.kafka_in import REFETCH_MS
from flows.run import TAIL_ENV, init_recovery, process_commands
from infra.readiness import require_kafka, require_redis
from infra.stack.topics import delete_topics, ensure_topics
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, INPUT_TOPICS, USER_ACTIVITY
from simulator.config import ShopConfig
from simulator.producer import RunOptions, run_shop
from simulator.shop import Shop

EVENTS = 150_000
REPEATS = 3
LOAD_RATE = 5_000
LOAD_S = 40  # seconds of load in each freshness run
SUSTAINED = 0.8  # the sustained-rate freshness runs at this share of the measured 1proc rate
PROBES = 300
PROBE_WAIT_S = 5.0  # a probe not seen by then counts as this late (freshness_missed)
PROBE_SKU = "probe-item"  # outside the catalogue: probes never move a category's clock
STARTUP_WAIT_S = 180.0  # for the first probe, before the load starts
STOP_GRACE_S = 30.0  # a flow process still running this long after SIGTERM is SIGKILLed
EXCHANGE_BATCH = 500  # messages per input batch in the exchange measurement


# Input partitions per topic: two per flow process of the largest run (two processes), as the
# capacity model sizes them (docs/scaling.md, Formulas). With 3, one of two processes read two
# partitions of every topic and the other one.
INPUT_PARTITIONS = 4


def variant(base: Settings, tag: str, workdir: Path) -> Settings:
    return base.model_copy(
        update={
            "input_partitions": INPUT_PARTITIONS,
            "topic_prefix": f"bench-{tag}.",
            "redis_prefix": f"bench-{tag}:",
            "lake_dir": workdir / tag / "lake",
            "recovery_dir": workdir / tag / "recovery",
        }
    )


def env_of(s: Settings, tail: bool, code: Path | None = None) -> dict[str, str]:
    """A flow process's environment; ``code``: the folder of the flow's source (None: this
    checkout)."""
    return {
        **os.environ,
        "PYTHONPATH": str(code or Path.cwd()),
        TAIL_ENV: "1" if tail else "0",
        "TILLFLOW_TOPIC_PREFIX": s.topic_prefix,
        "TILLFLOW_REDIS_PREFIX": s.redis_prefix,
        "TILLFLOW_LAKE_DIR": str(s.lake_dir),
        "TILLFLOW_RECOVERY_DIR": str(s.recovery_dir),
        "TILLFLOW_LOG_LEVEL": "warning",
        "TILLFLOW_FLOW_METRICS_PORT": "0",  # not read here; passes run at once (make bench-smoke)
    }


def drop_keys(s: Settings) -> None:
    """Remove what one run wrote to Redis: the keys under its prefix, and its Feast entities
    (whose keys end with the prefix's project name, featurestore/layout.py)."""
    client = redis.Redis.from_url(s.redis_url)
    try:
        keys = list(client.scan_iter(f"{s.redis_prefix}*", count=1_000))
        keys += list(client.scan_iter(f"*{project_name(s)}", count=1_000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
    finally:
        client.close()


def unstamped_recovery(directory: Path, processes: int) -> None:
    """Bytewax's own recovery partitions, unstamped: a flow of another commit stamps its own
    state format when it starts (:func:`flows.snapshots.require_format`)."""
    directory.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-m", "bytewax.recovery", str(directory), str(processes)], check=True
    )


def run_flow(s: Settings, processes: int) -> float:
    init_recovery(s.recovery_dir, processes)
    started = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, env=env_of(s, tail=False), stdout=subprocess.DEVNULL)
        for cmd in process_commands(s, processes, 1, recovery=True)
    ]
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError(f"flow exited with {p.returncode}")
    return time.perf_counter() - started


def exchange_cost(s: Settings, n: int, batch: int = EXCHANGE_BATCH) -> tuple[float, float, float]:
    """Items, pickled bytes and pickle + unpickle µs per event of the keyed steps' inputs,
    made by the flow's own steps (:mod:`flows.ingest`, :mod:`flows.fanout`) from input
    batches of ``batch`` messages."""
    shop = Shop(ShopConfig(seed=5))
    categories = {c.sku: c.category for c in shop.catalogue()}
    topics = {s.topic(t): t for t in INPUT_TOPICS}
    ingest, fan_out = Ingest(topics, s.event_time_policy()), FanOut(categories)
    messages: list[Message] = [
        KafkaSourceMessage(
            e.key.encode(), orjson.dumps(e.payload), topic=s.topic(e.topic), partition=0, offset=i
        )
        for i, e in zip(range(n), shop.events(), strict=False)
    ]
    items: list[object] = []
    for start in range(0, len(messages), batch):
        for ingested in ingest(messages[start : start + batch]):
            items.extend(ingested.lake)  # lake batches, per Kafka partition
            items.extend(ingested.events)  # dedupe, per event-time minute and shard
            deduped = [(key, Deduped(events, 0)) for key, events in ingested.events]
            for fanned in fan_out(deduped):
                items.extend(fanned.categories)  # per category
                items.extend(fanned.shoppers)  # per shopper
    started = time.perf_counter()
    size = sum(len(pickle.loads(b) and b) for b in map(pickle.dumps, items))
    elapsed = time.perf_counter() - started
    return len(items) / n, size / n, elapsed / n * 1e6


def raw_consume(s: Settings, total: int) -> float:
    """Events per second a plain consume-and-parse loop reads ``total`` events at. Each call
    asks for no more than are left: a call asking for more than the topics hold waits out its
    whole timeout. And a partition whose local queue is full is fetched again after
    ``fetch.queue.backoff.ms``, by default a second: a loop faster than the fetches drained
    the queues and waited for it (~0.9 s in most runs, 140-180k against 0.7-1.2M events/s),
    so the baseline sets it as the flow's consumers do (10 ms)."""
    consumer = Consumer(
        {
            "bootstrap.servers": s.kafka_bootstrap,
            "group.id": uuid.uuid4().hex,
            "enable.auto.commit": False,
            "fetch.queue.backoff.ms": REFETCH_MS,
        }
    )
    parts = [TopicPartition(s.topic(t), p, 0) for t in INPUT_TOPICS for p in range(s.partitions(t))]
    consumer.assign(parts)
    seen = 0
    started = time.perf_counter()
    while seen < total:
        for msg in consumer.consume(min(1_000, total - seen), 1.0):
            if msg.error() is None:
                orjson.loads(msg.value() or b"")
                seen += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    return total / elapsed


class Probe(NamedTuple):
    """One probe of a freshness run, with what the load and the flow had done by then."""

    at_s: float  # when it was sent, seconds after the load started
    latency_ms: float  # until it showed in the online store (PROBE_WAIT_S when it did not)
    produced: int  # load events produced when it showed (or was given up)
    flow_cpu_s: float  # CPU seconds of the flow processes since the load started, by then


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far, all its threads (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def freshness(
    base: Settings,
    workdir: Path,
    tag: str,
    probes: int = PROBES,
    load_n: int = 200_000,
    rate: float = LOAD_RATE,
    processes: int = 1,
    code: Path | None = None,
) -> list[Probe]:
    """Probes sent while ``processes`` flow processes tail a load of ``rate`` events/s;
    ``code``: the folder of the flows' source (None: this checkout)."""
    s = variant(base, tag, workdir)
    flows: list[subprocess.Popen[bytes]] = []
    client = redis.Redis.from_url(s.redis_url)
    try:
        ensure_topics(s)
        return _probe_flows(s, flows, client, probes, load_n, rate, processes, code)
    finally:
        # Whatever ended the run (a flow process killed, a failed start, an interrupt): the
        # flows stopped by PID, then the run's topics and Redis keys deleted.
        try:
            stop_flows(flows)
        finally:
            client.close()
            delete_topics(s, [s.topic(t) for t in ALL_TOPICS])
            drop_keys(s)


def stop_flows(flows: list[subprocess.Popen[bytes]], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM each flow process; SIGKILL, by its PID, one still running ``grace_s`` later.
    Each is waited for, so none is left behind (nor a zombie)."""
    for f in flows:
        f.terminate()  # nothing is sent to one that has already exited
    deadline = time.monotonic() + grace_s
    for f in flows:
        try:
            f.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            f.kill()
            f.wait()


def _probe_flows(
    s: Settings,
    flows: list[subprocess.Popen[bytes]],
    client: redis.Redis,
    probes: int,
    load_n: int,
    rate: float,
    processes: int,
    code: Path | None,
) -> list[Probe]:
    """:func:`freshness`'s run on its topics; the flow processes it starts join ``flows``."""
    shop = Shop(ShopConfig(seed=3))
    store_catalogue(s, shop.catalogue())
    load = [
        (e.topic, e.key, orjson.dumps(e.payload))
        for _, e in zip(range(load_n), shop.events(), strict=False)
    ]
    if code is None:
        init_recovery(s.recovery_dir, processes)
    else:
        unstamped_recovery(s.recovery_dir, processes)
    env = env_of(s, tail=True, code=code)
    for cmd in process_commands(s, processes, 1, recovery=True):
        # in ``code``: ``python -m`` puts the working folder first on the import path
        flows.append(subprocess.Popen(cmd, env=env, cwd=code, stdout=subprocess.DEVNULL))
    users = user_layout(s)  # the probe reads Feast's online store, as get_online_features does
    stamp_field = field_name(USER_VIEW, "event_time")
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap, "linger.ms": 1})
    stop = threading.Event()
    produced = 0

    def background() -> None:
        nonlocal produced
        started, i = time.perf_counter(), 0
        while not stop.is_set() and i < len(load):
            topic, key, value = load[i]
            producer.produce(s.topic(topic), value=value, key=key)
            i += 1
            if i % 100 == 0:
                producer.poll(0)
                produced = i
                ahead = i / rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)

    samples: list[Probe] = []
    # The probe's own pauses must not count: the 200k pre-built messages made this process's
    # full garbage collections take 100-150 ms, measured as flow latency.
    gc.freeze()
    gc.disable()

    def probe(n: int, wait_s: float) -> float | None:
        """Milliseconds until probe ``n`` shows in the online store (None: not in wait_s)."""
        user = f"probe-{n % 20}"
        stamp = datetime.now(UTC).isoformat(timespec="microseconds")
        event = {
            "event_id": f"probe-{uuid.uuid4().hex}",
            "event_time": stamp,
            "user_id": user,
            "session_id": f"ps-{n}",
            "action": "view",
            "sku": PROBE_SKU,
        }
        sent = time.perf_counter()
        producer.produce(s.topic(USER_ACTIVITY), value=orjson.dumps(event), key=user.encode())
        producer.poll(0)
        expected = datetime.fromisoformat(stamp).isoformat(timespec="milliseconds")
        key, value = users.key(user), encode_value("string", expected)
        while time.perf_counter() - sent < wait_s:
            if client.hget(key, stamp_field) == value:  # type: ignore[arg-type,comparison-overlap]
                return (time.perf_counter() - sent) * 1000
            exited = [f"{f.pid} ({f.returncode})" for f in flows if f.poll() is not None]
            if exited:  # a probe would never show: end the run (and clean up) now
                raise RuntimeError(f"flow process exited during the run: {', '.join(exited)}")
            time.sleep(0.001)
        return None

    try:
        # start-up: until a first probe shows, so that a slow start never counts as latency
        if probe(-1, STARTUP_WAIT_S) is None:
            raise RuntimeError(f"the flow showed no probe within {STARTUP_WAIT_S:.0f} s")
        loader = threading.Thread(target=background, daemon=True)
        started = time.perf_counter()
        cpu_before = sum(cpu_seconds(f.pid) for f in flows)
        loader.start()
        time.sleep(2)
        for n in range(probes):
            at = time.perf_counter() - started
            seen = probe(n, PROBE_WAIT_S)
            cpu = sum(cpu_seconds(f.pid) for f in flows) - cpu_before
            # not seen in time: counted at the bound, not left out of the percentiles
            latency = PROBE_WAIT_S * 1000 if seen is None else seen
            samples.append(Probe(round(at, 3), round(latency, 2), produced, round(cpu, 2)))
            time.sleep(0.02)
    finally:
        gc.enable()
        gc.unfreeze()
        stop.set()
    return samples


def figures(seen: list[Probe], load_s: float) -> dict[str, float]:
    """A freshness run's figures: its probes' latency percentiles, how many were missed, the
    same for the probes sent while the load ran (``load_s`` seconds; the probes after it take
    ~20 ms and are most of a run's when the flow falls behind, since each waits for the one
    before), and the flow's CPU per load event produced by the last probe (a lower bound when
    probes were missed: the flow had not yet processed them all)."""
    lat = [p.latency_ms for p in seen]
    in_load = [p.latency_ms for p in seen if p.at_s < load_s]
    last = seen[-1]
    return {
        "p50_ms": percentile(lat, 50),
        "p90_ms": percentile(lat, 90),
        "p99_ms": percentile(lat, 99),
        "missed": sum(x >= PROBE_WAIT_S * 1000 for x in lat),
        "load_probes": len(in_load),
        "load_p50_ms": percentile(in_load, 50),
        "load_p90_ms": percentile(in_load, 90),
        "cpu_us_per_event": last.flow_cpu_s / max(last.produced, 1) * 1e6,
    }


def timed_freshness(
    base: Settings, workdir: Path, tag: str, probes: int, load_s: float, code: Path | None = None
) -> tuple[dict[str, float], list[Probe]]:
    """One process's freshness run at LOAD_RATE for ``load_s`` seconds (``code``: the folder
    of the flow's source; None: this checkout): its :func:`figures` with the machine's
    1-minute load average as it ended, and its probes."""
    seen = freshness(base, workdir, tag, probes, int(LOAD_RATE * load_s), LOAD_RATE, code=code)
    return {**figures(seen, load_s), "load_1m": round(os.getloadavg()[0], 2)}, seen


def freshness_only(base: Settings, workdir: Path, mode: Mode) -> None:
    """``--only freshness``: the one-process run at LOAD_RATE alone, each repeat, with the
    machine's 1-minute load average as it ended; prints the figures and their medians and
    writes no results, but every probe of every run to a JSON file (printed): a few minutes
    instead of the whole benchmark, to see what the slow probes waited for."""
    repeats, probes, load_s = mode.size(REPEATS, 1), mode.size(PROBES, 10), mode.size(LOAD_S, 1)
    runs: dict[str, list[float]] = {}
    every: list[list[dict[str, float]]] = []
    for repeat in range(repeats):
        seen, probed = timed_freshness(base, workdir, f"{uuid.uuid4().hex[:6]}f", probes, load_s)
        every.append([p._asdict() for p in probed])
        for key, value in seen.items():
            runs.setdefault(key, []).append(value)
        print_repeat(repeat, repeats, runs)
    shown = ", ".join(f"{k}={median(v):,.1f}" for k, v in runs.items())
    trace = Path(tempfile.mkstemp(prefix="tillflow-freshness-", suffix=".json")[1])
    trace.write_bytes(orjson.dumps(every))
    print(f"medians: {shown} (no results written; the probes: {trace})")


def main(mode: Mode, only: str | None = None) -> None:
    events_n, repeats = mode.size(EVENTS, 2_000), mode.size(REPEATS, 1)
    base = Settings(environment="test")
    require_kafka(base)
    require_redis(base)
    workdir = Path(tempfile.mkdtemp(prefix="tillflow-bench-"))
    if only == "freshness":
        try:
            freshness_only(base, workdir, mode)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    runs: dict[str, list[float]] = {
        k: []
        for k in (
            "events_per_s_1proc",
            "events_per_s_2proc",
            "raw_consume_events_per_s",
            "startup_s",
            "freshness_p50_ms",
            "freshness_p99_ms",
            "freshness_missed",
            "freshness_2proc_p50_ms",
            "freshness_2proc_p99_ms",
            "freshness_2proc_missed",
            "freshness_sustained_rate",
            "freshness_sustained_p50_ms",
            "freshness_sustained_p99_ms",
            "freshness_sustained_missed",
            "freshness_cpu_us_per_event",
            "exchange_items_per_event",
            "exchange_bytes_per_event",
            "exchange_us_per_event",
        )
    }
    written: list[Settings] = []  # every variant whose keys a run may have left in Redis
    try:
        for repeat in range(repeats):
            tag = uuid.uuid4().hex[:6]
            data = variant(base, f"{tag}", workdir)
            empty = variant(base, f"{tag}e", workdir)
            written += [data, empty]
            ensure_topics(data)
            ensure_topics(empty)
            report = asyncio.run(run_shop(data, ShopConfig(), RunOptions(max_events=events_n)))
            store_catalogue(empty, Shop(ShopConfig()).catalogue())
            startup = run_flow(empty, 1)
            runs["startup_s"].append(startup)
            one = run_flow(data, 1)
            runs["events_per_s_1proc"].append(report.events / (one - startup))
            two_settings = data.model_copy(
                update={
                    "redis_prefix": f"bench-{tag}2:",
                    "lake_dir": workdir / f"{tag}2" / "lake",
                    "recovery_dir": workdir / f"{tag}2" / "recovery",
                }
            )
            written.append(two_settings)
            store_catalogue(two_settings, Shop(ShopConfig()).catalogue())
            two = run_flow(two_settings, 2)
            runs["events_per_s_2proc"].append(report.events / (two - startup))
            runs["raw_consume_events_per_s"].append(raw_consume(data, report.events))
            exchange = exchange_cost(base, mode.size(20_000, 1_000))
            for key, value in zip(("items", "bytes", "us"), exchange, strict=True):
                runs[f"exchange_{key}_per_event"].append(value)
            probes, load_s = mode.size(PROBES, 10), mode.size(LOAD_S, 1)
            sustained = round(min(LOAD_RATE, SUSTAINED * runs["events_per_s_1proc"][-1]), -2)
            runs["freshness_sustained_rate"].append(sustained)
            for i, (name, rate, processes) in enumerate(
                (
                    ("freshness", LOAD_RATE, 1),
                    ("freshness_2proc", LOAD_RATE, 2),
                    ("freshness_sustained", sustained, 1),
                )
            ):
                load_n = int(rate * load_s)
                run = freshness(base, workdir, f"{tag}f{i}", probes, load_n, rate, processes)
                seen = figures(run, load_s)
                for figure in ("p50_ms", "p99_ms", "missed"):
                    runs[f"{name}_{figure}"].append(seen[figure])
                if name == "freshness":  # the flow's CPU per load event, while it ran
                    runs["freshness_cpu_us_per_event"].append(seen["cpu_us_per_event"])
            for s in (data, empty):
                delete_topics(s, [s.topic(t) for t in ALL_TOPICS])
            while written:
                drop_keys(written.pop())
            print_repeat(repeat, repeats, runs)
    finally:
        for s in written:
            drop_keys(s)
        shutil.rmtree(workdir, ignore_errors=True)
    write_medians(
        "stream",
        runs,
        ("ratio_to_raw_consume", "events_per_s_1proc", "raw_consume_events_per_s"),
        {"repeats": repeats, "events": events_n, "input_partitions": INPUT_PARTITIONS},
        mode,
        more_ratios=(("scaling_2proc", "events_per_s_2proc", "events_per_s_1proc"),),
    )


def parse_args(argv: Sequence[str] | None = None) -> tuple[Mode, str | None]:
    """The mode (:func:`~benchmarks.common.parse_mode`) and the phase ``--only`` names (None:
    the whole run)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--only", choices=("freshness",))
    known, rest = parser.parse_known_args(argv)
    return parse_mode(__doc__, rest), known.only


if __name__ == "__main__":
    main(*parse_args())
