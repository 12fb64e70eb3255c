"""Every Grafana panel returns data from a real Prometheus scraping the real services.

The module starts, on ports of its own: a flow process over this run's topics (``bytewax.run``
with its ``/metrics``), the API under uvicorn (with an ONNX model in its registry), the batch
metrics endpoint the scheduler runs (driven by the test: a finished job run and the registry),
and Prometheus from the Debian package through the project's launcher, scraping every second.
The simulator fills the topics; a few malformed messages carry a correlation id. Then each
panel's PromQL, with the dashboard's variables substituted as Grafana would, must return a
non-empty result, and the flows' counters must equal what was produced.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import onnx
import orjson
import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from onnx import TensorProto, helper
from prometheus_client import CollectorRegistry

from flows.run import process_commands
from infra.stack import prometheus, rsyslog
from infra.stack.processes import terminate
from infra.stack.topics import delete_topics, ensure_topics
from observability.exposition import MetricsServer
from observability.jobs import JobMetrics, start_scheduler_metrics
from online_models.demand_features import DEMAND_FEATURES
from schemas.headers import CORRELATION_ID
from schemas.jobs import JobRun
from schemas.settings import Settings
from schemas.topics import (
    ALL_TOPICS,
    DEAD_LETTER,
    INPUT_TOPICS,
    LAKE_TOPICS,
    ORDERS,
    RECOMMENDATIONS_SERVED,
    USER_ACTIVITY,
)
from simulator.config import ShopConfig
from simulator.producer import RunOptions, run_shop
from tests.cli_processes import ROOT, child_env, get_json, post_json, start_api, tillflow_up
from tests.credentials import admin_headers, producer_headers
from tests.flow_processes import free_port
from tests.registered import model_prefix, register_onnx

pytestmark = pytest.mark.integration

DASHBOARDS = sorted((ROOT / "infra" / "grafana" / "dashboards").glob("*.json"))
CONFIG = ShopConfig(seed=11, products=30, shoppers=400, sessions_per_day=30_000, competitors=2)
RATE_INTERVAL = "1m"  # what Grafana makes $__rate_interval of a 15 s scrape interval
BAD = [(ORDERS, b"{broken"), (USER_ACTIVITY, b'{"event_id": "x"}')]


def _onnx_sum_model(width: int) -> bytes:
    """A real ONNX regression (the sum of its inputs), enough for the API to load and serve."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=1)
    graph = helper.make_graph([node], "sum", [x], [y], initializer=[axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


@dataclass
class Live:
    settings: Settings
    prometheus: str
    api: str
    produced: dict[str, int]  # messages per input topic, bad and re-sent ones included
    duplicates: int
    correlation_id: str
    request_id: str
    flow_log: Path

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        body = get_json(url)
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def wait_for(self, promql: str, ok: Any, what: str, timeout_s: float = 120.0) -> Any:
        deadline = time.monotonic() + timeout_s
        result: Any = None
        while time.monotonic() < deadline:
            result = self.query(promql)
            if ok(result):
                return result
            time.sleep(0.5)
        raise AssertionError(f"{what}: {promql} gave {result} after {timeout_s:.0f}s")


def _high_water_marks(settings: Settings) -> dict[str, int]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "hwm"})
    try:
        totals = {}
        for topic in INPUT_TOPICS:
            name = settings.topic(topic)
            parts = consumer.list_topics(name, timeout=10).topics[name].partitions
            totals[topic.name] = sum(
                consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
                for p in parts
            )
        return totals
    finally:
        consumer.close()


def _api_traffic(api: str, settings: Settings, request_id: str) -> None:
    """Reads that miss and then hit the API's cache, a 404, and one ingest with a request id."""
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        skus = sorted(client.hkeys(settings.keys.current_prices))[:5]
    finally:
        client.close()
    assert skus, "the flow published no prices"
    assert set(get_json(f"{api}/prices?skus={','.join(skus)}")) == set(skus)
    for _ in range(3):
        for sku in skus:
            get_json(f"{api}/prices/{sku}")
        get_json(f"{api}/recommendations/u-000001", admin_headers(settings))
    with pytest.raises(urllib.error.HTTPError, match="404"):
        get_json(f"{api}/prices/NO-SUCH-SKU")
    event = {
        "event_id": f"obs-{request_id}",
        "event_time": datetime.now(UTC).isoformat(),
        "sku": skus[0],
        "store_id": "store-01",
        "on_hand": 5,
    }
    writer = producer_headers(settings, ["inventory"])
    post_json(f"{api}/events/inventory", event, {"X-Request-ID": request_id, **writer})


@pytest.fixture(scope="module")
def live(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    rid = uuid.uuid4().hex[:6]
    root = tmp_path_factory.mktemp("observability")
    settings = stack.model_copy(
        update={
            "topic_prefix": f"{stack.topic_prefix}obs{rid}.",
            "redis_prefix": f"{stack.redis_prefix}obs{rid}:",
            "runtime_dir": root / "runtime",
            "lake_dir": root / "lake",
            "recovery_dir": root / "recovery",
            "registry_dir": root / "models",
            "catalogue_file": root / "catalogue.jsonl",  # this run's shop only
            "mlflow_model_prefix": model_prefix(),
            "api_port": free_port(),
            "flow_metrics_port": free_port(),
            "scheduler_metrics_port": free_port(),
            "prometheus_port": free_port(),
            "prometheus_scrape_interval_s": 1,
            "rate_limit_per_s": 0.0,
            "log_level": "info",
        }
    )
    ensure_topics(settings)
    # The rows the API builds for prices.
    register_onnx(settings, "demand", _onnx_sum_model(len(DEMAND_FEATURES)), DEMAND_FEATURES)

    started: list[subprocess.Popen[bytes]] = []
    scheduler: MetricsServer | None = None
    try:
        # `tillflow up` finds Kafka and Redis answering and starts only Prometheus, for this run.
        output = tillflow_up(settings, timeout_s=120)
        assert prometheus.answers(settings, 2.0), output
        jobs: JobMetrics
        jobs, scheduler = start_scheduler_metrics(settings, CollectorRegistry())
        assert scheduler is not None
        flow_log = root / "flow.log"
        with flow_log.open("wb") as out:
            [cmd] = process_commands(settings, 1, 1, recovery=False)
            started.append(subprocess.Popen(cmd, env=child_env(settings), stdout=out, stderr=out))
        started.append(start_api(settings, root / "api.log"))
        api = f"http://127.0.0.1:{settings.api_port}"

        asyncio.run(run_shop(settings, CONFIG, RunOptions(days=0.25, clock="wall")))
        correlation_id = f"corr-{rid}"
        producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
        for topic, raw in BAD:
            producer.produce(
                settings.topic(topic),
                value=raw,
                headers=[(CORRELATION_ID, correlation_id.encode())],
            )
        producer.flush(30)
        produced = _high_water_marks(settings)
        jobs.record(JobRun("silver", "ok", datetime.now(UTC).isoformat(), 3.2, 1000, 990))
        jobs.record(JobRun("gold", "failed", datetime.now(UTC).isoformat(), 1.1, 990, 0, "boom"))

        live = Live(
            settings,
            prometheus.address(settings),
            api,
            produced,
            0,
            correlation_id,
            f"req-{rid}",
            flow_log,
        )
        total = sum(produced.values())
        live.wait_for(
            "sum(tillflow_flow_events_total)",
            lambda r: r and float(r[0]["value"][1]) >= total,
            "the flow caught up",
            timeout_s=240,
        )
        _api_traffic(api, settings, live.request_id)
        # At least two scrapes of every target after the traffic, so rates have two samples.
        after = time.time()
        for job in ("tillflow-api", "tillflow-flows", "tillflow-scheduler"):
            live.wait_for(
                f'timestamp(up{{job="{job}"}}) > {after + 2}', bool, f"two more scrapes of {job}"
            )
        yield live
    finally:
        for proc in started:
            proc.terminate()
        for proc in started:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if scheduler is not None:
            scheduler.close()
        terminate(prometheus.files(settings))
        terminate(rsyslog.files(settings))  # `up` started this run's log shipper too
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])


# -- every panel, every variable ---------------------------------------------------------
def _targets() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            if (
                panel["type"] == "logs"
            ):  # OpenSearch, not Prometheus (tests/integration/test_log_search.py)
                continue
            for target in panel["targets"]:
                out.append((board["uid"], panel, {**target, "_board": board}))
    return out


TARGETS = _targets()


def substitute(expr: str, board: dict[str, Any]) -> str:
    """The query Grafana sends with the dashboard's defaults: "All" for every variable."""
    for variable in board["templating"]["list"]:
        current = variable["current"]["value"]
        value = variable["allValue"] if current == ["$__all"] else "|".join(current)
        expr = expr.replace(f"${variable['name']}", value)
    return expr.replace("$__rate_interval", RATE_INTERVAL)


@pytest.mark.parametrize(
    ("uid", "panel", "target"),
    TARGETS,
    ids=[f"{uid}:{panel['title']}:{t['refId']}" for uid, panel, t in TARGETS],
)
def test_panel_returns_data(
    live: Live, uid: str, panel: dict[str, Any], target: dict[str, Any]
) -> None:
    expr = substitute(target["expr"], target["_board"])
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    result = live.query(expr)
    assert result, f"{uid} / {panel['title']}: no data for {expr}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_variables_list_values(live: Live, path: Path) -> None:
    board = json.loads(path.read_text())
    for variable in board["templating"]["list"]:
        query = variable["query"]["query"]
        metric, label = query.removeprefix("label_values(").rstrip(")").split(", ")
        url = f"{live.prometheus}/api/v1/label/{label}/values?" + urllib.parse.urlencode(
            {"match[]": metric}
        )
        values = get_json(url)["data"]
        assert values, f"{path.stem}: variable {variable['name']} has no values ({query})"


# -- the numbers behind the panels -------------------------------------------------------
def _by(live: Live, promql: str, label: str) -> dict[str, float]:
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in live.query(promql)}


def test_flow_counters_equal_what_was_produced(live: Live) -> None:
    events = _by(live, "sum by (topic) (tillflow_flow_events_total)", "topic")
    # The API's ingest went in after the flow caught up: inventory may hold one more.
    for topic, count in live.produced.items():
        assert count <= events[topic] <= count + 1, topic
    dead = _by(live, "sum by (topic) (tillflow_flow_dead_lettered_total)", "topic")
    # the flow also reads the served-list log (kept in bronze); nothing bad was sent there
    assert dead == {
        "orders": 1.0,
        "user-activity": 1.0,
        "inventory": 0.0,
        "competitor-prices": 0.0,
        RECOMMENDATIONS_SERVED.name: 0.0,
    }
    lag = live.query("max(tillflow_flow_consumer_lag_messages)")
    assert float(lag[0]["value"][1]) == 0.0, "the flow read everything: no lag"
    partitions = live.query("count(tillflow_flow_consumer_lag_messages)")
    read = sum(live.settings.partitions(topic) for topic in LAKE_TOPICS)
    assert float(partitions[0]["value"][1]) == read


def test_revenue_counts_unique_orders(live: Live) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": live.settings.kafka_bootstrap,
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    consumer.subscribe([live.settings.topic(ORDERS)])
    revenue, eofs, ids = 0.0, set(), set()
    try:
        while len(eofs) < live.settings.input_partitions:
            msg = consumer.poll(5)
            assert msg is not None, "orders topic not read to its end"
            if msg.error():
                eofs.add(msg.partition())
                continue
            try:
                order = orjson.loads(msg.value())
            except orjson.JSONDecodeError:
                continue  # the malformed one
            if order["event_id"] not in ids:
                ids.add(order["event_id"])
                revenue += sum(line["quantity"] * line["unit_price"] for line in order["lines"])
    finally:
        consumer.close()
    [result] = live.query("sum(tillflow_flow_revenue_total)")
    assert float(result["value"][1]) == pytest.approx(revenue, rel=1e-9)


def test_api_and_batch_metrics_reach_prometheus(live: Live) -> None:
    served = live.query('tillflow_model_info{model="demand"}')
    assert [r["metric"]["version"] for r in served] == ["demand:v1"]
    registry = _by(live, "tillflow_registry_model_version", "model")
    assert registry == {"demand": 1.0}
    runs = live.query('tillflow_batch_job_runs_total{batch_job="gold", outcome="failed"}')
    assert float(runs[0]["value"][1]) == 1.0
    routes = _by(live, "sum by (route) (tillflow_http_requests_total)", "route")
    assert routes["/prices/{sku}"] >= 15
    assert routes["/recommendations/{user_id}"] >= 3


# -- one correlation id from the API through Kafka into the flows ------------------------
def _consumer(settings: Settings) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
        }
    )


def test_request_id_travels_in_the_kafka_header(live: Live) -> None:
    consumer = _consumer(live.settings)
    consumer.subscribe([live.settings.topic(INPUT_TOPICS[2])])  # inventory
    deadline = time.monotonic() + 30
    headers = None
    try:
        while headers is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            if orjson.loads(msg.value())["event_id"] == f"obs-{live.request_id}":
                headers = msg.headers()
    finally:
        consumer.close()
    assert headers == [(CORRELATION_ID, live.request_id.encode())]


def test_dead_letters_and_flow_logs_keep_the_correlation_id(live: Live) -> None:
    consumer = _consumer(live.settings)
    consumer.subscribe([live.settings.topic(DEAD_LETTER)])
    letters = []
    deadline = time.monotonic() + 30
    try:
        while len(letters) < len(BAD) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                letters.append((orjson.loads(msg.value()), msg.headers()))
    finally:
        consumer.close()
    assert len(letters) == len(BAD)
    for body, headers in letters:
        assert body["correlation_id"] == live.correlation_id
        assert headers == [(CORRELATION_ID, live.correlation_id.encode())]
    logged = []
    for line in live.flow_log.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == "dead-lettered":
                logged.append(entry)
    assert {e["correlation_id"] for e in logged} == {live.correlation_id}
    assert {e["topic"] for e in logged} == {"orders", "user-activity"}
    assert all(e["level"] == "warning" and "timestamp" in e for e in logged)
