"""The pages in a real headless Chromium, against the real API, flows, Kafka and Redis.

A click on the storefront is a real ``view`` event: API → Kafka → the running flow →
Redis → pub/sub → the API's websocket → the "Discover" strip.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import redis
from confluent_kafka import Producer
from playwright.sync_api import Page, expect

from flows.catalogue import store_catalogue
from flows.run import process_commands
from flows.sinks.prices import PriceWriter
from infra.stack.topics import delete_topics, ensure_topics
from online_models.pricer import PriceChange
from schemas.catalogue import CatalogueItem
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, USER_ACTIVITY
from tests.flow_processes import flow_env, free_port, wait_until
from tests.served import serve_api

pytestmark = pytest.mark.integration

SKUS = [f"SKU-P{i}" for i in range(1, 7)]


def _seed_history(settings: Settings) -> None:
    """Other shoppers viewed P1 with P2 and P3, so the flow has neighbours for P1."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    start = datetime.now(UTC) - timedelta(minutes=30)
    n = 0
    for shopper in range(20):
        for sku in ("SKU-P1", "SKU-P2", "SKU-P3" if shopper % 2 else "SKU-P2"):
            n += 1
            event = {
                "event_id": f"seed-{n}",
                "event_time": (start + timedelta(seconds=n)).isoformat(),
                "user_id": f"u-seed{shopper}",
                "session_id": f"s-seed{shopper}",
                "action": "view",
                "sku": sku,
            }
            producer.produce(
                settings.topic(USER_ACTIVITY), orjson.dumps(event), key=event["user_id"].encode()
            )
    producer.flush(30)


@dataclass(frozen=True)
class Live:
    url: str
    settings: Settings


@pytest.fixture(scope="module")
def live(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    rid = uuid.uuid4().hex[:6]
    root = tmp_path_factory.mktemp("pages")
    settings = stack.model_copy(
        update={
            "topic_prefix": f"{stack.topic_prefix}pages{rid}.",
            "redis_prefix": f"{stack.redis_prefix}pages{rid}:",
            "lake_dir": root / "lake",
            "recovery_dir": root / "recovery",
            "registry_dir": root / "models",
            "rate_limit_per_s": 0.0,
            "api_port": free_port(),
            "flow_metrics_port": 0,
        }
    )
    ensure_topics(settings)
    store_catalogue(
        settings,
        [
            CatalogueItem(sku=s, category="tea", list_price=10.0 + i, unit_cost=4.0)
            for i, s in enumerate(SKUS)
        ],
    )
    _seed_history(settings)
    log = (root / "flow.log").open("wb")
    [cmd] = process_commands(settings, 1, 1, recovery=False)
    flow = subprocess.Popen(cmd, env=flow_env(settings), stdout=log, stderr=log)
    r = redis.Redis.from_url(settings.redis_url)
    try:
        # The flow is ready once it has learned P1's neighbours from the seeded history.
        def ready() -> bool:
            assert flow.poll() is None, (root / "flow.log").read_text()[-2000:]
            return bool(r.exists(settings.keys.neighbours("SKU-P1")))

        wait_until(ready, "the flow to learn SKU-P1's neighbours", 180)
        with serve_api(settings):
            yield Live(f"http://127.0.0.1:{settings.api_port}", settings)
    finally:
        r.close()
        flow.terminate()
        flow.wait(30)
        log.close()
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])


def test_a_price_update_changes_the_storefront_in_place(live: Live, page: Page) -> None:
    page.goto(live.url + "/")
    price = page.locator('#grid [data-sku="SKU-P2"] .price')
    expect(price).to_have_text("11.00")
    expect(page.locator("#live")).to_have_text("prices live")
    writer = PriceWriter(live.settings)
    writer.write_batch(
        [
            PriceChange(
                sku="SKU-P2",
                price=11.55,
                previous_price=11.0,
                reason="test",
                model_version="pricer:test",
                t=time.time(),
                sequence=1,
            )
        ]
    )
    writer.close()
    expect(price).to_have_text("11.55", timeout=10_000)
    assert page.url == live.url + "/"  # changed in place, no reload


def test_clicks_change_the_recommended_strip(live: Live, page: Page) -> None:
    page.goto(f"{live.url}/")
    strip = page.locator("#strip")
    expect(page.locator("#reco-source")).to_have_text("(popularity)", timeout=10_000)
    expect(page.locator("#shopper")).to_have_text(re.compile(r"^u-[0-9a-f]{16}$"))
    before = strip.get_attribute("data-skus")
    page.locator('#grid [data-sku="SKU-P1"]').click()
    expect(page.locator("#reco-source")).to_have_text("(streaming)", timeout=30_000)
    after = strip.get_attribute("data-skus")
    assert after != before
    assert "SKU-P2" in (after or "").split(",")  # P1's co-viewed neighbour


def test_the_session_is_the_pages_own_shopper_only(live: Live, page: Page) -> None:
    page.goto(f"{live.url}/")
    shopper = page.locator("#shopper")
    expect(shopper).to_have_text(re.compile(r"^u-"))
    own = page.evaluate(
        "u => fetch('/recommendations/' + u).then(r => r.status)", shopper.text_content()
    )
    other = page.evaluate("fetch('/recommendations/u-000001').then(r => r.status)")
    assert (own, other) == (200, 403)
    as_other = page.evaluate(
        """fetch('/events/user-activity', {method: 'POST',
             headers: {'content-type': 'application/json'},
             body: JSON.stringify({event_id: 'forged', event_time: new Date().toISOString(),
                                   user_id: 'u-000001', session_id: 's-x', action: 'view',
                                   sku: 'SKU-P1'})}).then(r => r.status)"""
    )
    assert as_other == 403


def test_the_admin_page_refuses_anonymous_users(live: Live, page: Page) -> None:
    page.goto(live.url + "/admin")
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#console")).to_be_hidden()
    status = page.evaluate("fetch('/admin/models').then(r => r.status)")
    assert status == 401
    page.fill("input[name=username]", live.settings.admin_username)
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("wrong username or password")
    page.fill("input[name=password]", live.settings.admin_password.get_secret_value())
    page.click("button[type=submit]")
    expect(page.locator("#console")).to_be_visible()
    expect(page.locator("#models")).to_contain_text("demand: current v–")
    expect(page.locator("#audit")).to_contain_text("no audit yet")
    expect(page.locator("#skew")).to_contain_text("no skew run yet")


def test_the_pricing_page_shows_a_product(live: Live, page: Page) -> None:
    page.goto(live.url + "/pricing?sku=SKU-P3")
    expect(page.locator("#now")).to_contain_text("list price")
    expect(page.locator("#rails")).to_contain_text("floor")
    expect(page.locator("#rails")).to_contain_text("within guardrails")
    expect(page.locator("#why-summary")).to_contain_text("no demand model")
