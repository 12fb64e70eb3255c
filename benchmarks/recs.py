"""Recommendation quality through the real flow -> benchmarks/results/recs.json.

For each interaction log (benchmarks/recs_data.py: the simulator's shop and MovieLens-100k
from the ``recbole`` wheel), each user's target is held out (leave-last-out; users alternate
between a *discover* and an *again* holdout). What remains is written as JSON lines and
streamed into Kafka by ``ingest.replay`` (what ``tillflow replay`` runs), one topic prefix per
data set; the dataflow runs over it to the end of the topics (one process, as
``tillflow flows run --once``) and the lists are read back from Redis
(``schemas.recommendations.StoredLists``). Two baselines come from the same sent events in
the same run: the most popular items the user has not touched, and batch item-kNN.

Per data set: ``users`` (targets evaluated), ``hr_at_10_discover`` and
``ndcg_at_10_discover`` (discover users: is the target in the discover list?),
``hr_at_10_again`` (again users whose target is a repeat: is it in the buy-again list?),
``hr_at_10_popularity_unseen``, ``hr_at_10_item_knn`` (discover users), and
``discover_vs_best_baseline``. ``--smoke`` runs a few hundred users of each log and writes
``recs.smoke.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import orjson
import redis

from benchmarks.common import RESULTS
from benchmarks.recs_data import (
    Interaction,
    Split,
    hit_and_ndcg,
    item_knn,
    leave_last_out,
    movielens_100k,
    popularity_unseen,
    simulator_log,
)
from benchmarks.stream import run_flow, variant
from flows.catalogue import store_catalogue
from infra.readiness import require_kafka, require_redis
from infra.stack.topics import delete_topics, ensure_topics
from ingest.replay import replay
from schemas.catalogue import CatalogueItem
from schemas.recommendations import StoredLists
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, ORDERS, USER_ACTIVITY
from simulator.config import ShopConfig
from simulator.shop import Shop

SPAN = timedelta(hours=2)  # a log's event times are spread over the SPAN before now
SIMULATOR = ShopConfig(shoppers=1_000, sessions_per_day=3_000)
SIMULATOR_DAYS = 7
SMOKE_USERS = 150


def to_jsonl(
    log: list[Interaction], catalogue: dict[str, CatalogueItem], workdir: Path
) -> dict[str, Path]:
    """The interactions as contract events, one JSON-lines file per topic, in time order.

    Event times keep the log's order and relative spacing, squeezed into the :data:`SPAN`
    before now (the flow sees recent events, as in production).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    first, last = log[0].t, log[-1].t
    end = datetime.now(UTC) - timedelta(minutes=1)
    scale = SPAN.total_seconds() / max(1.0, last - first)
    files = {
        USER_ACTIVITY.name: workdir / "user-activity.jsonl",
        ORDERS.name: workdir / "orders.jsonl",
    }
    handles = {name: path.open("wb") for name, path in files.items()}
    try:
        for n, i in enumerate(log):
            stamp = (end - SPAN + timedelta(seconds=(i.t - first) * scale)).isoformat()
            if i.kind == "purchase":
                price = catalogue[i.sku].list_price if i.sku in catalogue else 1.0
                event: dict[str, Any] = {
                    "event_id": f"recs-{n}", "event_time": stamp, "order_id": f"o-{n}",
                    "user_id": i.user, "store_id": "web",
                    "lines": [{"sku": i.sku, "quantity": 1, "unit_price": f"{price:.2f}"}],
                }  # fmt: skip
                handles[ORDERS.name].write(orjson.dumps(event) + b"\n")
            else:
                event = {"event_id": f"recs-{n}", "event_time": stamp, "user_id": i.user,
                         "session_id": f"s-{i.user}", "action": i.kind, "sku": i.sku}  # fmt: skip
                handles[USER_ACTIVITY.name].write(orjson.dumps(event) + b"\n")
    finally:
        for h in handles.values():
            h.close()
    return files


def through_flow(
    base: Settings, workdir: Path, split: Split, catalogue: dict[str, CatalogueItem]
) -> tuple[dict[str, StoredLists], dict[str, float]]:
    """Replay ``split.sent`` into fresh topics, run the flow to the end, read the lists."""
    tag = uuid.uuid4().hex[:6]
    s = variant(base, f"recs-{tag}", workdir)
    ensure_topics(s)
    client = redis.Redis.from_url(s.redis_url)
    try:
        store_catalogue(s, catalogue.values())
        files = to_jsonl(split.sent, catalogue, workdir / tag)
        produced = rejected = 0
        started = time.perf_counter()
        for topic, path in files.items():
            report = asyncio.run(replay(s, path, next(t for t in ALL_TOPICS if t.name == topic)))
            produced += report.produced
            rejected += len(report.rejected)
        replayed = time.perf_counter() - started
        seconds = run_flow(s, 1)
        users = [t.user for t in split.targets]
        raw = cast(list[bytes | None], client.mget([s.keys.recommendations(u) for u in users]))
        lists = {
            u: StoredLists.model_validate_json(v) for u, v in zip(users, raw, strict=True) if v
        }
        keys = list(client.scan_iter(f"{s.redis_prefix}*", count=10_000))
        for start in range(0, len(keys), 10_000):
            client.delete(*keys[start : start + 10_000])
    finally:
        client.close()
        delete_topics(s, [s.topic(t) for t in ALL_TOPICS])
    return lists, {"produced": produced, "rejected": rejected, "replay_s": replayed,
                   "flow_s": seconds}  # fmt: skip


def evaluate(split: Split, lists: dict[str, StoredLists]) -> dict[str, Any]:
    discover_users = [t for t in split.targets if t.kind == "discover"]
    again_users = [t for t in split.targets if t.kind == "again"]
    names = [t.user for t in discover_users]
    popular = popularity_unseen(split.sent, names)
    knn = item_knn(split.sent, names)
    hits, gains, pop_hits, knn_hits = [], [], [], []
    for t in discover_users:
        stored = lists.get(t.user)
        found = [i.sku for i in stored.discover] if stored else []
        hit, gain = hit_and_ndcg(found, t.target)
        hits.append(hit)
        gains.append(gain)
        pop_hits.append(hit_and_ndcg(popular[t.user], t.target)[0])
        knn_hits.append(hit_and_ndcg(knn[t.user], t.target)[0])
    again_hits = []
    for t in again_users:
        stored = lists.get(t.user)
        again_hits.append(
            hit_and_ndcg([i.sku for i in stored.again] if stored else [], t.target)[0]
        )

    def mean(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 4) if values else None

    hr, hr_pop, hr_knn = mean(hits), mean(pop_hits), mean(knn_hits)
    best = max(hr_pop or 0.0, hr_knn or 0.0)
    return {
        "users": len(split.targets),
        "hr_at_10_discover": hr,
        "ndcg_at_10_discover": mean(gains),
        "hr_at_10_again": mean(again_hits),
        "hr_at_10_popularity_unseen": hr_pop,
        "hr_at_10_item_knn": hr_knn,
        "discover_vs_best_baseline": round(hr / best, 4) if hr is not None and best else None,
        "discover_users": len(discover_users),
        "again_users": len(again_users),
        "users_with_lists": sum(1 for t in split.targets if t.user in lists),
    }


def movielens_catalogue(categories: dict[str, str]) -> dict[str, CatalogueItem]:
    return {sku: CatalogueItem(sku=sku, category=cat, list_price=10.0, unit_cost=5.0)
            for sku, cat in categories.items()}  # fmt: skip


def subset(log: list[Interaction], users: int) -> list[Interaction]:
    keep = set(sorted({i.user for i in log})[:users])
    return [i for i in log if i.user in keep]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few hundred users per log")
    args = parser.parse_args()
    base = Settings(environment="test")
    require_kafka(base)
    require_redis(base)
    started = time.perf_counter()
    days = 1 if args.smoke else SIMULATOR_DAYS
    sim_log, _ = simulator_log(SIMULATOR, days)
    ml_log, ml_categories = movielens_100k()
    logs = {
        "simulator": (sim_log, {c.sku: c for c in Shop(SIMULATOR).catalogue()}),
        "movielens_100k": (ml_log, movielens_catalogue(ml_categories)),
    }
    workdir = Path(tempfile.mkdtemp(prefix="tillflow-recs-"))
    datasets: dict[str, Any] = {}
    runs: dict[str, Any] = {}
    try:
        for name, (log, catalogue) in logs.items():
            if args.smoke:
                log = subset(log, SMOKE_USERS)
            split = leave_last_out(log)
            lists, run = through_flow(base, workdir, split, catalogue)
            datasets[name] = evaluate(split, lists)
            runs[name] = {**run, "interactions_sent": len(split.sent)}
            print(name, json.dumps(datasets[name]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    payload = {
        "datasets": datasets,
        "meta": {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "runs": {**runs, "smoke": args.smoke, "seconds": time.perf_counter() - started,
                     "simulator": {"days": days, "seed": SIMULATOR.seed,
                                   "shoppers": SIMULATOR.shoppers,
                                   "sessions_per_day": SIMULATOR.sessions_per_day}},
        },
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / ("recs.smoke.json" if args.smoke else "recs.json")
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
