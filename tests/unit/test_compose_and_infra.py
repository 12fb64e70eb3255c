"""The compose file, the Dockerfile and the Kafka launcher's configuration, without an engine."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from infra.errors import StackError
from infra.stack import kafka
from schemas.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "infra" / "docker-compose.yml"


def test_compose_file_matches_the_compose_spec() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_compose_accepts_the_file() -> None:
    binary = shutil.which("docker-compose")
    assert binary is not None, "docker-compose (Debian package) is installed by `make setup`"
    result = subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_compose_runs_the_stack_the_launcher_runs() -> None:
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert {"kafka", "redis", "topics", "api", "flows", "simulator"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    pom = (ROOT / "infra" / "kafka" / "pom.xml").read_text()
    version = services["kafka"]["image"].split(":")[1]
    assert f"<kafka.version>{version}</kafka.version>" in pom, "compose and launcher differ"
    neo4j_pom = (ROOT / "infra" / "neo4j" / "pom.xml").read_text()
    neo4j_version = services["neo4j"]["image"].split(":")[1].removesuffix("-community")
    assert f"<neo4j.version>{neo4j_version}</neo4j.version>" in neo4j_pom, (
        "compose and launcher differ"
    )
    opensearch_pom = (ROOT / "infra" / "opensearch" / "pom.xml").read_text()
    opensearch_version = services["opensearch"]["image"].split(":")[1]
    assert f"<opensearch.version>{opensearch_version}</opensearch.version>" in opensearch_pom, (
        "compose and launcher differ"
    )
    for name in ("topics", "api", "flows", "simulator"):
        assert services[name]["build"]["dockerfile"] == "Dockerfile"
        assert (ROOT / services[name]["build"]["context"].replace("..", ".")).exists()
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in (
        "schemas",
        "simulator",
        "ingest",
        "api",
        "cli",
        "infra",
        "flows",
        "online_models",
        "featurestore",
        "observability",
        "graph",
        "search",
    ):
        assert f"COPY {package} {package}" in dockerfile


TILLFLOW_SERVICES = ("topics", "api", "flows", "scheduler", "simulator")


def _services() -> dict[str, dict[str, object]]:
    services: dict[str, dict[str, object]] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def test_every_long_running_service_restarts_when_it_dies() -> None:
    for name, service in _services().items():
        expected = {"no"} if name == "topics" else {"unless-stopped", "always", "on-failure"}
        assert service.get("restart") in expected, name


def test_service_environments_extend_the_shared_one_instead_of_replacing_it() -> None:
    services = _services()
    shared = yaml.safe_load(COMPOSE.read_text())["x-tillflow-env"]
    assert {"TILLFLOW_KAFKA_BOOTSTRAP", "TILLFLOW_REDIS_URL", "TILLFLOW_NEO4J_URI"} <= set(shared)
    for name in TILLFLOW_SERVICES:
        env = services[name]["environment"]
        assert isinstance(env, dict)
        assert shared.items() <= env.items(), name
    flows_env = services["flows"]["environment"]
    assert isinstance(flows_env, dict)
    assert flows_env["TILLFLOW_RECOVERY_DIR"].startswith("/var/lib/tillflow/")


def _mounts(service: dict[str, object]) -> dict[str, str]:
    """Mount path -> volume name of a service's named volumes."""
    volumes = service.get("volumes", [])
    assert isinstance(volumes, list)
    return {v.split(":")[1]: v.split(":")[0] for v in volumes}


def test_the_api_serves_the_models_the_scheduler_promotes_from_one_volume() -> None:
    services = _services()
    shared = yaml.safe_load(COMPOSE.read_text())["x-tillflow-env"]
    registry = shared["TILLFLOW_REGISTRY_DIR"]
    api, scheduler = _mounts(services["api"]), _mounts(services["scheduler"])
    assert registry in api
    assert api[registry] == scheduler.get(registry)
    assert api[registry] in yaml.safe_load(COMPOSE.read_text())["volumes"]


def test_broker_config_is_a_single_kraft_node_on_loopback(tmp_path: Path) -> None:
    settings = Settings(kafka_port=19092, kafka_controller_port=19093, input_partitions=4)
    props = dict(
        line.split("=", 1)
        for line in kafka.server_properties(settings, tmp_path).splitlines()
        if line
    )
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["num.partitions"] == "4"
    assert props["auto.create.topics.enable"] == "false"


def test_a_cluster_id_never_starts_with_a_dash() -> None:
    # A first byte of 0xF8 encodes to "-" first: the storage tool would read it as an option.
    draws = iter([uuid.UUID(bytes=bytes([0xF8]) + bytes(15)), uuid.UUID(int=7)])
    cluster_id = kafka._cluster_id(lambda: next(draws))
    assert cluster_id == base64.urlsafe_b64encode(uuid.UUID(int=7).bytes).decode().rstrip("=")
    assert len(cluster_id) == 22


def test_missing_java_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError, match="Java is missing"):
        kafka.KAFKA.find_java()


def test_missing_maven_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError, match="Maven is missing"):
        kafka.KAFKA.ensure_jars(Settings(runtime_dir=tmp_path / "runtime"))


@pytest.mark.parametrize(
    ("path", "schema"),
    [
        (".github/workflows/ci.yml", "vendor.github-workflows"),
        (".github/dependabot.yml", "vendor.dependabot"),
    ],
)
def test_code_host_files_match_their_schemas(path: str, schema: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(ROOT / path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_code_hosts_ci_runs_the_readmes_test_command() -> None:
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert "exec make check" in ci_run
    assert "make check" in workflow
