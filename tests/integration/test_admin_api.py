"""Admin routes: OAuth2 login, JWT scopes and expiry, models in the registry, drift."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import jwt
import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression

from api.main import create_app
from registry import CHAMPION, ModelRegistry
from schemas.settings import Settings
from tests.registered import model_prefix, register_onnx

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def admin_settings(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return stack.model_copy(
        update={
            "redis_prefix": f"{stack.redis_prefix}admin{uuid.uuid4().hex[:6]}:",
            "registry_dir": tmp_path_factory.mktemp("registry"),
            "mlflow_model_prefix": model_prefix(),
            "rate_limit_per_s": 0.0,
        }
    )


@pytest.fixture(scope="module")
def client(admin_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(admin_settings)) as c:
        yield c


def _onnx(slope: float) -> bytes:
    """A one-feature linear model ``y = slope * x`` as ONNX."""
    x = np.arange(10, dtype=np.float32).reshape(-1, 1)
    return to_onnx(LinearRegression().fit(x, slope * x.ravel()), x[:1]).SerializeToString()


def login(client: TestClient, settings: Settings, scope: str = "") -> dict[str, str]:
    password = settings.admin_password.get_secret_value()
    answer = client.post(
        "/admin/token",
        data={"username": settings.admin_username, "password": password, "scope": scope},
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_anonymous_and_wrong_credentials_are_refused(client: TestClient) -> None:
    anonymous = client.get("/admin/models")
    assert anonymous.status_code == 401
    assert "login required" in anonymous.json()["detail"]
    assert anonymous.headers["www-authenticate"] == "Bearer"
    wrong = client.post("/admin/token", data={"username": "admin", "password": "nope"})
    assert wrong.status_code == 401
    forged = client.get("/admin/models", headers={"Authorization": "Bearer not.a.jwt"})
    assert forged.status_code == 401


def test_expired_tokens_are_refused(client: TestClient, admin_settings: Settings) -> None:
    old = int(time.time()) - 7200
    token = jwt.encode(
        {
            "sub": "admin",
            "kind": "admin",
            "scopes": ["admin:read"],
            "iat": old,
            "exp": old + 60,
            "iss": "tillflow",
        },
        admin_settings.jwt_secret.get_secret_value(),
        algorithm="HS256",
    )
    answer = client.get("/admin/models", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    assert "expired" in answer.json()["detail"]


def test_promote_and_rollback_move_the_champion_alias(
    client: TestClient, admin_settings: Settings
) -> None:
    registry = ModelRegistry.from_settings(admin_settings)
    v1 = register_onnx(admin_settings, "demand", _onnx(2.0), ("x",), {"wape": 0.3})
    v2 = register_onnx(admin_settings, "demand", _onnx(3.0), ("x",), {"wape": 0.2}, promote=False)
    read_only = login(client, admin_settings, scope="admin:read")
    writer = login(client, admin_settings)
    listed = {m["name"]: m for m in client.get("/admin/models", headers=read_only).json()}
    assert listed["demand"]["current"] == v1.version
    assert [v["version"] for v in listed["demand"]["versions"]] == [1, 2]
    forbidden = client.post("/admin/models/demand/promote", json={"version": 2}, headers=read_only)
    assert forbidden.status_code == 403
    assert "admin:write" in forbidden.json()["detail"]
    promoted = client.post("/admin/models/demand/promote", json={"version": 2}, headers=writer)
    assert promoted.status_code == 200
    assert promoted.json()["current"] == v2.version
    assert promoted.json()["loaded"] == "demand:v2"  # the API followed the alias at once
    assert registry.alias("demand", CHAMPION) == 2
    back = client.post("/admin/models/demand/rollback", headers=writer)
    assert back.json()["current"] == v1.version
    assert back.json()["loaded"] == "demand:v1"
    assert registry.alias("demand", CHAMPION) == 1
    nothing = client.post("/admin/models/demand/rollback", headers=writer)
    assert nothing.status_code == 409
    unknown = client.post("/admin/models/demand/promote", json={"version": 99}, headers=writer)
    assert unknown.status_code == 404
    bad = client.post("/admin/models/demand/promote", json={"version": 0}, headers=writer)
    assert bad.status_code == 422


def test_drift_lists_the_flows_detections(client: TestClient, admin_settings: Settings) -> None:
    r = redis.Redis.from_url(admin_settings.redis_url, decode_responses=True)
    keys = admin_settings.keys
    r.xadd(keys.drift_events, {"sku": "SKU-1", "mean_error": "0.4"})
    r.hincrby(keys.flow_stats, "drift_detections", 1)
    r.close()
    body = client.get("/admin/drift", headers=login(client, admin_settings)).json()
    assert body["detections"] == 1
    assert body["recent"][0]["fields"] == {"sku": "SKU-1", "mean_error": "0.4"}


def test_jobs_list_runs_and_triggers_reach_the_scheduler_stream(
    client: TestClient, admin_settings: Settings
) -> None:
    from batch.runs import record_run
    from schemas.jobs import JobRun

    r = redis.Redis.from_url(admin_settings.redis_url)
    keys = admin_settings.keys
    record_run(
        r,
        keys,
        JobRun(
            job="silver",
            status="ok",
            started_at="2026-01-05T00:00:00+00:00",
            duration_s=1.5,
            rows_in=10,
            rows_out=9,
        ),
    )
    headers = login(client, admin_settings)
    listed = client.get("/admin/jobs", headers=headers).json()
    assert "silver" in listed["jobs"]
    assert listed["runs"][0]["rows_out"] == 9
    asked = client.post("/admin/jobs/gold", headers=headers)
    assert asked.status_code == 202
    entries = r.xrange(keys.job_requests)
    r.close()
    assert entries[-1][1] == {b"job": b"gold"}
    assert asked.json()["request_id"] == entries[-1][0].decode()
    unknown = client.post("/admin/jobs/nope", headers=headers)
    assert unknown.status_code == 404
    assert "unknown job" in unknown.json()["detail"]
    reader = login(client, admin_settings, scope="admin:read")
    assert client.post("/admin/jobs/gold", headers=reader).status_code == 403


def test_jobs_show_when_each_scheduled_job_runs_next(
    client: TestClient, admin_settings: Settings
) -> None:
    from batch.scheduler import Scheduler

    clock = [1_767_571_200.0]  # 2026-01-05T00:00:00Z
    scheduler = Scheduler(
        admin_settings, {"maintain": 60.0, "pipeline": 3_600.0}, clock=lambda: clock[0]
    )
    try:
        scheduler.publish_schedule()
        r = redis.Redis.from_url(admin_settings.redis_url)
        r.hset(admin_settings.keys.scheduler_state, "last:pipeline", str(clock[0]))
        r.close()
    finally:
        scheduler.close()
    listed = client.get("/admin/jobs", headers=login(client, admin_settings)).json()
    assert listed["schedule"] == [
        {"job": "maintain", "every_s": 60.0, "last_at": None, "next_at": None},
        {
            "job": "pipeline",
            "every_s": 3600.0,
            "last_at": "2026-01-05T00:00:00+00:00",
            "next_at": "2026-01-05T01:00:00+00:00",
        },
    ]
