"""The pure parts of search: query bodies, answers, bulk lines, log retention, shipper config."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from infra.stack.rsyslog import config as rsyslog_config
from schemas.catalogue import CatalogueItem
from search.documents import ALL_TEXT, TEXT_FIELDS, catalogue_actions, index_body, stock_actions
from search.indexer import Pending
from search.logs import expired_log_indices
from search.query import SearchQuery, parse_response, search_body


@pytest.mark.parametrize(
    ("query", "post_filter", "category_agg_filter", "price_agg_filter"),
    [
        (SearchQuery(), [], [], []),
        (
            SearchQuery(category="tea"),
            [{"term": {"category.raw": "tea"}}],
            [],
            [{"term": {"category.raw": "tea"}}],
        ),
        (
            SearchQuery(min_price=2.0),
            [{"range": {"price": {"gte": 2.0}}}],
            [{"range": {"price": {"gte": 2.0}}}],
            [],
        ),
        (
            SearchQuery(category="tea", min_price=1.0, max_price=3.0),
            [{"term": {"category.raw": "tea"}}, {"range": {"price": {"gte": 1.0, "lte": 3.0}}}],
            [{"range": {"price": {"gte": 1.0, "lte": 3.0}}}],
            [{"term": {"category.raw": "tea"}}],
        ),
    ],
)
def test_each_facet_counts_under_the_other_filters(
    query: SearchQuery,
    post_filter: list[Any],
    category_agg_filter: list[Any],
    price_agg_filter: list[Any],
) -> None:
    body = search_body(query)
    assert body["post_filter"]["bool"]["filter"] == post_filter
    assert body["aggs"]["categories"]["filter"]["bool"]["filter"] == category_agg_filter
    assert body["aggs"]["prices"]["filter"]["bool"]["filter"] == price_agg_filter


@pytest.mark.parametrize(
    ("sort", "first"),
    [
        ("relevance", "_score"),
        ("price", {"price": {"order": "asc"}}),
        ("popularity", {"popularity": {"order": "desc", "missing": "_last"}}),
    ],
)
def test_sort_orders(sort: Any, first: Any) -> None:
    assert search_body(SearchQuery(sort=sort))["sort"][0] == first


def test_text_is_fuzzy_and_blended_with_popularity() -> None:
    scored = search_body(SearchQuery(q="yoghurt", popularity_weight=2.0))["query"]
    inner = scored["function_score"]
    assert inner["query"]["bool"]["must"][0]["match"][ALL_TEXT]["fuzziness"] == "AUTO"
    assert inner["field_value_factor"] == {
        "field": "popularity",
        "modifier": "log2p",
        "factor": 2.0,
        "missing": 0,
    }
    assert search_body(SearchQuery())["query"]["function_score"]["query"] == {"match_all": {}}


@pytest.mark.parametrize(
    ("q", "phrase"),
    [("yoghurt", None), ("greek yoghurt", "greek yoghurt"), ("coca-cola", "coca-cola")],
)
def test_exact_words_weigh_more_and_a_phrase_only_with_two_words(q: str, phrase: Any) -> None:
    should = search_body(SearchQuery(q=q))["query"]["function_score"]["query"]["bool"]["should"]
    exact = should[0]["multi_match"]
    assert (exact["fields"], "fuzziness" in exact) == (list(TEXT_FIELDS), False)
    phrases = [c["match_phrase"]["title"]["query"] for c in should if "match_phrase" in c]
    assert phrases == ([phrase] if phrase else [])


def test_every_searched_field_is_copied_into_the_fuzzy_one() -> None:
    properties = index_body()["mappings"]["properties"]
    searched = {f.split("^")[0] for f in TEXT_FIELDS}
    copied = {name for name, spec in properties.items() if spec.get("copy_to") == ALL_TEXT}
    assert copied == searched
    assert properties[ALL_TEXT]["analyzer"] == properties["title"]["analyzer"]


def test_a_hit_without_catalogue_text_shows_its_sku() -> None:
    empty = {"values": {"buckets": []}}
    hits = [{"_score": None, "_source": {"sku": "A", "price": 2.0}}]
    raw = {
        "hits": {"total": {"value": 1}, "hits": hits},
        "aggregations": {"categories": empty, "prices": empty},
    }
    hit = parse_response(raw).items[0]
    assert (hit.title, hit.score, hit.price) == ("A", 0.0, 2.0)


def test_the_mapping_accepts_every_field_the_bulk_lines_write() -> None:
    fields = set(index_body()["mappings"]["properties"])
    item = CatalogueItem(
        sku="A", category="c", list_price=2.0, unit_cost=1.0, name="n", brand="b", description="d"
    )
    pending = Pending(
        prices={"A": 1.0}, stock={"A": {"s": 1}}, popularity={"A": 2.0}, catalogue={"A": item}
    )
    written: set[str] = set()
    for line in pending.actions("i")[1::2]:
        written |= set(line["doc"]) | set(line.get("upsert", {}))
    assert written <= fields


def test_catalogue_lines_leave_the_stream_fields_alone() -> None:
    item = CatalogueItem(sku="A", category="c", list_price=2.0, unit_cost=1.0)
    _, line = catalogue_actions("i", [item])
    assert not {"price", "on_hand", "popularity"} & set(line["doc"])
    assert line["detect_noop"] is False  # rewritten whole, so fields copied since get filled
    assert line["upsert"]["price"] == 2.0
    assert stock_actions("i", {"A": {"s1": 1, "s2": 4}})[1]["doc"]["on_hand"] == 5


@pytest.mark.parametrize(
    ("today", "keep", "expired"),
    [
        (date(2026, 1, 10), 7, ["l-2026.01.01", "l-2026.01.02"]),
        (date(2026, 1, 10), 30, []),
        (date(2026, 1, 3), 1, ["l-2026.01.01"]),
    ],
)
def test_log_retention(today: date, keep: int, expired: list[str]) -> None:
    names = ["l-2026.01.01", "l-2026.01.02", "l-2026.01.03", "l-bogus", "x-2020.01.01"]
    assert expired_log_indices(names, "l-", today, keep) == expired


def test_rsyslog_accepts_the_shipping_config(tmp_path: Path) -> None:
    binary = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    (tmp_path / "work").mkdir()
    path = tmp_path / "rsyslog.conf"
    path.write_text(
        rsyslog_config(f"{tmp_path}/*.log", "http://127.0.0.1:9200", "t-logs-", tmp_path / "work")
    )
    result = subprocess.run(
        [binary, "-N1", "-f", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
