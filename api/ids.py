"""The ids the API takes in paths and queries: the contract's ``Identifier``, so that every
product and shopper a valid event names can be asked about.

>>> parse_skus("a, b,a")
['a', 'b']
>>> parse_skus("tea bag 20/box, café")
['tea bag 20/box', 'café']
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import HTTPException, Path, status

from schemas.events import ID_PATTERN, MAX_ID_CHARS

MAX_SKUS = 200
SKUS_MAX_CHARS = MAX_SKUS * (MAX_ID_CHARS + 2)  # ids, commas and a space each

SkuPath = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN, description="Product id")
]
UserPath = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN, description="Shopper id")
]


def valid_id(text: str) -> bool:
    """True when ``text`` is an id the contract accepts.

    >>> valid_id("SKU 42/é"), valid_id("a\\x01"), valid_id("x" * 129), valid_id("")
    (True, False, False, False)
    """
    return len(text) <= MAX_ID_CHARS and re.fullmatch(ID_PATTERN, text) is not None


def parse_skus(text: str) -> list[str]:
    """``"a, b,a"`` → ``["a", "b"]``; 422 when empty, too many or malformed."""
    skus = list(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    if not skus:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "skus: give at least one sku")
    if len(skus) > MAX_SKUS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"skus: at most {MAX_SKUS} per request"
        )
    bad = [s for s in skus if not valid_id(s)]
    if bad:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"skus: malformed sku {bad[0]!r}"
        )
    return skus
