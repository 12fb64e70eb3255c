"""Prometheus rules and configuration, Alertmanager routing, Grafana provisioning and the
compose services that run them: checked with the real tools (promtool, amtool), no engine."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.errors import StackError
from infra.stack import prometheus
from observability import dashboards
from schemas.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
COMPOSE = yaml.safe_load((INFRA / "docker-compose.yml").read_text())["services"]


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} (Debian package) is installed by `make setup`"
    return path


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT)


def test_alert_rules_are_valid() -> None:
    result = _run(_tool("promtool"), "check", "rules", *map(str, INFRA.glob("prometheus/rules/*")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_rules_pass_their_unit_tests() -> None:
    tests = sorted(map(str, (INFRA / "prometheus" / "tests").glob("*.yml")))
    assert tests
    result = _run(_tool("promtool"), "test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_rule_test_and_a_routed_severity() -> None:
    rules = yaml.safe_load((INFRA / "prometheus" / "rules" / "tillflow.yml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tested = (INFRA / "prometheus" / "tests" / "tillflow.rules.test.yml").read_text()
    for name, rule in alerts.items():
        assert f"alertname: {name}\n" in tested, f"{name} has no promtool test"
        assert rule["labels"]["severity"] in ("page", "ticket"), name
        assert rule["annotations"]["summary"], name


def test_local_prometheus_config_is_valid_and_scrapes_every_process(tmp_path: Path) -> None:
    settings = Settings(
        runtime_dir=tmp_path,
        flow_processes=3,
        flow_metrics_port=9201,
        scheduler_metrics_port=9200,
        api_port=8100,
    )
    path = prometheus.write_config(settings)
    result = _run(_tool("promtool"), "check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    body = json.loads(path.read_text())
    targets = {j["job_name"]: j["static_configs"][0]["targets"] for j in body["scrape_configs"]}
    assert targets["tillflow-api"] == ["127.0.0.1:8100"]
    assert targets["tillflow-flows"] == ["127.0.0.1:9201", "127.0.0.1:9202", "127.0.0.1:9203"]
    assert targets["tillflow-scheduler"] == ["127.0.0.1:9200"]
    assert targets["prometheus"] == [f"127.0.0.1:{settings.prometheus_port}"]
    assert "alerting" not in body


def test_compose_prometheus_config_is_the_launchers_for_the_compose_hosts() -> None:
    committed = yaml.safe_load((INFRA / "prometheus" / "prometheus.yml").read_text())
    generated = prometheus.config(
        prometheus.Targets(
            ("api:8000",), ("flows:9101",), ("scheduler:9100",), ("alertmanager:9093",)
        ),
        15,
        "/etc/prometheus/rules",
    )
    assert committed == generated
    result = _run(_tool("promtool"), "check", "config", "infra/prometheus/prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_prometheus_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError, match="prometheus is missing"):
        prometheus.start(Settings(runtime_dir=tmp_path / "runtime"))


def test_alertmanager_config_is_valid_and_routes_by_severity() -> None:
    config = str(INFRA / "alertmanager" / "alertmanager.yml")
    result = _run(_tool("amtool"), "check-config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    routed = {}
    for severity in ("page", "ticket"):
        out = _run(
            _tool("amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={config}",
            f"severity={severity}",
        )
        routed[severity] = out.stdout.strip()
    assert routed == {"page": "pagerduty,opsgenie", "ticket": "opsgenie"}


def test_alertmanager_secrets_come_from_the_environment() -> None:
    text = (INFRA / "alertmanager" / "alertmanager.yml").read_text()
    config = yaml.safe_load(text)
    receivers = {r["name"]: r for r in config["receivers"]}
    pd = receivers["pagerduty"]["pagerduty_configs"][0]
    og = receivers["opsgenie"]["opsgenie_configs"][0]
    assert "routing_key" not in pd
    assert "service_key" not in pd
    assert "api_key" not in og
    service = COMPOSE["alertmanager"]
    script = service["command"][0]
    for env, path in (
        ("PAGERDUTY_ROUTING_KEY", pd["routing_key_file"]),
        ("OPSGENIE_API_KEY", og["api_key_file"]),
    ):
        assert service["environment"][env] == f"${{{env}:-}}"
        assert f'"$${env}" > {path}' in script


def test_compose_runs_prometheus_alertmanager_and_grafana_with_the_provisioning() -> None:
    mounts = {
        name: {v.split(":")[1]: v.split(":")[0] for v in COMPOSE[name]["volumes"]}
        for name in ("prometheus", "alertmanager", "grafana")
    }
    assert mounts["prometheus"]["/etc/prometheus/prometheus.yml"] == "./prometheus/prometheus.yml"
    assert mounts["prometheus"]["/etc/prometheus/rules"] == "./prometheus/rules"
    assert mounts["grafana"]["/etc/grafana/provisioning"] == "./grafana/provisioning"
    assert mounts["grafana"]["/var/lib/grafana/dashboards"] == "./grafana/dashboards"
    for service in mounts.values():
        for source in service.values():
            if source.startswith("./"):
                assert (INFRA / source).exists(), source
    provider = yaml.safe_load((INFRA / "grafana/provisioning/dashboards/tillflow.yml").read_text())
    source = yaml.safe_load((INFRA / "grafana/provisioning/datasources/prometheus.yml").read_text())
    grafana = COMPOSE["grafana"]["environment"]
    assert provider["providers"][0]["options"]["path"] == "${DASHBOARDS_DIR}"
    assert grafana["DASHBOARDS_DIR"] == "/var/lib/grafana/dashboards"
    assert source["datasources"][0]["url"] == "${PROMETHEUS_URL}"
    assert grafana["PROMETHEUS_URL"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in COMPOSE["prometheus"]["ports"]
    assert "127.0.0.1:3000:3000" in COMPOSE["grafana"]["ports"]
    assert COMPOSE["flows"]["environment"]["TILLFLOW_METRICS_HOST"] == "0.0.0.0"


# -- dashboards --------------------------------------------------------------------------
DASHBOARD_FILES = sorted((INFRA / "grafana" / "dashboards").glob("*.json"))
PANEL_TYPES = {"timeseries", "stat", "heatmap", "table", "logs"}
BUILTINS = {"__rate_interval", "__interval", "__range"}


def _load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def test_dashboard_files_are_generated_from_observability_dashboards() -> None:
    assert [p.stem for p in DASHBOARD_FILES] == sorted(d.uid for d in dashboards.DASHBOARDS)
    for d in dashboards.DASHBOARDS:
        committed = (INFRA / "grafana" / "dashboards" / f"{d.uid}.json").read_text()
        assert committed == dashboards.dumps(d), f"run `make dashboards` ({d.uid})"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=[p.stem for p in DASHBOARD_FILES])
def test_dashboard_structure(path: Path) -> None:
    board = _load(path)
    datasource = yaml.safe_load(
        (INFRA / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert board["uid"] == path.stem
    variables = {v["name"] for v in board["templating"]["list"]}
    for v in board["templating"]["list"]:
        assert v["datasource"]["uid"] == datasource["uid"]
        assert re.fullmatch(r"label_values\(\w+, \w+\)", v["query"]["query"]), v["name"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    assert all(isinstance(i, int) and i > 0 for i in ids)
    cells: set[tuple[int, int]] = set()
    logs = yaml.safe_load((INFRA / "grafana/provisioning/datasources/opensearch.yml").read_text())[
        "datasources"
    ][0]
    for panel in board["panels"]:
        assert panel["type"] in PANEL_TYPES, panel["title"]
        if panel["type"] == "logs":
            assert panel["datasource"] == {"type": logs["type"], "uid": logs["uid"]}
            assert [t["datasource"]["uid"] for t in panel["targets"]] == [logs["uid"]]
            assert all(t["query"].strip() for t in panel["targets"]), panel["title"]
            assert logs["jsonData"]["timeField"] == panel["targets"][0]["timeField"]
            continue
        assert panel["datasource"] == {"type": datasource["type"], "uid": datasource["uid"]}
        pos = panel["gridPos"]
        assert pos["x"] >= 0, panel["title"]
        assert 0 < pos["w"] <= 24 - pos["x"], panel["title"]
        cell = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & cell, f"{panel['title']} overlaps another panel"
        cells |= cell
        refs = [t["refId"] for t in panel["targets"]]
        assert refs, panel["title"]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource["uid"]
            assert target["expr"].strip(), panel["title"]
            used = set(re.findall(r"\$(\w+)", target["expr"]))
            assert used <= variables | BUILTINS, f"{panel['title']}: undefined {used}"
            if panel["type"] == "heatmap":
                assert target["format"] == "heatmap"


def test_dashboards_cover_the_four_views() -> None:
    titles = {
        _load(p)["uid"]: [panel["title"] for panel in _load(p)["panels"]] for p in DASHBOARD_FILES
    }
    serving = " ".join(titles["tillflow-serving"])
    assert all(q in serving for q in ("p50", "p95", "p99", "heatmap"))
    assert any("lag" in t.lower() for t in titles["tillflow-streaming"])
    assert any("freshness" in t.lower() for t in titles["tillflow-streaming"])
    assert any("drift" in t.lower() for t in titles["tillflow-models"])
    assert any("revenue" in t.lower() for t in titles["tillflow-business"])
    assert any("price change" in t.lower() for t in titles["tillflow-business"])


def _exported_names() -> set[str]:
    """Every sample name the code can export (flows, API, batch, registry)."""
    from prometheus_client import CollectorRegistry

    from api.metrics import ApiMetrics
    from flows.metrics import ConsumerLagCollector, FlowMetrics
    from observability.governance import audit_families, skew_families
    from observability.jobs import JobMetrics, RegistryCollector
    from registry.store import ModelRegistry

    registries = [FlowMetrics(CollectorRegistry()).registry, ApiMetrics().registry]
    jobs = JobMetrics(CollectorRegistry())
    nowhere = Settings(mlflow_url="http://127.0.0.1:9", registry_dir=ROOT / "no-such-registry")
    jobs.registry.register(RegistryCollector(ModelRegistry.from_settings(nowhere)))
    jobs.registry.register(ConsumerLagCollector(Settings(), {}))
    registries.append(jobs.registry)
    names = set()
    for registry in registries:
        for family in registry.collect():
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
            names |= {family.name + s for s in suffixes.get(family.type, ("",))}
    names |= {family.name for family in audit_families(None) + skew_families(None)}
    return names


def test_dashboards_and_alerts_only_use_metrics_the_code_exports() -> None:
    exported = _exported_names()
    rules = (INFRA / "prometheus" / "rules" / "tillflow.yml").read_text()
    used = set(re.findall(r"\btillflow_[a-z_]+", rules))
    for path in DASHBOARD_FILES:
        board = _load(path)
        for panel in board["panels"]:
            for target in panel["targets"]:
                used |= set(re.findall(r"\btillflow_[a-z_]+", target.get("expr", "")))
        for variable in board["templating"]["list"]:
            used |= set(re.findall(r"\btillflow_[a-z_]+", variable["query"]["query"]))
    assert len(used) > 25
    assert used <= exported, f"not exported by any tillflow process: {sorted(used - exported)}"
