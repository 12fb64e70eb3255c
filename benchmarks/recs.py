"""Recommendation quality through the real flow -> benchmarks/results/recs.json.

For each interaction log (benchmarks/recs_data.py: the simulator's shop and MovieLens-100k
from the ``recbole`` wheel), each user's target is held out (leave-last-out; users alternate
between a *discover* and an *again* holdout). What remains becomes contract events (validated
as the ingestion API and ``tillflow replay`` validate them), produced in time order to fresh
topics at :data:`RATE` events per second while the dataflow (one process, as
``tillflow flows run``) tails them. Once a last event on every partition has been processed,
each target user's lists are read by the API's own read (``api.recommendations.read_shopper``):
buy again as the flow stored it (``schemas.serving.StoredShopper``), ordered over the
popularity list, and discover built from the stored shopper and the neighbours published by
then (``api/discover.py``). Two baselines come from the same sent
events in the same run: the most popular items the user has not touched, and batch item-kNN.

The replay pauses to serve discover lists through the API's reads; a ranker trained on what
shoppers chose from them ranks the discover users' lists as the API does
(``benchmarks/recs_ranker.py``).

Per data set: ``users`` (targets evaluated), ``hr_at_10_discover`` and
``ndcg_at_10_discover`` (discover users: is the target in the discover list as the API serves
it: ranked when a ranker was trained and passed the batch training's order gate,
``discover_served`` says which; the ``*_ranked``, ``*_ranked_from_100`` and ``*_unranked`` keys
give each),
``hr_at_10_again`` (again users whose target is a repeat: is it in the buy-again list?),
``hr_at_10_popularity_unseen``, ``hr_at_10_item_knn`` (discover users), and
``discover_vs_best_baseline``. What limits discover: ``recall_at_100_discover`` (is the target
among the first :data:`DEPTH` of the same list: how far the candidate sources reach, against
their order's HR@10) and ``hr_at_10_item_knn_only`` (discover users whose target item-kNN's
top-10 holds and discover's does not). ``--smoke`` runs 50 users of each log, results in a temporary
folder (benchmarks.common.smoke_results).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import redis
import redis.asyncio as aioredis
from confluent_kafka import Producer

from api.discover import read_popularity
from api.features import FeatureReads
from api.recommendations import read_shopper
from benchmarks.common import Mode, meta
from benchmarks.recs_data import (
    Interaction,
    Split,
    Target,
    hit_and_ndcg,
    item_knn,
    leave_last_out,
    movielens_100k,
    popularity_unseen,
    simulator_log,
)
from benchmarks.recs_ranker import (
    POOL,
    SERVE_AT,
    SERVED_DEPTH,
    Ranked,
    Served,
    factor_reads,
    next_users,
    rank_phase,
    served,
)
from benchmarks.stream import env_of, variant
from flows.catalogue import store_catalogue
from flows.run import init_recovery, process_commands
from infra.readiness import require_kafka, require_redis
from infra.stack.topics import delete_topics, ensure_topics
from ingest.validation import parse_one
from online_models.factors import WEIGHTS, factors_path, fit_item_factors, save_factors
from schemas.catalogue import CatalogueItem
from schemas.event_time import EventTimePolicy
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, ORDERS, USER_ACTIVITY, Topic
from simulator.config import ShopConfig
from simulator.shop import Shop

SPAN = timedelta(hours=2)  # a log's event times are spread over the SPAN before now
SIMULATOR = ShopConfig(shoppers=1_000, sessions_per_day=3_000)
SIMULATOR_DAYS = 7
SMOKE_USERS = 50
SMOKE_SERVE_AT = (0.6, 0.8)  # two pauses: lists to train on, later ones to gate on
RATE = 1_000.0  # events/s offered: a live pace the flow keeps up with on a loaded machine
DRAIN_TIMEOUT_S = 900.0
DEPTH = 100  # discover read this deep for its recall; its top-10 is the list served
POLICY = EventTimePolicy()  # the ingestion API's: event times up to now (plus skew) pass


class Lists(NamedTuple):
    again: list[str]
    discover: list[str]  # DEPTH long: the top-10 is what a k=10 request serves


def contract_events(
    log: list[Interaction], catalogue: dict[str, CatalogueItem]
) -> list[tuple[Topic, bytes, bytes]]:
    """The interactions as contract events ``(topic, key, JSON)``, in time order: views,
    carts and wishlists as ``user-activity``, purchases as one-line ``orders``.

    Event times keep the log's order and relative spacing, squeezed into the :data:`SPAN`
    before now (the flow sees recent events, as in production).
    """
    first, last = log[0].t, log[-1].t
    end = datetime.now(UTC) - timedelta(minutes=1)
    scale = SPAN.total_seconds() / max(1.0, last - first)
    out = []
    for n, i in enumerate(log):
        stamp = (end - SPAN + timedelta(seconds=(i.t - first) * scale)).isoformat()
        if i.kind == "purchase":
            price = catalogue[i.sku].list_price if i.sku in catalogue else 1.0
            body: dict[str, Any] = {
                "event_id": f"recs-{n}",
                "event_time": stamp,
                "order_id": f"o-{n}",
                "user_id": i.user,
                "store_id": "web",
                "lines": [{"sku": i.sku, "quantity": 1, "unit_price": f"{price:.2f}"}],
            }
            topic = ORDERS
        else:
            body = {
                "event_id": f"recs-{n}",
                "event_time": stamp,
                "user_id": i.user,
                "session_id": f"s-{i.user}",
                "action": i.kind,
                "sku": i.sku,
            }
            topic = USER_ACTIVITY
        event = parse_one(topic, orjson.dumps(body), POLICY)  # the ingestion API's validation
        out.append((topic, topic.key_of(event) or b"", orjson.dumps(body)))
    return out


def replay_at(s: Settings, events: list[tuple[Topic, bytes, bytes]], rate: float) -> float:
    """Produce ``events`` in order at ``rate`` per second; the seconds it took."""
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap, "linger.ms": 5})
    started = time.perf_counter()
    for n, (topic, key, value) in enumerate(events):
        producer.produce(s.topic(topic), value=value, key=key)
        if n % 200 == 0:
            producer.poll(0)
            ahead = n / rate - (time.perf_counter() - started)
            if ahead > 0:
                time.sleep(ahead)
    producer.flush(60)
    return time.perf_counter() - started


def sentinels(s: Settings, sku: str, tag: str) -> list[str]:
    """One event on every input partition, by a user of its own: once each of them has a
    list, the flow has processed everything produced before."""
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap})
    users = []
    stamp = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    for topic in (USER_ACTIVITY, ORDERS):
        for p in range(s.partitions(topic)):
            user = f"recs-{tag}-{topic.name}-{p}"
            body: dict[str, Any] = {
                "event_id": f"{tag}-{user}",
                "event_time": stamp,
                "user_id": user,
            }
            if topic is ORDERS:
                body |= {
                    "order_id": f"{tag}-{p}",
                    "store_id": "web",
                    "lines": [{"sku": sku, "quantity": 1, "unit_price": "1.00"}],
                }
            else:
                body |= {"session_id": user, "action": "view", "sku": sku}
            producer.produce(s.topic(topic), value=orjson.dumps(body), partition=p)
            users.append(user)
    producer.flush(30)
    return users


def wait_for(
    client: redis.Redis, s: Settings, flow: subprocess.Popen[bytes], users: list[str]
) -> float:
    """Wait until every one of ``users`` has lists; the seconds it took."""
    started = time.perf_counter()
    while not all(client.exists(s.keys.recommendations(u)) for u in users):
        if flow.poll() is not None:
            raise RuntimeError(f"the flow exited with {flow.returncode}")
        if time.perf_counter() - started > DRAIN_TIMEOUT_S:
            raise TimeoutError("the flow did not reach the end of the topics")
        time.sleep(0.5)
    return time.perf_counter() - started


def through_flow(
    base: Settings,
    split: Split,
    catalogue: dict[str, CatalogueItem],
    workdir: Path,
    rate: float,
    serve_at: tuple[float, ...] = SERVE_AT,
    dump: Path | None = None,
) -> tuple[dict[str, Lists], Ranked, dict[str, float]]:
    """Stream ``split.sent`` at ``rate`` into fresh topics while the flow tails them, pausing
    at ``serve_at`` (shares of the events) to serve lists; read the lists once the flow has
    processed everything, and rank the discover users' with a ranker trained on what was
    chosen from the served ones (``dump``: a folder for the served and ranked rows)."""
    tag = f"recs-{uuid.uuid4().hex[:6]}"
    s = variant(base, tag, workdir).model_copy(update={"registry_dir": workdir / tag / "models"})
    ensure_topics(s)
    client = redis.Redis.from_url(s.redis_url)
    store_catalogue(s, catalogue.values())
    events = contract_events(split.sent, catalogue)
    bounds = [0, *(int(f * len(events)) for f in serve_at), len(events)]
    init_recovery(s.recovery_dir, 1)
    flow = subprocess.Popen(
        process_commands(s, 1, 1, recovery=True)[0],
        env=env_of(s, tail=True),
        stdout=subprocess.DEVNULL,
    )
    shown: list[tuple[list[Served], list[Interaction]]] = []
    replayed = drained = factor_cpu_s = 0.0
    try:
        wait_for(client, s, flow, sentinels(s, split.sent[0].sku, "start"))  # the flow is up
        for n, (start, end) in enumerate(itertools.pairwise(bounds)):
            replayed += replay_at(s, events[start:end], rate)
            drained += wait_for(client, s, flow, sentinels(s, split.sent[end - 1].sku, f"p{n}"))
            factor_cpu_s += publish_factors(s, split.sent[:end])
            if end < len(events):
                after = split.sent[end : bounds[n + 2]]
                shown.append((asyncio.run(served(s, next_users(after))), after))
        lists = asyncio.run(served_lists(s, [t.user for t in split.targets]))
        discover = {t.user: t.target for t in split.targets if t.kind == "discover"}
        ranked = rank_phase(s, shown, discover, workdir, dump)
    finally:
        flow.terminate()
        flow.wait(60)
        keys = list(client.scan_iter(f"{s.redis_prefix}*", count=10_000))
        for start in range(0, len(keys), 10_000):
            client.delete(*keys[start : start + 10_000])
        client.close()
        delete_topics(s, [s.topic(t) for t in ALL_TOPICS])
    run = {
        "produced": len(events),
        "replay_s": replayed,
        "drain_s": drained,
        "factors_fit_cpu_s": round(factor_cpu_s, 2),
        "rate": rate,
    }
    return lists, ranked, run


def publish_factors(s: Settings, sent: list[Interaction]) -> float:
    """Item factors fitted on ``sent`` (what a batch run would read from the lake by then,
    weighted as ``batch/factors.py`` weighs silver) and published where the API follows them;
    the fit's CPU seconds."""
    started = time.process_time()
    items = fit_item_factors([(i.user, i.sku, WEIGHTS.get(i.kind, 1.0)) for i in sent])
    save_factors(items, factors_path(s.registry_dir, s.mlflow_model_prefix))
    return time.process_time() - started


async def served_lists(s: Settings, users: list[str]) -> dict[str, Lists]:
    """Each of ``users``' buy-again top-10 and discover top-:data:`DEPTH` as the API serves
    them: ``api.recommendations.read_shopper`` over one read of the popularity list (buy
    again ordered over it, discover built from the stored shopper; the first 10 of discover
    are the k=10 list: the same blend, cut later). A user the flow has not stored has none."""
    client = aioredis.Redis.from_url(s.redis_url)
    reads = FeatureReads.create(s)
    graph = factor_reads(s)
    try:
        out = {}
        popularity = await read_popularity(client, s.keys)
        for user in users:
            shopper = await read_shopper(
                client, s.keys, reads, user, False, DEPTH, popularity, graph
            )
            if shopper.known:
                out[user] = Lists([i.sku for i in shopper.again], [i.sku for i in shopper.discover])
        return out
    finally:
        await client.aclose()


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _ratio(hr: float | None, best: float) -> float | None:
    return round(hr / best, 4) if hr is not None and best else None


def _scored(found: dict[str, list[str]], targets: list[Target]) -> tuple[float | None, ...]:
    """HR@10 and NDCG@10 of ``found`` over ``targets`` (a user without a list misses)."""
    results = [hit_and_ndcg(found.get(t.user, []), t.target) for t in targets]
    return _mean([h for h, _ in results]), _mean([g for _, g in results])


def evaluate(split: Split, lists: dict[str, Lists], ranked: Ranked) -> dict[str, Any]:
    """The figures of one data set; the headline (``hr_at_10_discover``, ``ndcg_at_10_discover``,
    ``discover_vs_best_baseline``) is the discover list the API serves with the ranker
    trained here loaded (ranked from the ``depth_for(10)`` candidates it ranks), or the
    unranked list when no ranker could be trained or the order gate refused it
    (``discover_served`` says which; the ``*_ranked`` keys are there either way)."""
    discover_users = [t for t in split.targets if t.kind == "discover"]
    again_users = [t for t in split.targets if t.kind == "again"]
    names = [t.user for t in discover_users]
    popular = popularity_unseen(split.sent, names)
    knn = item_knn(split.sent, names)
    unranked = {u: one.discover for u, one in lists.items()}
    hr_unranked, ndcg_unranked = _scored(unranked, discover_users)
    hr_pop, _ = _scored(popular, discover_users)
    hr_knn, _ = _scored(knn, discover_users)
    reach, knn_only = [], []
    for t in discover_users:
        found = unranked.get(t.user, [])
        reach.append(hit_and_ndcg(found, t.target, DEPTH)[0])
        knn_only.append(
            hit_and_ndcg(knn[t.user], t.target)[0] * (1 - hit_and_ndcg(found, t.target)[0])
        )
    again_hits = [
        hit_and_ndcg(lists[t.user].again if t.user in lists else [], t.target)[0]
        for t in again_users
    ]
    best = max(hr_pop or 0.0, hr_knn or 0.0)
    out: dict[str, Any] = {
        "users": len(split.targets),
        "hr_at_10_discover": hr_unranked,
        "ndcg_at_10_discover": ndcg_unranked,
        "hr_at_10_again": _mean(again_hits),
        "hr_at_10_popularity_unseen": hr_pop,
        "hr_at_10_item_knn": hr_knn,
        "discover_vs_best_baseline": _ratio(hr_unranked, best),
        "discover_served": "unranked (no ranker could be trained)",
        "hr_at_10_discover_unranked": hr_unranked,
        "ndcg_at_10_discover_unranked": ndcg_unranked,
        "discover_unranked_vs_best_baseline": _ratio(hr_unranked, best),
        "recall_at_100_discover": _mean(reach),
        "hr_at_10_item_knn_only": _mean(knn_only),
        "discover_users": len(discover_users),
        "again_users": len(again_users),
        "users_with_lists": sum(1 for t in split.targets if t.user in lists),
    }
    if SERVED_DEPTH in ranked.lists:
        hr, ndcg = _scored(ranked.lists[SERVED_DEPTH], discover_users)
        hr_pool, ndcg_pool = _scored(ranked.lists[POOL], discover_users)
        if ranked.passed:
            out |= {
                "hr_at_10_discover": hr,
                "ndcg_at_10_discover": ndcg,
                "discover_vs_best_baseline": _ratio(hr, best),
                "discover_served": f"ranked from {SERVED_DEPTH} candidates (the API with a ranker)",
            }
        else:
            out["discover_served"] = "unranked (the order gate refused the ranker)"
        out |= {
            "hr_at_10_discover_ranked": hr,
            "ndcg_at_10_discover_ranked": ndcg,
            "discover_ranked_vs_best_baseline": _ratio(hr, best),
            f"hr_at_10_discover_ranked_from_{POOL}": hr_pool,
            f"ndcg_at_10_discover_ranked_from_{POOL}": ndcg_pool,
            f"discover_ranked_from_{POOL}_vs_best_baseline": _ratio(hr_pool, best),
        }
    return out


def movielens_catalogue(categories: dict[str, str]) -> dict[str, CatalogueItem]:
    return {
        sku: CatalogueItem(sku=sku, category=cat, list_price=10.0, unit_cost=5.0)
        for sku, cat in categories.items()
    }


def subset(log: list[Interaction], users: int) -> list[Interaction]:
    keep = set(sorted({i.user for i in log})[:users])
    return [i for i in log if i.user in keep]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="50 users per log")
    parser.add_argument(
        "--dump", type=Path, help="a folder for the ranker phase's rows (.npz), for analysis"
    )
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
            lists, ranked, run = through_flow(
                base,
                split,
                catalogue,
                workdir / name,
                RATE,
                SMOKE_SERVE_AT if args.smoke else SERVE_AT,
                args.dump / name if args.dump else None,
            )
            datasets[name] = evaluate(split, lists, ranked)
            runs[name] = {**run, "interactions_sent": len(split.sent), "ranker": ranked.run}
            print(name, json.dumps(datasets[name]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    payload = {
        "datasets": datasets,
        "meta": meta(
            {
                **runs,
                "smoke": args.smoke,
                "seconds": time.perf_counter() - started,
                "simulator_config": {
                    "days": days,
                    "seed": SIMULATOR.seed,
                    "shoppers": SIMULATOR.shoppers,
                    "sessions_per_day": SIMULATOR.sessions_per_day,
                },
            }
        ),
    }
    results = Mode(smoke=args.smoke).results
    results.mkdir(parents=True, exist_ok=True)
    path = results / "recs.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
