"""The Grafana dashboards, written once here and generated as JSON into ``infra/grafana/``.

``python -m observability.dashboards`` (``make dashboards``) rewrites
``infra/grafana/dashboards/*.json``; a unit test checks the files are up to date, and an
integration test runs every panel's query against a real Prometheus scraping the real services.

>>> [d.uid for d in DASHBOARDS]
['tillflow-serving', 'tillflow-streaming', 'tillflow-models', 'tillflow-business']
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
LOGS_DATASOURCE = {"type": "grafana-opensearch-datasource", "uid": "opensearch-logs"}
"""The shipped JSON log lines in OpenSearch (``tillflow-logs-*``); logs panels query it."""
OUT_DIR = Path(__file__).resolve().parents[1] / "infra" / "grafana" / "dashboards"
WIDTH = 24  # Grafana's grid is 24 columns wide
RATE = "$__rate_interval"

PanelType = Literal["timeseries", "stat", "heatmap", "table", "logs"]


@dataclass(frozen=True, slots=True)
class Query:
    expr: str  # PromQL; for a logs panel, a Lucene query over the log documents
    legend: str = ""


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: PanelType = "timeseries"
    description: str = ""
    width: int = 12
    height: int = 8


@dataclass(frozen=True, slots=True)
class Variable:
    """A query variable over one label of one metric (multi-select, "All" = ``.*``)."""

    name: str
    metric: str
    label: str

    @property
    def query(self) -> str:
        return f"label_values({self.metric}, {self.label})"


@dataclass(frozen=True, slots=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...] = field(default=())


def _quantile(q: float, metric: str, by: str = "", selector: str = "") -> str:
    """``histogram_quantile`` of a histogram's rate, per ``by`` (a label, or none)."""
    labels = f"le, {by}" if by else "le"
    braces = f"{{{selector}}}" if selector else ""
    rate = f"rate({metric}_bucket{braces}[{RATE}])"
    return f"histogram_quantile({q}, sum by ({labels}) ({rate}))"


ROUTE = 'route=~"$route"'
TOPIC = 'topic=~"$topic"'
HTTP = "tillflow_http_request_duration_seconds"

SERVING = Dashboard(
    "tillflow-serving",
    "tillflow · serving",
    "The API: request rate, latency per route (objectives: p99 within 2 ms for prices, "
    "5 ms for recommendations), cache hits, websockets.",
    (
        Panel(
            "Requests per second by route",
            (
                Query(
                    f"sum by (route) (rate(tillflow_http_requests_total{{{ROUTE}}}[{RATE}]))",
                    "{{route}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "Responses by status",
            (
                Query(
                    f"sum by (status) (rate(tillflow_http_requests_total{{{ROUTE}}}[{RATE}]))",
                    "{{status}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "p50 latency by route",
            (Query(_quantile(0.5, HTTP, "route", ROUTE), "{{route}}"),),
            "s",
            width=8,
        ),
        Panel(
            "p95 latency by route",
            (Query(_quantile(0.95, HTTP, "route", ROUTE), "{{route}}"),),
            "s",
            width=8,
        ),
        Panel(
            "p99 latency by route",
            (Query(_quantile(0.99, HTTP, "route", ROUTE), "{{route}}"),),
            "s",
            "timeseries",
            "Alerts over 2 ms (prices) or 5 ms (recommendations).",
            width=8,
        ),
        Panel(
            "Latency heatmap",
            (Query(f"sum by (le) (rate({HTTP}_bucket{{{ROUTE}}}[{RATE}]))", "{{le}}"),),
            "s",
            "heatmap",
            width=24,
        ),
        Panel(
            "Cache hit ratio",
            (
                Query(
                    'sum by (kind) (rate(tillflow_serving_lookups_total{result="hit"}'
                    f"[{RATE}])) / sum by (kind) (rate(tillflow_serving_lookups_total[{RATE}]))",
                    "{{kind}}",
                ),
            ),
            "percentunit",
        ),
        Panel(
            "Lookups by result",
            (
                Query(
                    f"sum by (kind, result) (rate(tillflow_serving_lookups_total[{RATE}]))",
                    "{{kind}} {{result}}",
                ),
            ),
            "ops",
        ),
        Panel(
            "Websocket connections",
            (Query("sum by (channel) (tillflow_ws_connections)", "{{channel}}"),),
            "short",
            width=8,
        ),
        Panel(
            "Websocket messages sent",
            (
                Query(
                    f"sum by (channel) (rate(tillflow_ws_messages_sent_total[{RATE}]))",
                    "{{channel}}",
                ),
            ),
            "ops",
            width=8,
        ),
        Panel(
            "Websocket messages dropped",
            (
                Query(
                    f"sum by (channel) (rate(tillflow_ws_messages_dropped_total[{RATE}]))",
                    "{{channel}}",
                ),
            ),
            "ops",
            width=8,
        ),
        Panel(
            "Warnings and errors from every process (shipped logs)",
            (Query("level:(warning OR error)"),),
            kind="logs",
            width=24,
            height=10,
            description="JSON log lines shipped into OpenSearch (tillflow-logs-*); open a "
            "line for its fields, e.g. correlation_id, to follow one request.",
        ),
    ),
    (Variable("route", f"{HTTP}_count", "route"),),
)

STREAMING = Dashboard(
    "tillflow-streaming",
    "tillflow · streaming",
    "The flows: throughput, dead letters, duplicates, late events, consumer lag, freshness.",
    (
        Panel(
            "Events read per second by topic",
            (
                Query(
                    f"sum by (topic) (rate(tillflow_flow_events_total{{{TOPIC}}}[{RATE}]))",
                    "{{topic}}",
                ),
            ),
            "ops",
        ),
        Panel(
            "Dead-lettered per second by topic",
            (
                Query(
                    f"sum by (topic) (rate(tillflow_flow_dead_lettered_total{{{TOPIC}}}[{RATE}]))",
                    "{{topic}}",
                ),
            ),
            "ops",
        ),
        Panel(
            "Consumer lag by partition",
            (
                Query(
                    f"sum by (topic, partition) (tillflow_flow_consumer_lag_messages{{{TOPIC}}})",
                    "{{topic}}/{{partition}}",
                ),
            ),
            "short",
            "timeseries",
            "Messages in each partition after the last one the flows read.",
        ),
        Panel(
            "Processing lag p50 / p99 (now − event time)",
            (
                Query(
                    _quantile(0.5, "tillflow_flow_processing_lag_seconds", "topic", TOPIC),
                    "p50 {{topic}}",
                ),
                Query(
                    _quantile(0.99, "tillflow_flow_processing_lag_seconds", "topic", TOPIC),
                    "p99 {{topic}}",
                ),
            ),
            "s",
        ),
        Panel(
            "Freshness: age of the newest event read",
            (
                Query(
                    "time() - max by (topic) "
                    f"(tillflow_flow_last_event_timestamp_seconds{{{TOPIC}}})",
                    "{{topic}}",
                ),
            ),
            "s",
        ),
        Panel(
            "Duplicates and late events per second",
            (
                Query(f"sum(rate(tillflow_flow_duplicate_events_total[{RATE}]))", "duplicates"),
                Query(f"sum(rate(tillflow_flow_late_events_total[{RATE}]))", "late"),
            ),
            "ops",
        ),
        Panel(
            "Processes answering /metrics",
            (Query('sum by (job) (up{job=~"tillflow-.*"})', "{{job}}"),),
            "short",
            "stat",
            width=24,
            height=4,
        ),
    ),
    (Variable("topic", "tillflow_flow_events_total", "topic"),),
)

MODELS = Dashboard(
    "tillflow-models",
    "tillflow · models",
    "Online learners (error, drift), the models the API serves, the registry, batch jobs.",
    (
        Panel(
            "Elasticity learner error (mean over products)",
            (Query("max by (model) (tillflow_flow_learner_mean_absolute_error)", "{{model}}"),),
            "short",
        ),
        Panel(
            "Drift detections per hour",
            (
                Query(
                    "sum by (model) (increase(tillflow_flow_drift_detections_total[1h]))",
                    "{{model}}",
                ),
            ),
            "short",
        ),
        Panel(
            "Models loaded by the API",
            (Query("max by (model, version) (tillflow_model_info)", "{{model}} {{version}}"),),
            "short",
            "table",
        ),
        Panel(
            "Registry: current version per model",
            (Query("max by (model) (tillflow_registry_model_version)", "{{model}}"),),
            "short",
            "stat",
        ),
        Panel(
            "Batch job runs per hour by outcome",
            (
                Query(
                    "sum by (batch_job, outcome) (increase(tillflow_batch_job_runs_total[1h]))",
                    "{{batch_job}} {{outcome}}",
                ),
            ),
            "short",
        ),
        Panel(
            "Batch job duration p95",
            (
                Query(
                    _quantile(0.95, "tillflow_batch_job_duration_seconds", "batch_job"),
                    "{{batch_job}}",
                ),
            ),
            "s",
        ),
        Panel(
            "Batch rows per second",
            (
                Query(
                    f"sum by (batch_job, direction) (rate(tillflow_batch_rows_total[{RATE}]))",
                    "{{batch_job}} {{direction}}",
                ),
            ),
            "rowsps",
            width=24,
        ),
    ),
)

BUSINESS = Dashboard(
    "tillflow-business",
    "tillflow · business",
    "Revenue and units of unique orders, and the prices tillflow publishes.",
    (
        Panel(
            "Revenue per minute",
            (Query(f"sum(rate(tillflow_flow_revenue_total[{RATE}])) * 60", "revenue"),),
            "currencyEUR",
        ),
        Panel(
            "Revenue, last 24 h",
            (Query("sum(increase(tillflow_flow_revenue_total[24h]))", "revenue"),),
            "currencyEUR",
            "stat",
            width=6,
        ),
        Panel(
            "Units sold, last 24 h",
            (Query("sum(increase(tillflow_flow_units_sold_total[24h]))", "units"),),
            "short",
            "stat",
            width=6,
        ),
        Panel(
            "Orders per minute",
            (
                Query(
                    f'sum(rate(tillflow_flow_events_total{{topic="orders"}}[{RATE}])) * 60',
                    "orders",
                ),
            ),
            "short",
        ),
        Panel(
            "Price changes per hour by direction",
            (
                Query(
                    "sum by (direction) (increase(tillflow_flow_price_changes_total[1h]))",
                    "{{direction}}",
                ),
            ),
            "short",
        ),
        Panel(
            "Price change size p50 / p90",
            (
                Query(_quantile(0.5, "tillflow_flow_price_change_ratio"), "p50"),
                Query(_quantile(0.9, "tillflow_flow_price_change_ratio"), "p90"),
            ),
            "percentunit",
        ),
        Panel(
            "Since the last price change",
            (Query("time() - max(tillflow_flow_price_last_change_timestamp_seconds)", "age"),),
            "s",
            "stat",
        ),
    ),
)

DASHBOARDS = (SERVING, STREAMING, MODELS, BUSINESS)


def _target(ref: str, query: Query, kind: PanelType) -> dict[str, Any]:
    if kind == "logs":
        return {
            "refId": ref,
            "datasource": LOGS_DATASOURCE,
            "query": query.expr,
            "queryType": "lucene",
            "luceneQueryType": "Logs",
            "metrics": [{"id": "1", "type": "logs"}],
            "bucketAggs": [],
            "timeField": "shipped_at",
        }
    target: dict[str, Any] = {
        "refId": ref,
        "datasource": DATASOURCE,
        "expr": query.expr,
        "legendFormat": query.legend or "__auto",
        "range": kind != "table",
        "instant": kind == "table",
    }
    if kind == "heatmap":
        target["format"] = "heatmap"
    elif kind == "table":
        target["format"] = "table"
    return target


def _options(kind: PanelType) -> dict[str, Any]:
    if kind == "heatmap":
        return {
            "calculate": False,
            "yAxis": {"unit": "s"},
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "exponent": 0.5},
        }
    if kind == "stat":
        return {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
        }
    if kind == "table":
        return {"showHeader": True}
    if kind == "logs":
        return {
            "showTime": True,
            "wrapLogMessage": True,
            "sortOrder": "Descending",
            "enableLogDetails": True,
            "prettifyLogMessage": False,
        }
    return {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }


def _layout(panels: tuple[Panel, ...]) -> list[dict[str, int]]:
    """Left to right, top to bottom, wrapping at the grid's width."""
    x = y = row_height = 0
    positions = []
    for p in panels:
        if x + p.width > WIDTH:
            x, y, row_height = 0, y + row_height, 0
        positions.append({"h": p.height, "w": p.width, "x": x, "y": y})
        x += p.width
        row_height = max(row_height, p.height)
    return positions


def _variable(v: Variable) -> dict[str, Any]:
    return {
        "name": v.name,
        "label": v.name,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": v.query,
        "query": {"query": v.query, "refId": f"var-{v.name}"},
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
        "regex": "",
        "skipUrlSync": False,
    }


def render(d: Dashboard) -> dict[str, Any]:
    """The Grafana dashboard model (schema version 39) of ``d``."""
    panels = []
    for i, (p, pos) in enumerate(zip(d.panels, _layout(d.panels), strict=True), start=1):
        panels.append(
            {
                "id": i,
                "type": p.kind,
                "title": p.title,
                "description": p.description,
                "datasource": LOGS_DATASOURCE if p.kind == "logs" else DATASOURCE,
                "gridPos": pos,
                "targets": [_target(chr(ord("A") + n), q, p.kind) for n, q in enumerate(p.queries)],
                "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
                "options": _options(p.kind),
            }
        )
    return {
        "uid": d.uid,
        "title": d.title,
        "description": d.description,
        "tags": ["tillflow"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [_variable(v) for v in d.variables]},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def dumps(d: Dashboard) -> str:
    return json.dumps(render(d), indent=2, ensure_ascii=False) + "\n"


def write(out_dir: Path = OUT_DIR) -> list[Path]:
    """Write every dashboard as ``<uid>.json``; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for d in DASHBOARDS:
        path = out_dir / f"{d.uid}.json"
        path.write_text(dumps(d))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT_DIR):
        sys.stderr.write(f"{written}\n")
