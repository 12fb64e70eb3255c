"""The storefront's search box in a real headless Chromium, against the real API and OpenSearch.

Products get names from the catalogue; a search shows results and facets from ``GET /search``
and sends a real ``search`` activity event (API → Kafka), as a click sends ``view``.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
import uvicorn
from playwright.sync_api import Page, expect

from api.main import create_app
from flows.catalogue import store_catalogue
from schemas.catalogue import CatalogueItem
from schemas.settings import Settings
from schemas.topics import USER_ACTIVITY
from search.client import opensearch_client
from search.indexer import Indexer
from tests.flow_processes import free_port

pytestmark = pytest.mark.integration

TEAS = ["Jasmine Green Tea", "Earl Grey Tea", "Chamomile Tea", "English Breakfast Tea"]


@pytest.fixture(scope="module")
def shop_url(stack: Settings) -> Iterator[str]:
    rid = uuid.uuid4().hex[:6]
    settings = stack.model_copy(
        update={
            "redis_prefix": f"{stack.redis_prefix}spage{rid}:",
            "search_index": f"test-spage{rid}-products",
            "rate_limit_per_s": 0.0,
            "api_port": free_port(),
        }
    )
    items = [
        CatalogueItem(
            sku=f"SKU-T{i}",
            category="tea",
            list_price=4.0 + i,
            unit_cost=2.0,
            name=name,
            brand="Kestrel",
        )
        for i, name in enumerate(TEAS)
    ] + [
        CatalogueItem(
            sku="SKU-C1",
            category="coffee",
            list_price=9.0,
            unit_cost=4.0,
            name="Kestrel Espresso Beans",
        )
    ]
    store_catalogue(settings, items)
    indexer, stop = Indexer(settings), threading.Event()
    worker = threading.Thread(target=indexer.run, args=(stop,), daemon=True)
    worker.start()
    assert indexer.wait_for(lambda: indexer.indexed >= len(items), 120), "catalogue not indexed"
    with opensearch_client(settings) as client:
        client.indices.refresh(index=settings.search_index)
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=settings.api_port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    while not server.started and not started.wait(0.05):  # uvicorn sets no event of its own
        assert thread.is_alive(), "uvicorn died during start-up"
    try:
        yield f"http://127.0.0.1:{settings.api_port}"
    finally:
        server.should_exit = True
        thread.join(10)
        stop.set()
        worker.join(30)
        with opensearch_client(settings) as client:
            client.indices.delete(index=settings.search_index, ignore_unavailable=True)


def test_cards_show_product_names(shop_url: str, page: Page) -> None:
    page.goto(shop_url + "/")
    expect(page.locator('#grid [data-sku="SKU-T0"] .name')).to_have_text("Jasmine Green Tea")
    expect(page.locator('#grid [data-sku="SKU-T0"] .sku')).to_have_text("SKU-T0")


def test_search_box_shows_results_facets_and_sends_the_search_event(
    shop_url: str, page: Page, consume: Callable[..., list[tuple[bytes | None, dict[str, object]]]]
) -> None:
    page.goto(f"{shop_url}/")
    shopper = page.locator("#shopper")  # the page's own shopper, from its session
    expect(shopper).to_have_text(re.compile(r"^u-"), timeout=10_000)
    user = shopper.inner_text()
    page.fill("#q", "jasmin tee")  # two typos
    page.click("#search button")
    first = page.locator("#result-grid .card").first
    expect(first.locator(".name")).to_have_text("Jasmine Green Tea", timeout=10_000)
    page.fill("#q", "kestrel")  # the brand: every product
    page.click("#search button")
    expect(page.locator("#result-grid .card")).to_have_count(5, timeout=10_000)
    facets = page.locator("#facet-categories")
    expect(facets).to_contain_text("tea (4)")
    expect(facets).to_contain_text("coffee (1)")
    facets.locator("a", has_text="coffee").click()  # a facet narrows the results
    expect(page.locator("#result-grid .card")).to_have_count(1, timeout=10_000)
    expect(page.locator("#result-grid .card .name")).to_have_text("Kestrel Espresso Beans")
    expect(facets).to_contain_text("tea (4)")  # the other category stays offered
    events = consume(USER_ACTIVITY, 2, timeout_s=30, where=lambda v: v.get("user_id") == user)
    assert [(e["action"], e["query"], e["sku"]) for _, e in events] == [
        ("search", "jasmin tee", None),
        ("search", "kestrel", None),
    ]  # typed searches only: choosing a facet sends nothing
