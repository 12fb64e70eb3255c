"""The product index: its mapping, its documents, and the bulk actions that keep it fresh (pure).

A product's document starts from the catalogue (name, brand, description, category, list
price) and is then patched field by field from the stream: ``price`` from price-updates,
``on_hand`` and ``stores`` from inventory, ``popularity`` from the flows' popularity scores.
Every change is a partial ``update`` with ``doc_as_upsert``, so the order in which catalogue
and stream reach a product does not matter and no change overwrites another's fields.

>>> from schemas.catalogue import CatalogueItem
>>> item = CatalogueItem(sku="A", category="dairy", list_price=2.0, unit_cost=1.0, name="Milk")
>>> action, doc = catalogue_actions("products", [item])[:2]
>>> action
{'update': {'_index': 'products', '_id': 'A'}}
>>> doc["doc"]["name"], doc["doc"]["title"], doc["upsert"]["price"], "price" in doc["doc"]
('Milk', 'Milk', 2.0, False)
>>> price_actions("products", {"A": 1.5})[1]["doc"]
{'sku': 'A', 'price': 1.5}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from schemas.catalogue import CatalogueItem

TEXT_FIELDS = ("title^3", "brand^2", "category^2", "description")
"""Fields a query matches exactly, with their boosts: a hit in the name weighs most."""

ALL_TEXT = "text"
"""Every text field copied into one (``copy_to``): typo-tolerant matching expands each word
against this one field's terms, instead of once per field."""

Action = dict[str, Any]


def index_body(refresh_interval: str = "500ms") -> dict[str, Any]:
    """Settings and mapping of the product index (one shard, no replica: a single node).

    Text is folded (lower case, accents removed) so ``rose`` finds ``Rosé``; ``category``
    and ``brand`` are also keywords for the facets and filters. Name, brand, category and
    description are also copied into :data:`ALL_TEXT`.
    """
    text = {"type": "text", "analyzer": "folded"}
    copied = {**text, "copy_to": ALL_TEXT}
    return {
        "settings": {
            "number_of_shards": 1,
            "number_of_replicas": 0,
            "refresh_interval": refresh_interval,
            "analysis": {
                "analyzer": {
                    "folded": {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": ["lowercase", "asciifolding"],
                    }
                }
            },
        },
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "sku": {"type": "keyword"},
                "title": copied,
                "name": text,
                "brand": {**copied, "fields": {"raw": {"type": "keyword"}}},
                "description": copied,
                "category": {**copied, "fields": {"raw": {"type": "keyword"}}},
                ALL_TEXT: text,
                "list_price": {"type": "double"},
                "price": {"type": "double"},
                "on_hand": {"type": "integer"},
                "stores": {"type": "object", "enabled": False},
                "popularity": {"type": "double"},
            },
        },
    }


def _update(index: str, sku: str, fields: Mapping[str, Any]) -> list[Action]:
    return [
        {"update": {"_index": index, "_id": sku}},
        {"doc": {"sku": sku, **fields}, "doc_as_upsert": True},
    ]


def _update_or_insert(
    index: str, sku: str, fields: Mapping[str, Any], new: Mapping[str, Any]
) -> list[Action]:
    """Patch ``fields``; a product not indexed yet is inserted with ``new`` as well.

    The document is re-indexed even when ``fields`` are unchanged (no ``detect_noop``), so a
    field the mapping gained since (a new ``copy_to``) is filled when the catalogue is written.
    """
    return [
        {"update": {"_index": index, "_id": sku}},
        {
            "doc": {"sku": sku, **fields},
            "upsert": {"sku": sku, **fields, **new},
            "detect_noop": False,
        },
    ]


def catalogue_actions(index: str, items: Iterable[CatalogueItem]) -> list[Action]:
    """Bulk lines that write each product's catalogue fields (stream fields untouched).

    A product the stream has not priced yet is inserted at its list price.
    """
    out: list[Action] = []
    for item in items:
        fields = {
            "title": item.title,
            "name": item.name,
            "brand": item.brand,
            "description": item.description,
            "category": item.category,
            "list_price": item.list_price,
        }
        out += _update_or_insert(index, item.sku, fields, {"price": item.list_price})
    return out


def price_actions(index: str, prices: Mapping[str, float]) -> list[Action]:
    """Bulk lines that set each product's current price."""
    return [line for sku, price in prices.items() for line in _update(index, sku, {"price": price})]


def stock_actions(index: str, stock: Mapping[str, Mapping[str, int]]) -> list[Action]:
    """Bulk lines that set each product's units per store and their total.

    >>> stock_actions("p", {"A": {"s1": 2, "s2": 3}})[1]["doc"]
    {'sku': 'A', 'stores': {'s1': 2, 's2': 3}, 'on_hand': 5}
    """
    return [
        line
        for sku, stores in stock.items()
        for line in _update(index, sku, {"stores": dict(stores), "on_hand": sum(stores.values())})
    ]


def popularity_actions(index: str, scores: Mapping[str, float]) -> list[Action]:
    """Bulk lines that set each product's popularity (its decayed interaction count relative
    to the least popular product listed: ``online_models.popularity``)."""
    return [
        line
        for sku, score in scores.items()
        for line in _update(index, sku, {"popularity": round(score, 4)})
    ]
