"""The hot routes' answers as bytes, and the verified-token cache behind their auth checks."""

from __future__ import annotations

import time
from dataclasses import replace

import orjson
import pytest
from pydantic import SecretStr

from api.prices import Priced, PriceState, price_view
from api.responses import json_object, model_json
from api.tokens import TokenError, VerifiedTokens, issue_token
from schemas.catalogue import CatalogueItem
from schemas.serving import PriceDetails, PriceView, PricingState
from schemas.settings import Settings

STATE = PriceState(
    sku="SKU-1",
    details=PriceDetails.from_hash(
        {
            "price": "9.5",
            "previous_price": "10.0",
            "updated_at": "2026-01-07T12:00:00+00:00",
            "reason": "pricer",
            "model_version": "pricer:1",
        }
    ),
    pricing=PricingState.from_hash(
        {"elasticity": "-1.7", "elasticity_std": "0.2", "observations": "30"}
    ),
    features={"units_24h": "12"},
    catalogue=CatalogueItem(sku="SKU-1", list_price=10.0, unit_cost=6.0, category="tea"),
)


@pytest.mark.parametrize(
    "state",
    [STATE, replace(STATE, details=None), replace(STATE, pricing=PricingState())],
)
def test_a_cached_answer_is_the_json_of_the_documented_view(state: PriceState) -> None:
    priced = Priced.of(state, demand=None)
    answer = orjson.loads(priced.body)
    assert PriceView.model_validate(answer) == price_view(state)
    assert answer == price_view(state).model_dump(mode="json")
    assert priced.model is None


def test_several_answers_make_one_object_keyed_by_sku() -> None:
    one, two = model_json(price_view(STATE)), model_json(price_view(STATE, stale=True))
    assert orjson.loads(json_object({"a": one, 'b"': two})) == {
        "a": orjson.loads(one),
        'b"': orjson.loads(two),
    }


def test_a_verified_token_is_kept_and_still_expires() -> None:
    settings, now = Settings(), time.time()
    token, _ = issue_token(settings, "shopper", "u-1", [], now=now, ttl_s=30, session_id="s")
    seen = VerifiedTokens(max_tokens=2)
    assert seen.read(settings, token, now=now).subject == "u-1"
    assert seen.read(settings, token, now=now + 29).session_id == "s"
    assert len(seen) == 1
    with pytest.raises(TokenError, match="expired"):
        seen.read(settings, token, now=now + 30)
    assert len(seen) == 0


def test_a_forged_token_is_refused_every_time_and_never_kept() -> None:
    settings, now = Settings(), time.time()
    forger = settings.model_copy(update={"jwt_secret": SecretStr("forged-secret-" * 4)})
    forged, _ = issue_token(forger, "admin", "mallory", ["admin:read"], now=now)
    seen = VerifiedTokens()
    for _ in range(2):
        with pytest.raises(TokenError, match="invalid token"):
            seen.read(settings, forged, now=now)
    assert len(seen) == 0


def test_the_oldest_verified_token_goes_first() -> None:
    settings, now = Settings(), time.time()
    tokens = [issue_token(settings, "producer", f"c-{i}", [], now=now)[0] for i in range(3)]
    seen = VerifiedTokens(max_tokens=2)
    for token in tokens:
        seen.read(settings, token, now=now)
    assert len(seen) == 2
