"""The serving values' encodings: what a writer stores, the reader's model reads back unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from api.ids import valid_id
from schemas.events import Identifier
from schemas.serving import CurrentPrices, PriceDetails, PricingState, StoredShopper

ids = (
    st.text(
        st.characters(min_codepoint=0x20, exclude_characters="\x7f", exclude_categories=("Cs",)),
        min_size=1,
        max_size=128,
    )
    .map(str.strip)
    .filter(bool)
)
scores = st.floats(allow_nan=False, allow_infinity=False)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
).map(lambda t: t - timedelta(microseconds=t.microsecond % 1000))
cents = st.integers(1, 100_000_000).map(lambda c: c / 100)


@given(
    user=ids,
    again=st.lists(st.tuples(ids, scores), max_size=50),
    recent=st.lists(ids, max_size=10),
    seen=st.lists(ids, max_size=50),
    categories=st.lists(st.tuples(ids, scores), max_size=3),
    at=moments,
)
def test_an_encoded_shopper_reads_back_as_written(
    user: str,
    again: list[tuple[str, float]],
    recent: list[str],
    seen: list[str],
    categories: list[tuple[str, float]],
    at: datetime,
) -> None:
    stored = StoredShopper.model_validate_json(
        StoredShopper.encode(user, again, recent, seen, categories, at)
    )
    assert stored.user_id == user
    assert [(i.sku, i.score) for i in stored.again] == again
    assert (list(stored.recent), list(stored.seen)) == (recent, seen)
    assert list(stored.categories) == categories
    assert stored.updated_at == at
    assert StoredShopper.model_validate_json(stored.model_dump_json()) == stored


@pytest.mark.parametrize("score", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("where", ["again", "categories"])
def test_a_shopper_with_a_non_finite_score_is_refused(score: float, where: str) -> None:
    scored = [("a", 1.0), ("b", score)]
    fine = [("a", 1.0)]
    again, categories = (scored, fine) if where == "again" else (fine, scored)
    with pytest.raises(ValueError, match="not finite"):
        StoredShopper.encode("u1", again, ["a"], ["a"], categories, datetime.now(UTC))


@given(price=cents, previous=cents, at=moments, reason=st.text(max_size=200), version=ids)
def test_price_details_read_back_from_their_hash(
    price: float, previous: float, at: datetime, reason: str, version: str
) -> None:
    details = PriceDetails(
        price=price, previous_price=previous, updated_at=at, reason=reason, model_version=version
    )
    fields = details.to_hash()
    assert all(isinstance(v, str) for v in fields.values())
    assert PriceDetails.from_hash(fields) == details


@given(prices=st.dictionaries(ids, cents, max_size=20))
def test_current_prices_read_back_from_their_hash(prices: dict[str, float]) -> None:
    fields = CurrentPrices(prices).to_hash()
    assert CurrentPrices.from_hash(fields).root == prices
    raw = {k.encode(): v.encode() for k, v in fields.items()}
    assert CurrentPrices.from_hash(raw).root == prices  # as the bytes client reads it


@given(
    elasticity=scores,
    observations=st.integers(0, 10**6),
    units=st.floats(0, 1e6),
    decision=st.text(max_size=100),
)
def test_the_pricing_state_reads_back_what_the_flow_wrote(
    elasticity: float, observations: int, units: float, decision: str
) -> None:
    values = {
        "elasticity": elasticity,
        "observations": observations,
        "evidence_units": units,
        "decision": decision,
        "views_5m": 3,  # a model feature: not part of the pricing hash
    }
    fields = PricingState.encode(values)
    assert "views_5m" not in fields
    state = PricingState.from_hash(fields)
    assert (state.elasticity, state.observations, state.evidence_units) == (
        elasticity,
        observations,
        units,
    )
    assert state.decision == (decision or None)  # an empty reason reads as none
    assert state.elasticity_std is None  # not written: unknown


identifiers = TypeAdapter(Identifier)


@given(st.text(max_size=140))
def test_the_api_accepts_exactly_the_ids_the_contract_accepts(text: str) -> None:
    try:
        identifiers.validate_python(text)
        contract = True
    except ValidationError:
        contract = False
    assert valid_id(text) == contract
