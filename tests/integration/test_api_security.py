"""Who may write what and read whose, and every request limit, against the real API, Kafka
and Redis: one test per credential rule and per limit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from api.main import create_app
from api.tokens import issue_token
from schemas.settings import Settings
from schemas.topics import COMPETITOR_PRICES, ORDERS, Topic
from tests.credentials import admin_headers, bearer, producer_headers
from tests.unit.test_schemas import VALID

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secure(stack: Settings) -> Settings:
    """Revocations seen at once; small limits so that each one is reached in a few requests."""
    return stack.model_copy(
        update={
            "redis_prefix": f"{stack.redis_prefix}sec{uuid.uuid4().hex[:6]}:",
            "producer_check_s": 0.0,
            "rate_limit_per_s": 0.001,
            "rate_limit_burst": 1_000,
        }
    )


@pytest.fixture(scope="module")
def api(secure: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(secure)) as c:
        yield c


def order(i: int) -> dict[str, object]:
    return {**VALID["orders"], "event_id": f"sec-{uuid.uuid4().hex}-{i}"}


def tillflow(settings: Settings, *args: str) -> str:
    """Run a ``tillflow`` command (its own process) against this test's Redis keys; stdout."""
    env = {
        **os.environ,
        "TILLFLOW_REDIS_PREFIX": settings.redis_prefix,
        "TILLFLOW_REDIS_URL": settings.redis_url,
        "COLUMNS": "200",
    }
    result = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def token_for(api: TestClient, client_id: str, secret: str, scope: str = "") -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "scope": scope,
    }
    answer = api.post("/oauth/token", data=form)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


# -- producers ---------------------------------------------------------------------------
def test_an_anonymous_event_is_401_and_nothing_is_produced(
    api: TestClient, end_offsets: Callable[[Topic], int]
) -> None:
    before = end_offsets(COMPETITOR_PRICES)
    steering = {
        "event_id": "x9",
        "event_time": "2026-01-05T00:00:00Z",
        "sku": "SKU-00001",
        "competitor": "evil",
        "price": 0.01,
    }
    answer = api.post("/events/competitor-prices", json=steering)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "POST /oauth/token" in answer.json()["detail"]
    assert api.post("/events/nope", json=steering).status_code == 401  # nothing learned
    assert end_offsets(COMPETITOR_PRICES) == before


def test_a_producer_client_writes_its_topics_until_revoked(
    api: TestClient, secure: Settings, end_offsets: Callable[[Topic], int]
) -> None:
    created = tillflow(secure, "producers", "create", "pos-12", "--topic", "orders")
    fields = dict(line.split("=", 1) for line in created.splitlines() if "=" in line)
    client_id, secret = fields["client_id"], fields["client_secret"]
    token = token_for(api, client_id, secret)
    before = end_offsets(ORDERS)
    assert api.post("/events/orders", json=order(1), headers=bearer(token)).status_code == 202
    assert end_offsets(ORDERS) == before + 1
    wrong_topic = api.post("/events/inventory", json=VALID["inventory"], headers=bearer(token))
    assert wrong_topic.status_code == 403
    assert "events:write:inventory" in wrong_topic.json()["detail"]
    assert secret not in tillflow(secure, "producers", "list")  # only the hash is stored

    tillflow(secure, "producers", "revoke", client_id)
    revoked = api.post("/events/orders", json=order(2), headers=bearer(token))
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["detail"]
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    assert api.post("/oauth/token", data=form).status_code == 401
    assert end_offsets(ORDERS) == before + 1


def test_a_producer_token_is_refused_when_expired_forged_or_for_an_ungranted_scope(
    api: TestClient, secure: Settings
) -> None:
    tillflow_out = tillflow(secure, "producers", "create", "feed", "--topic", "inventory")
    fields = dict(line.split("=", 1) for line in tillflow_out.splitlines() if "=" in line)
    long_ago = time.time() - 7_200
    expired, _ = issue_token(
        secure, "producer", fields["client_id"], ["events:write:inventory"], now=long_ago, ttl_s=60
    )
    answer = api.post("/events/inventory", json=VALID["inventory"], headers=bearer(expired))
    assert answer.status_code == 401
    assert "expired" in answer.json()["detail"]
    forged = expired[:-4] + ("AAAA" if not expired.endswith("AAAA") else "BBBB")
    assert (
        api.post("/events/inventory", json=VALID["inventory"], headers=bearer(forged)).status_code
        == 401
    )
    form = {
        "grant_type": "client_credentials",
        "client_id": fields["client_id"],
        "client_secret": fields["client_secret"],
        "scope": "events:write:orders",
    }
    assert api.post("/oauth/token", data=form).status_code == 400
    admin = api.post("/events/inventory", json=VALID["inventory"], headers=admin_headers(secure))
    assert admin.status_code == 403  # an admin token is not a producer credential


# -- shoppers ----------------------------------------------------------------------------
def test_a_shopper_session_posts_its_own_activity_only(
    secure: Settings, end_offsets: Callable[[Topic], int]
) -> None:
    with TestClient(create_app(secure)) as browser:
        started = browser.post("/session")
        cookie = started.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        session = started.json()
        own = {
            **VALID["user-activity"],
            "event_id": f"own-{uuid.uuid4().hex}",
            "user_id": session["user_id"],
            "session_id": session["session_id"],
        }
        assert browser.post("/events/user-activity", json=own).status_code == 202
        other = {**own, "event_id": f"other-{uuid.uuid4().hex}", "user_id": "u-000001"}
        assert browser.post("/events/user-activity", json=other).status_code == 403
        before = end_offsets(ORDERS)
        assert browser.post("/events/orders", json=order(3)).status_code == 403
        assert end_offsets(ORDERS) == before
        again = browser.post("/session").json()
        assert (again["user_id"], again["session_id"]) == (
            session["user_id"],
            session["session_id"],
        )


def test_recommendations_are_readable_by_their_shopper_or_an_admin_only(
    api: TestClient, secure: Settings
) -> None:
    with TestClient(create_app(secure)) as browser:
        me = browser.post("/session").json()["user_id"]
        assert browser.get(f"/recommendations/{me}").status_code == 200
        other = browser.get("/recommendations/u-000001")
        assert other.status_code == 403
        assert "another shopper" in other.json()["detail"]
    assert api.get(f"/recommendations/{me}").status_code == 401
    assert api.get(f"/recommendations/{me}", headers=admin_headers(secure)).status_code == 200
    writer = producer_headers(secure, ["orders"])
    assert api.get(f"/recommendations/{me}", headers=writer).status_code == 403


def test_a_websocket_feed_is_refused_to_anyone_but_its_shopper_or_an_admin(
    secure: Settings,
) -> None:
    with TestClient(create_app(secure)) as browser:
        me = browser.post("/session").json()["user_id"]
        with browser.websocket_connect(f"/ws/recommendations/{me}") as ws:
            assert ws.receive_json()["user_id"] == me
        with (
            pytest.raises(WebSocketDenialResponse) as other,
            browser.websocket_connect("/ws/recommendations/u-000001"),
        ):
            pass  # refused before it opens
        assert other.value.status_code == 403
    with TestClient(create_app(secure)) as anonymous:
        with (
            pytest.raises(WebSocketDenialResponse) as nobody,
            anonymous.websocket_connect(f"/ws/recommendations/{me}"),
        ):
            pass  # refused before it opens
        assert nobody.value.status_code == 401
        with anonymous.websocket_connect(
            f"/ws/recommendations/{me}", headers=admin_headers(secure)
        ) as ws:
            assert ws.receive_json()["user_id"] == me


# -- limits ------------------------------------------------------------------------------
def test_a_body_over_the_cap_is_413_declared_or_streamed(secure: Settings) -> None:
    small = secure.model_copy(update={"max_body_bytes": 2_048})
    big = b"[" + b",".join([b'{"event_id": "x"}'] * 200) + b"]"
    with TestClient(create_app(small), headers=producer_headers(small)) as c:
        declared = c.post(
            "/events/orders", content=big, headers={"content-type": "application/json"}
        )
        streamed = c.post(
            "/events/orders",
            content=iter([big[:1_500], big[1_500:]]),
            headers={"content-type": "application/json"},
        )
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert "2048 bytes" in streamed.json()["detail"]


def test_a_body_that_is_not_json_is_415(api: TestClient, secure: Settings) -> None:
    headers = {**producer_headers(secure, ["orders"]), "content-type": "text/plain"}
    answer = api.post("/events/orders", content=b'{"a": 1}', headers=headers)
    assert answer.status_code == 415
    assert "application/json" in answer.json()["detail"]
    promote = api.post(
        "/admin/models/demand/promote",
        content=b'{"version": 1}',
        headers={**admin_headers(secure, ("admin:write",)), "content-type": "text/plain"},
    )
    assert promote.status_code == 415


def test_rate_limits_count_events_not_requests(secure: Settings) -> None:
    limited = secure.model_copy(update={"producer_rate_per_s": 0.01, "producer_burst": 100})
    with TestClient(create_app(limited), headers=producer_headers(limited, ["orders"])) as c:
        assert c.post("/events/orders", json=[order(i) for i in range(100)]).status_code == 202
        refused = c.post("/events/orders", json=order(101))
        too_big = c.post("/events/orders", json=[order(i) for i in range(101)])
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "events/s" in refused.json()["detail"]
    assert too_big.status_code == 413  # more than a whole budget: never accepted


def test_a_login_flood_is_throttled_per_client_and_per_user(secure: Settings) -> None:
    app = create_app(secure.model_copy(update={"login_failures_burst": 3}))
    wrong = {"username": "admin", "password": "guess"}
    with TestClient(app, client=("10.0.0.1", 1)) as attacker:
        codes = [attacker.post("/admin/token", data=wrong).status_code for _ in range(4)]
        other_user = attacker.post("/admin/token", data={**wrong, "username": "bob"})
    assert codes == [401, 401, 401, 429]
    assert other_user.status_code == 429  # the same address, another user
    with TestClient(app, client=("10.0.0.2", 1)) as elsewhere:
        same_user = elsewhere.post("/admin/token", data=wrong)
    assert same_user.status_code == 429  # another address, the same user
    assert int(same_user.headers["retry-after"]) >= 1


def test_websockets_are_capped_per_client(secure: Settings) -> None:
    capped = secure.model_copy(update={"ws_max_per_client": 2})
    with TestClient(create_app(capped)) as c:
        with c.websocket_connect("/ws/prices"), c.websocket_connect("/ws/prices"):
            with (
                pytest.raises(WebSocketDenialResponse) as third,
                c.websocket_connect("/ws/prices"),
            ):
                pass  # refused before it opens
            assert third.value.status_code == 429
        with c.websocket_connect("/ws/prices"):
            pass  # the slots came back when the first two closed


def test_websockets_are_capped_in_total(secure: Settings) -> None:
    capped = secure.model_copy(update={"ws_max_connections": 1})
    with TestClient(create_app(capped)) as c, c.websocket_connect("/ws/prices"):
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            c.websocket_connect("/ws/prices"),
        ):
            pass  # refused before it opens
        assert refused.value.status_code == 503
        assert "websockets open" in refused.value.json()["detail"]


@pytest.mark.parametrize("name", ["..", "..%2F..%2Fetc", "Demand", "a.b", "x" * 65])
def test_model_names_from_requests_are_validated(
    api: TestClient, secure: Settings, name: str
) -> None:
    headers = admin_headers(secure, ("admin:write",))
    promoted = api.post(f"/admin/models/{name}/promote", json={"version": 1}, headers=headers)
    rolled = api.post(f"/admin/models/{name}/rollback", headers=headers)
    assert promoted.status_code in (404, 422), promoted.text
    assert rolled.status_code in (404, 422), rolled.text


# -- secrets and readiness ---------------------------------------------------------------
def test_readiness_details_are_for_admins(api: TestClient, secure: Settings) -> None:
    assert api.get("/readyz").json() == {"ready": True}
    detailed = api.get("/readyz", headers=admin_headers(secure)).json()
    assert detailed["checks"]["redis"] == "ok"


def test_credentials_in_service_urls_never_reach_a_response(secure: Settings) -> None:
    leaky = secure.model_copy(
        update={"redis_url": "redis://tillflow:hunter2@127.0.0.1:1/0", "api_redis_timeout_s": 0.2}
    )
    with TestClient(create_app(leaky), headers=admin_headers(leaky)) as c:
        answers = [c.get("/prices/SKU-1"), c.get("/readyz")]
    for answer in answers:
        assert answer.status_code == 503
        assert "hunter2" not in answer.text
    assert "redis://***@127.0.0.1:1/0" in answers[0].json()["detail"]


def test_an_expired_session_starts_a_new_shopper(secure: Settings) -> None:
    old, _ = issue_token(
        secure,
        "shopper",
        "u-old",
        ["events:write:user-activity"],
        now=(datetime.now(UTC) - timedelta(days=3)).timestamp(),
        ttl_s=60,
        session_id="s-old",
    )
    with TestClient(create_app(secure), cookies={"tillflow_session": old}) as c:
        assert c.get("/recommendations/u-old").status_code == 401
        assert c.post("/session").json()["user_id"] != "u-old"
