"""The ``skew`` job: do the stream features served online match the lake, point-in-time?

Samples ``skew_sample`` products of the catalogue, reads their windowed features and the
watermark they were computed at (``event_time``) from the Feast online store, recomputes the
same features at that watermark from silver's deduplicated events
(:func:`governance.skew.recompute`) and counts the mismatches per feature. Every run is
appended to gold ``feature_skew``; the latest summary goes to Redis (``keys.governance``),
where the scheduler's metrics (``tillflow_feature_skew_mismatch_rate``) and the admin page
read it. A product whose late events were dropped online (``late_events``) or whose events
reached the lake after the value was served can differ without a bug: the rate, not a single
mismatch, is what the alert watches.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import structlog

from batch.lake import append, read_all
from batch.result import StepResult, WaitingForData
from flows.catalogue import load_catalogue
from governance.skew import FEATURES, FeatureSkew, compare, recompute
from infra.clients import redis_client
from schemas.governance import (
    FEATURE_SKEW,
    FEATURE_SKEW_SCHEMA,
    SKEW_FIELD,
    FeatureSkewView,
    SkewSummary,
)
from schemas.lake import ORDER_LINES, USER_ACTIVITY, gold_path, silver_path
from schemas.settings import Settings

log = structlog.get_logger(__name__)


def served(settings: Settings, skus: list[str]) -> tuple[pd.DataFrame, dict[str, float]]:
    """The online store's values of :data:`FEATURES` and each sku's watermark."""
    from featurestore.repo import feature_store, online_features

    found = online_features(feature_store(settings), "sku", skus, [*FEATURES, "event_time"])
    rows: list[tuple[str, str, float]] = []
    as_of: dict[str, float] = {}
    for sku, values in found.items():
        if not values.get("event_time"):
            continue
        as_of[sku] = datetime.fromisoformat(values["event_time"]).timestamp()
        rows.extend((sku, f, float(values[f])) for f in FEATURES if values[f] is not None)
    return pd.DataFrame(rows, columns=["sku", "feature", "value"]), as_of


def lake_events(settings: Settings, skus: list[str]) -> pd.DataFrame:
    """Silver's views, add-to-carts and sales of ``skus`` (``governance.skew`` columns)."""
    wanted = pa.array(skus)
    parts = []
    activity = read_all(
        silver_path(settings.lake_dir, USER_ACTIVITY), ["sku", "event_time", "action"]
    )
    if activity is not None:
        activity = activity.filter(pc.is_in(activity["sku"], wanted))
        frame = activity.to_pandas()
        frame = frame[frame["action"].isin(["view", "add_to_cart"])]
        parts.append(
            pd.DataFrame(
                {
                    "sku": frame["sku"],
                    "t": _seconds(frame["event_time"]),
                    "kind": frame["action"],
                    "quantity": 0,
                    "price": 0.0,
                }
            )
        )
    lines = read_all(
        silver_path(settings.lake_dir, ORDER_LINES), ["sku", "event_time", "quantity", "unit_price"]
    )
    if lines is not None:
        frame = lines.filter(pc.is_in(lines["sku"], wanted)).to_pandas()
        parts.append(
            pd.DataFrame(
                {
                    "sku": frame["sku"],
                    "t": _seconds(frame["event_time"]),
                    "kind": "sale",
                    "quantity": frame["quantity"],
                    "price": frame["unit_price"],
                }
            )
        )
    if not parts:
        raise WaitingForData("waiting for silver user_activity or order_lines; none so far")
    return pd.concat(parts, ignore_index=True)


def _seconds(times: pd.Series) -> pd.Series:
    return times.astype("int64") / 1e6 if times.dtype.kind == "M" else times


def skew_table(found: list[FeatureSkew], run_id: str, at: datetime, threshold: float) -> pa.Table:
    rows = [
        {
            "run_id": run_id,
            "checked_at": at,
            "date": at.date().isoformat(),
            "feature": s.feature,
            "compared": s.compared,
            "mismatches": s.mismatches,
            "mismatch_rate": s.mismatch_rate,
            "max_abs_diff": s.max_abs_diff,
            "threshold": threshold,
            "breached": s.mismatch_rate > threshold,
        }
        for s in found
    ]
    return pa.Table.from_pylist(rows, FEATURE_SKEW_SCHEMA)


def run_skew(
    settings: Settings, now: datetime | None = None, rng: random.Random | None = None
) -> StepResult:
    at = now or datetime.now(UTC)
    skus = sorted(load_catalogue(settings))
    if not skus:
        raise WaitingForData("waiting for a catalogue: `tillflow catalogue load`")
    sample = (rng or random.Random()).sample(skus, min(settings.skew_sample, len(skus)))
    online, as_of = served(settings, sample)
    if not as_of:
        raise WaitingForData("waiting for stream features in the online store; none so far")
    offline = recompute(lake_events(settings, sorted(as_of)), as_of)
    found = compare(online, offline, settings.skew_rel_tolerance)
    run_id = uuid.uuid4().hex
    threshold = settings.skew_max_mismatch_rate
    table = skew_table(found, run_id, at, threshold)
    append(gold_path(settings.lake_dir, FEATURE_SKEW), table, marks={}, partition_by=["date"])
    summary = SkewSummary(
        run_id=run_id,
        checked_at=at.isoformat(timespec="seconds"),
        entities=len(as_of),
        features=[
            FeatureSkewView.model_validate(r)
            for r in table.drop_columns(["run_id", "checked_at", "date"]).to_pylist()
        ],
    )
    client = redis_client(settings)
    try:
        client.hset(settings.keys.governance, SKEW_FIELD, summary.model_dump_json())
    finally:
        client.close()
    skewed = [f.feature for f in summary.features if f.breached]
    log.info("skew.finished", run_id=run_id, entities=len(as_of), breaches=skewed)
    return StepResult(
        rows_in=len(online) + len(offline),
        rows_out=table.num_rows,
        inputs=("feast/sku_features", f"silver/{USER_ACTIVITY}", f"silver/{ORDER_LINES}"),
        outputs=(f"gold/{FEATURE_SKEW}",),
        details={"run_id": run_id, "entities": len(as_of), "breaches": skewed},
    )
