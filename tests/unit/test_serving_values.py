"""The serving values' encodings: what a writer stores, the reader's model reads back unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.serving import PriceDetails, StoredRecommendations, StreamingSource

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
    items=st.lists(st.tuples(ids, scores), max_size=50),
    source=st.sampled_from(get_args(StreamingSource)),
    at=moments,
)
def test_an_encoded_list_reads_back_as_written(
    user: str, items: list[tuple[str, float]], source: StreamingSource, at: datetime
) -> None:
    stored = StoredRecommendations.model_validate_json(
        StoredRecommendations.encode(user, items, source, at)
    )
    assert stored.user_id == user
    assert [(i.sku, i.score) for i in stored.items] == items
    assert (stored.source, stored.updated_at) == (source, at)
    assert StoredRecommendations.model_validate_json(stored.model_dump_json()) == stored


@pytest.mark.parametrize("score", [float("nan"), float("inf"), -float("inf")])
def test_a_list_with_a_non_finite_score_is_refused(score: float) -> None:
    with pytest.raises(ValueError, match="not finite"):
        StoredRecommendations.encode(
            "u1", [("a", 1.0), ("b", score)], "personal", datetime.now(UTC)
        )


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
