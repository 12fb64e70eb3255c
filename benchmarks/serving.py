"""Serving benchmark -> benchmarks/results/serving.json.

The API runs as its own process tree on 127.0.0.1 (``tillflow api``: a server and its worker
processes), over a Redis filled by the flows' own sinks; load comes from ``wrk`` (a separate
C process). Two kinds of load, in the same run:

- *paced*: each of ``c`` connections waits a pause of ``PACE_MS`` on average after every
  answer, so the offered rate is about the goal's (2,000 prices/s, 1,000 recommendations/s)
  whatever the server could do at most; the latency read there is the latency *at that
  rate*, which the goals name. The pauses are drawn from an exponential distribution (whole
  milliseconds, as wrk's ``delay()`` takes them), so each connection sends as a Poisson
  process would and the connections arrive independently, as many shoppers do. A fixed
  pause (``--pacing fixed``, the load of the runs before 2026-12-01) keeps them in lockstep:
  answered in one burst, they all wait the same pause and send again together, so most
  requests arrive in bursts of ``c`` and wait behind the rest of their burst
  (docs/scaling.md, *Where a hit's latency goes*).
- *saturating*: ``CONCURRENCY`` connections, each sending again as soon as it is answered:
  the most the API answers (``*_max_rps``), with the latency that queueing then adds.

Figures (each the median of ``Load.repeats`` runs):

- ``prices_rps``, ``prices_p50_ms``, ``prices_p99_ms``: paced ``GET /prices/{sku}`` over
  random skus, the default server (``TILLFLOW_API_SERVER``, ``TILLFLOW_API_WORKERS``) with
  its in-process cache (1 s TTL, invalidated by pub/sub); ``prices_nocache_*`` the same with
  the cache off (every request reads Redis); ``prices_max_rps``, ``prices_max_p99_ms``
  saturating.
- ``recs_*``: the same for ``GET /recommendations/{user}`` over random shoppers (ranked by
  the ONNX ranker when the registry has one), the paced run right after a warm-up at its own
  rate and measured over ``Load.lists_seconds`` (20 s: the p99 of ~22,000 lists, not ~55 of
  a 5 s window's slowest).
- ``prices_cpu_ms``, ``recs_cpu_ms``: CPU time of the whole API process tree per answered
  request during the paced runs (user + system, from ``/proc``): the per-request cost, which
  a loaded machine stretches far less than latency. A price read at the paced rate is a mix
  of cache hits (under uvicorn sent by its protocol, ``api/server.py``; under Granian before
  FastAPI's routing, ``api/hot_prices.py``) and misses (500
  skus, each read again once per 1 s cache interval), so its cost falls as the rate rises.
- ``prices_loadgen_cpu_ms``, ``recs_loadgen_cpu_ms``: wrk's own CPU time per answered request
  in the same paced runs. It shares the 2 cores with the API, so it is what the load costs
  the machine beside the API's work. wrk (C, one thread, a Lua script choosing the ids) is the
  cheapest generator measured here: an open-loop constant-rate one (vegeta, Go) took about
  six times its CPU per request on these cores. What caps the paced rate below the goal's is
  not the generator's CPU but the pacing itself: each connection sends its next request
  ``PACE_MS`` after an answer (a closed loop), so the rate offered is about connections ÷
  (``PACE_MS`` + latency), and it reaches the goal only while an answer takes at most the
  route's ``EXPECTED_MS``; a slower API is offered less, and the figures say what it got.
- ``floor_p50_ms``: the same request's work without HTTP: one pipelined Redis round trip for
  the price state plus one ONNX run of the demand model (one row), measured in-process;
  ``prices_p50_vs_floor`` = prices_p50_ms / floor_p50_ms.
- ``prices_cache_vs_nocache_p99`` = prices_p99_ms / prices_nocache_p99_ms: the cache must
  never make the tail worse (≤ 1).
- ``ws_fanout_p99_ms``: a price change written by the flows' PriceWriter (price-updates topic,
  Redis, pub/sub) → received by each of 1,000 websocket clients (another process).
- ``<server>_<n>w_<figure>``: the paced and saturating figures and CPU per request of every
  server and worker count in ``SERVERS`` (uvicorn and Granian, one and two workers), each
  started in turn in the same repeat, so the choice of the default reads off one run.

``--pacing fixed`` paces with the fixed pause instead (to compare the two loads).
``--only prices`` runs the paced price phase alone (the default server, its cache on) and the
floor, each repeat, and prints their figures and the ratio of their medians without writing
the results: a minute instead of the whole run, to compare two versions of the price path in
turn (docs/scaling.md). ``--only lists`` does the same for the paced lists phase (its warm-up,
then its window), on an API started for it each repeat.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import orjson
import redis

from api.features import FeatureReads
from api.tokens import issue_token
from benchmarks.common import (
    Mode,
    free_port,
    median,
    parse_mode,
    percentile,
    print_repeat,
    tree_cpu_s,
    write_medians,
)
from featurestore.layout import sku_layout
from flows.catalogue import store_catalogue
from flows.records import UserSignal
from flows.sinks.prices import PriceWriter
from flows.sinks.serving import ItemGraphWriter, RecommendationWriter
from flows.steps import ShopperState
from infra.readiness import require_kafka, require_redis
from infra.stack.topics import delete_topics, ensure_topics
from online_models.pricer import PriceChange
from registry import ModelRegistry
from schemas.serving import PricingState
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS
from simulator.config import ShopConfig
from simulator.shop import Shop

CONCURRENCY = 4  # saturating load: requests in flight
PACE_MS = 4  # paced load: each connection's wait after an answer (wrk's delay(), whole ms)
# About one answer's latency as wrk reads it, per route, to size the paced connections so
# that they offer at least the goal's rate: at 0.5 ms a price, 9 connections offered only
# ~1,700 of the 2,000 prices/s; at 1.0 ms a list, 5 offered ~890-940 of the 1,000 lists/s
# (a quiet list's p50 is ~1.2 ms, and wrk adds its own time between answer and pause).
PRICES, LISTS = "/prices/", "/recommendations/"  # the routes measured, as wrk's path prefixes
EXPECTED_MS = {PRICES: 1.0, LISTS: 2.0}


@dataclass(frozen=True)
class Server:
    """One way to serve the API: ``tillflow api --server name --workers n``."""

    name: str
    workers: int

    @property
    def label(self) -> str:
        return f"{self.name}_{self.workers}w"


SERVERS = (Server("uvicorn", 1), Server("uvicorn", 2), Server("granian", 1), Server("granian", 2))


@dataclass(frozen=True)
class Load:
    """How much load each run applies (``SMOKE``: the ``--smoke`` size)."""

    repeats: int = 3
    seconds: int = 5
    shoppers: int = 2_000
    ws_clients: int = 1_000
    ws_changes: int = 20
    prices_per_s: int = 2_000  # the goals' rates, offered by the paced runs
    recs_per_s: int = 1_000
    servers: tuple[Server, ...] = SERVERS
    pacing: str = "exponential"  # the paced runs' pauses (WRK_PACE)
    # The paced lists' measured window: at ~1,100 lists/s, 5 s held ~5,500 lists, so their
    # p99 rested on the ~55 slowest (docs/scaling.md, *The lists in the whole benchmark*)
    lists_seconds: int = 20


FULL = Load()
SMOKE = Load(
    repeats=1,
    seconds=1,
    lists_seconds=1,
    shoppers=200,
    ws_clients=20,
    ws_changes=3,
    servers=(Server("uvicorn", 1), Server("granian", 2)),
)

WRK_SCRIPT = """
local ids = {}
for line in io.lines("%s") do ids[#ids + 1] = line end
math.randomseed(42)
local headers = {["Authorization"] = "%s"}
request = function()
  return wrk.format("GET", "%s" .. ids[math.random(#ids)], headers)
end
"""
# each connection's pause after an answer, in wrk's whole milliseconds (mean PACE_MS)
WRK_PACE = {
    "exponential": """
delay = function()
  return math.floor(-%d * math.log(1 - math.random()) + 0.5)
end
""",
    "fixed": """
delay = function()
  return %d
end
""",
}
PACINGS = tuple(WRK_PACE)


def paced_connections(per_s: int, expected_ms: float) -> int:
    """Connections that offer about ``per_s`` requests/s when each waits ``PACE_MS`` after
    an answer of about ``expected_ms``.

    >>> paced_connections(2_000, EXPECTED_MS[PRICES])
    10
    >>> paced_connections(1_000, EXPECTED_MS[LISTS])
    6
    """
    return max(1, math.ceil(per_s * (PACE_MS + expected_ms) / 1000))


def raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def fill_redis(settings: Settings, load: Load) -> tuple[list[str], list[str]]:
    """Catalogue, a published price per product, neighbours and shoppers' lists."""
    catalogue = Shop(ShopConfig()).catalogue()
    store_catalogue(settings, catalogue)
    skus = [c.sku for c in catalogue]
    rng = random.Random(7)
    now = time.time()
    prices = PriceWriter(settings)
    prices.write_batch(
        [
            PriceChange(
                sku=c.sku,
                price=round(c.list_price * 1.02, 2),
                previous_price=c.list_price,
                reason="benchmark",
                model_version="pricer:bench",
                t=now,
                sequence=1,
            )
            for c in catalogue
        ]
    )
    prices.close()
    graph = ItemGraphWriter(settings)
    graph.write_batch(
        [(s, [(n, rng.random()) for n in rng.sample(skus, 20)]) for s in skus]
        + [(c.sku, (c.category, rng.random() * 100)) for c in catalogue]
    )
    graph.close()
    users = [f"u-bench{i:05d}" for i in range(load.shoppers)]
    categories = {c.sku: c.category for c in catalogue}
    recos = RecommendationWriter(settings)
    for start in range(0, load.shoppers, 200):
        shoppers = []
        for u in users[start : start + 200]:  # each viewed five products, as the flow learns it
            state = ShopperState(u)
            for i, sku in enumerate(rng.sample(skus, 5)):
                state.apply(UserSignal("view", now + i, f"{u}-s", (sku,)), categories)
            shoppers.append(state.lists(categories, settings.recommendations_k))
        recos.write_batch(shoppers)
    recos.close()
    feats = redis.Redis.from_url(settings.redis_url)
    pipe = feats.pipeline(transaction=False)
    layout = sku_layout(settings)  # model features in Feast's layout, as the flows write them
    for s in skus:
        pricing = {"elasticity": -1.5 - rng.random(), "elasticity_std": 0.2, "observations": 30}
        model = {
            "units_24h": rng.randint(0, 40),
            "views_24h": rng.randint(10, 400),
            "min_competitor_price": 0.0,
            "on_hand": 100,
            "days_of_cover": 10.0,
        }
        pipe.hset(settings.keys.sku_features(s), mapping=PricingState.encode(pricing))
        pipe.hset(layout.key(s), mapping=layout.fields(model, time.time()))  # type: ignore[arg-type]
    pipe.execute()
    feats.close()
    return skus, users


def start_api(
    settings: Settings, port: int, cache_ttl_s: float, log: Path, server: Server = SERVERS[0]
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(Path.cwd()),
        "TILLFLOW_API_SERVER": server.name,
        "TILLFLOW_API_WORKERS": str(server.workers),
        "TILLFLOW_REDIS_PREFIX": settings.redis_prefix,
        "TILLFLOW_TOPIC_PREFIX": settings.topic_prefix,
        "TILLFLOW_API_PORT": str(port),
        "TILLFLOW_API_CACHE_TTL_S": str(cache_ttl_s),
        "TILLFLOW_RATE_LIMIT_PER_S": "1000000",
        "TILLFLOW_RATE_LIMIT_BURST": "1000000",
        "TILLFLOW_WS_MAX_PER_CLIENT": str(Load().ws_clients),  # every client is 127.0.0.1
        "TILLFLOW_REGISTRY_DIR": str(settings.registry_dir),
        "TILLFLOW_LOG_LEVEL": "warning",
        "TILLFLOW_MLFLOW_MODEL_PREFIX": settings.mlflow_model_prefix,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "api", "--port", str(port)],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        preexec_fn=raise_fd_limit,
        start_new_session=True,  # its own process group: stopped with every worker it starts
    )

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                return bool(orjson.loads(r.read())["ready"])
        except OSError:
            return False

    deadline = time.monotonic() + 180  # start-up is not measured; loaded cores make it slow
    while not healthy():
        if proc.poll() is not None or time.monotonic() > deadline:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            raise RuntimeError(f"the API did not become ready; see {log}")
        time.sleep(0.2)
    return proc


def wrk(
    url_prefix: str,
    ids: list[str],
    path: str,
    settings: Settings,
    seconds: int,
    per_s: int | None = None,
    pacing: str = "exponential",
    in_flight: int = CONCURRENCY,
) -> dict[str, float]:
    """wrk over ``path`` + a random id as an admin (recommendations need a credential; the
    token's check is part of what is measured): paced at about ``per_s`` requests/s, or
    saturating with ``in_flight`` requests in flight when ``per_s`` is None; ``pacing``
    names the paced pauses (``WRK_PACE``)."""
    token, _ = issue_token(settings, "admin", "bench", ["admin:read"], now=time.time())
    if per_s is None:
        connections, pace = in_flight, ""
    else:
        connections = paced_connections(per_s, EXPECTED_MS[path])
        pace = WRK_PACE[pacing] % PACE_MS
    with tempfile.TemporaryDirectory() as tmp:
        ids_file = Path(tmp) / "ids.txt"
        ids_file.write_text("\n".join(ids))
        script = Path(tmp) / "load.lua"
        script.write_text(WRK_SCRIPT % (ids_file, f"Bearer {token}", path) + pace)
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(script),
                url_prefix,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    answered = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    lat = {q: _ms(re.search(rf"\s{q}%\s+([\d.]+\w+)", out).group(1)) for q in (50, 99)}  # type: ignore[union-attr]
    return {
        "rps": rps,
        "requests": answered,
        "p50": lat[50],
        "p99": lat[99],
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's finished children (the load generator
    runs ``wrk`` to its end)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def measured(api: subprocess.Popen[bytes], run: Callable[[], dict[str, float]]) -> dict[str, float]:
    """``run()``'s figures plus ``cpu_ms``: the API's CPU time per request it answered, and
    ``loadgen_cpu_ms``: the load generator's own, on the same cores."""
    before, generator = tree_cpu_s(api.pid), children_cpu_s()
    figures = run()
    spent, generated = tree_cpu_s(api.pid) - before, children_cpu_s() - generator
    answered = max(1.0, figures["requests"])
    return {
        **figures,
        "cpu_ms": spent * 1000 / answered,
        "loadgen_cpu_ms": generated * 1000 / answered,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def floor_ms(settings: Settings, skus: list[str], n: int = 3_000) -> list[float]:
    """One request's work without HTTP: the pipelined Redis read plus one demand-model run."""
    from api.onnx_models import load

    current = ModelRegistry.from_settings(settings).current("demand")
    if current is None:
        raise SystemExit(
            f"no demand model in {settings.registry_dir}: run `python -m benchmarks.batch` "
            "first (make bench does), or `tillflow batch pipeline`"
        )
    model = load(current)
    row = np.zeros((1, max(1, len(model.features))), dtype=np.float32)
    client = redis.Redis.from_url(settings.redis_url)
    keys = settings.keys
    reads = FeatureReads.create(settings)
    rng = random.Random(3)
    out = []
    for _ in range(n):
        sku = rng.choice(skus)
        start = time.perf_counter()
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(keys.price(sku))
        pipe.hgetall(keys.sku_features(sku))
        pipe.hmget(reads.sku.key(sku), reads.price.fields)  # type: ignore[arg-type]
        pipe.hmget(keys.catalogue, [sku])
        pipe.execute()
        model.predict(row)
        out.append((time.perf_counter() - start) * 1000)
    client.close()
    return out


def fanout_ms(settings: Settings, port: int, skus: list[str], load: Load) -> list[float]:
    """Each client's delay (ms) for each of ``load.ws_changes`` changes.

    The writer writes one change before the clients connect: a new writer's first write
    waits for its Kafka connection and the topic's metadata (~60 ms), which the flows'
    long-lived writer pays once, and it would otherwise be the first change's delay for every
    client, 1 in 20 of the samples: the p99 itself."""
    writer = PriceWriter(settings)
    writer.write_batch([fanned_change(skus[0], 0, time.time())])
    clients = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.ws_clients",
            "--url",
            f"ws://127.0.0.1:{port}/ws/prices",
            "--clients",
            str(load.ws_clients),
            "--expect",
            str(load.ws_changes),
        ],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=raise_fd_limit,
    )
    assert clients.stdout is not None
    if clients.stdout.readline().strip() != "ready":
        raise RuntimeError("the websocket clients did not connect")
    time.sleep(1.0)
    for i in range(1, load.ws_changes + 1):
        writer.write_batch([fanned_change(skus[i % len(skus)], i, time.time())])
        time.sleep(0.25)
    writer.close()
    delays: list[float] = orjson.loads(clients.stdout.readline())
    clients.wait(60)
    if len(delays) != load.ws_clients * load.ws_changes:
        expected = load.ws_clients * load.ws_changes
        raise RuntimeError(f"expected {expected} messages, got {len(delays)}")
    return delays


def fanned_change(sku: str, i: int, t: float) -> PriceChange:
    """The fan-out benchmark's ``i``-th change (sequences above ``fill_redis``'s)."""
    return PriceChange(
        sku=sku,
        price=10.0 + i,
        previous_price=10.0,
        reason="fan-out benchmark",
        model_version="pricer:bench",
        t=t,
        sequence=100 + i,
    )


@contextmanager
def running_api(
    settings: Settings, cache_ttl_s: float, log: Path, server: Server
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The API served by ``server`` on a free port, and its URL; stopped with its workers."""
    port = free_port()
    api = start_api(settings, port, cache_ttl_s, log, server)
    try:
        yield api, f"http://127.0.0.1:{port}"
    finally:
        with suppress(ProcessLookupError):
            os.killpg(api.pid, signal.SIGTERM)
        try:
            api.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(api.pid, signal.SIGKILL)
            api.wait(30)


def record(runs: dict[str, list[float]], prefix: str, figures: dict[str, float]) -> None:
    """Append one run's figures under ``prefix``: rps, p50_ms, p99_ms, errors, cpu_ms."""
    names = {
        "rps": "rps",
        "p50": "p50_ms",
        "p99": "p99_ms",
        "errors": "errors",
        "cpu_ms": "cpu_ms",
        "loadgen_cpu_ms": "loadgen_cpu_ms",
    }
    for key, name in names.items():
        if key in figures:
            runs.setdefault(f"{prefix}_{name}", []).append(figures[key])


def exercise(
    runs: dict[str, list[float]],
    prefix: str,
    api: subprocess.Popen[bytes],
    url: str,
    ids: tuple[list[str], list[str]],
    settings: Settings,
    load: Load,
) -> None:
    """Paced and saturating prices and recommendations against one running API, each paced
    phase right after its own warm-up."""
    skus, users = ids
    for name, path, keys, paced in (
        ("prices", PRICES, skus, paced_prices),
        ("recs", LISTS, users, paced_lists),
    ):
        record(runs, f"{prefix}{name}", paced(api, url, keys, settings, load))
        most = wrk(url, keys, path, settings, load.seconds)
        record(runs, f"{prefix}{name}_max", {k: most[k] for k in ("rps", "p99", "errors")})


def paced_prices(
    api: subprocess.Popen[bytes], url: str, skus: list[str], settings: Settings, load: Load
) -> dict[str, float]:
    """The paced price phase, after its one-second warm-up."""
    wrk(url, skus, PRICES, settings, 1, 1_000, load.pacing)
    paced = partial(wrk, url, skus, PRICES, settings, load.seconds, load.prices_per_s, load.pacing)
    return measured(api, paced)


LISTS_WARM_S = 2  # the paced lists' warm-up, at their measured rate


def paced_lists(
    api: subprocess.Popen[bytes], url: str, users: list[str], settings: Settings, load: Load
) -> dict[str, float]:
    """The paced lists phase, right after a warm-up at its own rate.

    A shop that serves lists at this rate keeps its caches warm: each shopper's read and
    kept answers, the shared reads, the factor sources kept per profile. The lists' earlier
    warm-up (1 s at 500 lists/s, then the ~10 s of the price phases) let the window begin
    with every cached read expired, the prices' refresh-ahead still re-reading the last
    second's prices and four in five profiles' sources not computed: a restart's first
    seconds, not serving (docs/scaling.md, *The lists in the whole benchmark*).
    """
    per_s, pacing = load.recs_per_s, load.pacing
    wrk(url, users, LISTS, settings, LISTS_WARM_S, per_s, pacing)
    return measured(
        api, partial(wrk, url, users, LISTS, settings, load.lists_seconds, per_s, pacing)
    )


# What ``--only PHASE`` prints (medians of its repeats)
ONLY = {
    "prices": ("prices_p50_ms", "floor_p50_ms", "prices_p99_ms", "prices_cpu_ms", "prices_rps"),
    "lists": ("recs_p50_ms", "recs_p99_ms", "recs_cpu_ms", "recs_rps"),
}


def phase_only(
    phase: str,
    settings: Settings,
    default: Server,
    ids: tuple[list[str], list[str]],
    log: Path,
    load: Load,
) -> dict[str, list[float]]:
    """``--only PHASE``: each repeat, that paced phase of :func:`exercise` (its warm-up first)
    on an API of its own, and for the prices the floor."""
    skus, users = ids
    name, paced, keys = (
        ("prices", paced_prices, skus) if phase == "prices" else ("recs", paced_lists, users)
    )
    runs: dict[str, list[float]] = {}
    for repeat in range(load.repeats):
        with running_api(settings, settings.api_cache_ttl_s, log, default) as (api, url):
            record(runs, name, paced(api, url, keys, settings, load))
        if phase == "prices":
            floor = floor_ms(settings, skus, n=load.shoppers)
            runs.setdefault("floor_p50_ms", []).append(percentile(floor, 50))
        print_repeat(repeat, load.repeats, runs)
    return runs


def main(mode: Mode, only: str | None = None, pacing: str = "exponential") -> None:
    load = replace(SMOKE if mode.smoke else FULL, pacing=pacing)
    raise_fd_limit()
    base = Settings()
    require_kafka(base)
    require_redis(base)
    rid = uuid.uuid4().hex[:6]
    trained = any(mode.models.glob("*/champion.json"))  # the batch benchmark's models
    settings = base.model_copy(
        update={
            "topic_prefix": f"bench-serving-{rid}.",
            "redis_prefix": f"bench-serving-{rid}:",
            "registry_dir": mode.models if trained else base.registry_dir,
            "mlflow_model_prefix": mode.model_prefix if trained else base.mlflow_model_prefix,
        }
    )
    default = Server(base.api_server, base.api_workers)
    ensure_topics(settings)
    skus, users = fill_redis(settings, load)
    log = Path(tempfile.mkdtemp()) / "api.log"
    runs: dict[str, list[float]] = {}
    try:
        if only is not None:
            runs = phase_only(only, settings, default, (skus, users), log, load)
            figures = {k: median(runs[k]) for k in ONLY[only]}
            shown = ", ".join(f"{k}={v:.4f}" for k, v in figures.items())
            if only == "prices":
                ratio = figures["prices_p50_ms"] / figures["floor_p50_ms"]
                shown += f", prices_p50_vs_floor={ratio:.3f}"
            print(f"medians: {shown} (no results written)")
            return
        for repeat in range(load.repeats):
            with running_api(settings, settings.api_cache_ttl_s, log, default) as (api, url):
                exercise(runs, "", api, url, (skus, users), settings, load)
                port = int(url.rsplit(":", 1)[1])
                runs.setdefault("ws_fanout_p99_ms", []).append(
                    percentile(fanout_ms(settings, port, skus, load), 99)
                )
            with running_api(settings, 0.0, log, default) as (api, url):
                record(runs, "prices_nocache", paced_prices(api, url, skus, settings, load))
            for server in load.servers:
                if server == default:  # measured above, in this repeat
                    for key in [k for k in runs if k.startswith(("prices_", "recs_"))]:
                        if not key.startswith("prices_nocache"):
                            runs.setdefault(f"{server.label}_{key}", []).append(runs[key][-1])
                    continue
                with running_api(settings, settings.api_cache_ttl_s, log, server) as (api, url):
                    exercise(runs, f"{server.label}_", api, url, (skus, users), settings, load)
            floor = floor_ms(settings, skus, n=load.shoppers)
            runs.setdefault("floor_p50_ms", []).append(percentile(floor, 50))
            print_repeat(repeat, load.repeats, runs)
    finally:
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])
        client = redis.Redis.from_url(settings.redis_url)
        keys = list(client.scan_iter(f"{settings.redis_prefix}*"))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        client.close()
    meta = {
        "concurrency": CONCURRENCY,
        "pace_ms": PACE_MS,
        "default_server": default.label,
        "skus": len(skus),
        **asdict(load),
    }
    write_medians(
        "serving",
        runs,
        ("prices_p50_vs_floor", "prices_p50_ms", "floor_p50_ms"),
        meta,
        mode,
        more_ratios=(("prices_cache_vs_nocache_p99", "prices_p99_ms", "prices_nocache_p99_ms"),),
    )


def parse_args(argv: Sequence[str] | None = None) -> tuple[Mode, str | None, str]:
    """The mode (:func:`~benchmarks.common.parse_mode`), the phase ``--only`` names (None:
    the whole run), and the paced runs' pauses (``--pacing``)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--only", choices=tuple(ONLY))
    parser.add_argument("--pacing", choices=PACINGS, default="exponential")
    known, rest = parser.parse_known_args(argv)
    return parse_mode(__doc__, rest), known.only, known.pacing


if __name__ == "__main__":
    main(*parse_args())
