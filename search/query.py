"""What a product search asks OpenSearch, and what its answer means (pure).

The text part is typo tolerant (each word fuzzy over name, brand, category and description
together; exact words weigh more in the name and brand, and the exact phrase in the name) and
blended with popularity by ``function_score`` (relevance × log10(2 + weight · popularity)).
Filters go in ``post_filter`` and each facet counts under the *other* filters, so choosing a
category still shows the other categories' counts, and the price buckets follow the chosen
category.

>>> body = search_body(SearchQuery(q="yogurt", category="dairy", max_price=5.0))
>>> body["post_filter"]["bool"]["filter"][0]
{'term': {'category.raw': 'dairy'}}
>>> body["aggs"]["categories"]["filter"]["bool"]["filter"]
[{'range': {'price': {'lte': 5.0}}}]
>>> search_body(SearchQuery(sort="price"))["sort"][0]
{'price': {'order': 'asc'}}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from search.documents import ALL_TEXT, TEXT_FIELDS

Sort = Literal["relevance", "price", "popularity"]

PRICE_BUCKETS: tuple[tuple[float | None, float | None], ...] = (
    (None, 5.0),
    (5.0, 10.0),
    (10.0, 20.0),
    (20.0, 50.0),
    (50.0, None),
)
"""The price facet's buckets: [from, to) in the shop's currency."""

WORD = re.compile(r"\w+")
"""What the index's tokenizer splits text into, closely enough to count a query's words."""

SOURCE_FIELDS = [
    "sku",
    "title",
    "brand",
    "category",
    "price",
    "list_price",
    "on_hand",
    "popularity",
]


@dataclass(frozen=True, slots=True)
class SearchQuery:
    q: str | None = None
    category: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    sort: Sort = "relevance"
    size: int = 20
    offset: int = 0
    popularity_weight: float = 1.0


def _text(q: str | None) -> dict[str, Any]:
    """Fuzzy words over :data:`ALL_TEXT` (one expansion per word) decide what matches; exact
    words in the boosted fields, and the whole phrase in the name, weigh more.

    >>> list(_text("yogurt")["bool"]), len(_text("greek yogurt")["bool"]["should"])
    (['must', 'should'], 2)
    """
    if not q:
        return {"match_all": {}}
    should: list[dict[str, Any]] = [
        {"multi_match": {"query": q, "fields": list(TEXT_FIELDS), "type": "best_fields"}}
    ]
    if len(WORD.findall(q)) > 1:  # one word's phrase is that word, already counted
        should.append({"match_phrase": {"title": {"query": q, "boost": 2.0}}})
    fuzzy = {"query": q, "fuzziness": "AUTO", "prefix_length": 1, "max_expansions": 50}
    return {"bool": {"must": [{"match": {ALL_TEXT: fuzzy}}], "should": should}}


def _price_range(query: SearchQuery) -> list[dict[str, Any]]:
    bounds = {}
    if query.min_price is not None:
        bounds["gte"] = query.min_price
    if query.max_price is not None:
        bounds["lte"] = query.max_price
    return [{"range": {"price": bounds}}] if bounds else []


def _category(query: SearchQuery) -> list[dict[str, Any]]:
    return [{"term": {"category.raw": query.category}}] if query.category else []


def _bucket(lo: float | None, hi: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {"key": f"{lo or 0:g}-{'' if hi is None else f'{hi:g}'}"}
    if lo is not None:
        out["from"] = lo
    if hi is not None:
        out["to"] = hi
    return out


def search_body(query: SearchQuery) -> dict[str, Any]:
    """The ``_search`` request body for ``query``."""
    scored = {
        "function_score": {
            "query": _text(query.q),
            "field_value_factor": {
                "field": "popularity",
                "modifier": "log2p",
                "factor": max(query.popularity_weight, 1e-6),
                "missing": 0,
            },
            "boost_mode": "multiply",
        }
    }
    sort: list[Any] = {
        "relevance": ["_score", {"sku": {"order": "asc"}}],
        "price": [{"price": {"order": "asc"}}, "_score", {"sku": {"order": "asc"}}],
        "popularity": [
            {"popularity": {"order": "desc", "missing": "_last"}},
            "_score",
            {"sku": {"order": "asc"}},
        ],
    }[query.sort]
    return {
        "query": scored,
        "post_filter": {"bool": {"filter": _category(query) + _price_range(query)}},
        "aggs": {
            "categories": {
                "filter": {"bool": {"filter": _price_range(query)}},
                "aggs": {"values": {"terms": {"field": "category.raw", "size": 50}}},
            },
            "prices": {
                "filter": {"bool": {"filter": _category(query)}},
                "aggs": {
                    "values": {
                        "range": {
                            "field": "price",
                            "ranges": [_bucket(lo, hi) for lo, hi in PRICE_BUCKETS],
                        }
                    }
                },
            },
        },
        "sort": sort,
        "track_scores": True,
        "from": query.offset,
        "size": query.size,
        "_source": SOURCE_FIELDS,
    }


class SearchHit(BaseModel):
    sku: str
    title: str = Field(description="The product's name, or its sku when it has none.")
    brand: str | None = None
    category: str | None = None
    price: float | None = Field(None, description="The price published now.")
    list_price: float | None = None
    on_hand: int | None = Field(None, description="Units over all stores, when reported.")
    popularity: float | None = None
    score: float = Field(description="Relevance blended with popularity (and the ranker).")
    personal_score: float | None = Field(
        None, description="The ranker's score for this shopper, when `user` was given."
    )


class FacetValue(BaseModel):
    value: str
    count: int


class PriceBucket(BaseModel):
    key: str
    min: float | None = Field(None, alias="from", description="Inclusive lower bound.")
    max: float | None = Field(None, alias="to", description="Exclusive upper bound.")
    count: int

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class Facets(BaseModel):
    categories: list[FacetValue]
    prices: list[PriceBucket]


class SearchResults(BaseModel):
    total: int = Field(description="Products that match the text and the filters.")
    items: list[SearchHit]
    facets: Facets
    ranked_by: str = Field(
        description="`search` (relevance × popularity, or the chosen sort) or `search+ranker` "
        "(the registry's ranker re-ranked the page for `user`)."
    )
    model_version: str | None = None


RESPONSE_FIELDS = ",".join(
    [
        "hits.total.value",
        "hits.hits._score",
        "hits.hits._source",
        *(f"aggregations.*.values.buckets.{k}" for k in ("key", "from", "to", "doc_count")),
    ]
)
"""``filter_path`` of the search request: only what :func:`parse_response` reads is sent back."""


def _buckets(aggs: dict[str, Any], name: str) -> list[dict[str, Any]]:
    buckets: list[dict[str, Any]] = aggs.get(name, {}).get("values", {}).get("buckets", [])
    return buckets


def parse_response(body: dict[str, Any]) -> SearchResults:
    """The answer of :func:`search_body`'s request as typed results (validated in one pass).

    Under :data:`RESPONSE_FIELDS` an empty list is left out of the answer, not sent empty.

    >>> raw = {"hits": {"total": {"value": 1}, "hits": [{"_score": 2.0, "_source":
    ...        {"sku": "A", "title": "Milk", "price": 1.0}}]}, "aggregations": {
    ...        "categories": {"values": {"buckets": [{"key": "dairy", "doc_count": 1}]}},
    ...        "prices": {"values": {"buckets": [{"key": "0-5", "to": 5.0, "doc_count": 1}]}}}}
    >>> r = parse_response(raw)
    >>> r.total, r.items[0].title, r.facets.categories[0].count, r.facets.prices[0].max
    (1, 'Milk', 1, 5.0)
    >>> parse_response({"hits": {"total": {"value": 0}}}).items
    []
    """
    hits = body["hits"]
    aggs = body.get("aggregations", {})
    return SearchResults.model_validate(
        {
            "total": hits["total"]["value"],
            "items": [
                {"title": h["_source"]["sku"]}
                | {k: v for k, v in h["_source"].items() if v is not None}
                | {"score": round(float(h.get("_score") or 0.0), 6)}
                for h in hits.get("hits", [])
            ],
            "facets": {
                "categories": [
                    {"value": b["key"], "count": b["doc_count"]}
                    for b in _buckets(aggs, "categories")
                ],
                "prices": [
                    {
                        "key": b["key"],
                        "from": b.get("from"),
                        "to": b.get("to"),
                        "count": b["doc_count"],
                    }
                    for b in _buckets(aggs, "prices")
                ],
            },
            "ranked_by": "search",
        }
    )
