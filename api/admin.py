"""What the admin routes read and write: registered models, drift, batch job runs and
requests, the latest governance checks (``api/routes/admin.py`` and
``api/routes/governance.py`` declare the routes)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from api.onnx_models import ModelSlot
from api.redis_gate import RedisGate
from infra.clients import AsyncRedis
from registry import ModelRegistry
from schemas.governance import AUDIT_FIELD, SKEW_FIELD, AuditSummary, SkewSummary
from schemas.jobs import JOBS, JobRun, scheduled_jobs
from schemas.keys import RedisKeys


class VersionInfo(BaseModel):
    version: int
    label: str
    created_at: str | None
    metrics: dict[str, Any]
    current: bool


class ModelInfo(BaseModel):
    name: str
    current: int | None = Field(description="The version MLflow's `champion` alias names.")
    loaded: str | None = Field(description="The version this API process serves.")
    error: str | None
    versions: list[VersionInfo]


def registered_models(registry: ModelRegistry, slots: Mapping[str, ModelSlot]) -> list[ModelInfo]:
    """Every registered model (and every one this process serves) with its versions; blocks
    on the registry: call it off the event loop."""
    out = []
    names = sorted(set(registry.names()) | set(slots))
    for name in names:
        current = registry.current(name)
        slot = slots.get(name)
        out.append(
            ModelInfo(
                name=name,
                current=None if current is None else current.version,
                loaded=slot.model.label if slot and slot.model else None,
                error=slot.error if slot else None,
                versions=[
                    VersionInfo(
                        version=v.version,
                        label=v.label,
                        created_at=v.metadata.get("created_at"),
                        metrics=v.metadata.get("metrics", {}),
                        current=current is not None and v.version == current.version,
                    )
                    for v in registry.versions(name)
                ],
            )
        )
    return out


class DriftEvent(BaseModel):
    id: str
    at: datetime | None
    fields: dict[str, str]


class DriftStatus(BaseModel):
    detections: int = Field(description="Drift detections the flows have reported in total.")
    recent: list[DriftEvent] = Field(description="The latest detections, newest first.")
    flow_counters: dict[str, int]


async def read_drift(redis: RedisGate, keys: RedisKeys) -> DriftStatus:
    """The latest drift detections and the flows' counters."""

    async def read(client: AsyncRedis) -> tuple[list[Any], dict[str, str]]:
        pipe = client.pipeline(transaction=False)
        pipe.xrevrange(keys.drift_events, count=50)
        pipe.hgetall(keys.flow_stats)
        recent, stats = await pipe.execute()
        return recent, stats

    recent, stats = await redis.run(read)
    events = [
        DriftEvent(id=i, at=datetime.fromtimestamp(int(i.split("-")[0]) / 1000, tz=UTC), fields=f)
        for i, f in recent
    ]
    counters = {k: int(v) for k, v in stats.items() if v.lstrip("-").isdigit()}
    return DriftStatus(
        detections=counters.get("drift_detections", len(events)),
        recent=events,
        flow_counters=counters,
    )


class RunInfo(BaseModel):
    job: str
    status: str
    started_at: str
    duration_s: float
    rows_in: int
    rows_out: int
    error: str | None
    trigger: str


class ScheduleInfo(BaseModel):
    job: str
    every_s: float
    last_at: str | None = Field(description="When it last started (ISO-8601, UTC).")
    next_at: str | None = Field(
        description="When it runs next; null: at the scheduler's next poll."
    )


class Jobs(BaseModel):
    jobs: list[str] = Field(description="Jobs that can be triggered.")
    runs: list[RunInfo] = Field(description="The latest runs, newest first.")
    schedule: list[ScheduleInfo] = Field(
        description="The running scheduler's schedule (empty when none has started)."
    )


def _iso(unix: float | None) -> str | None:
    return None if unix is None else datetime.fromtimestamp(unix, UTC).isoformat(timespec="seconds")


async def read_jobs(redis: RedisGate, keys: RedisKeys, limit: int) -> Jobs:
    """The jobs, their latest ``limit`` runs and the running scheduler's schedule."""

    async def read(client: AsyncRedis) -> tuple[list[Any], dict[Any, Any]]:
        runs = await client.lrange(keys.job_runs, 0, limit - 1)  # type: ignore[misc]
        scheduler = await client.hgetall(keys.scheduler_state)  # type: ignore[misc]
        return list(runs), dict(scheduler)

    raw, scheduler = await redis.run(read)
    runs = [RunInfo(**asdict(JobRun.from_json(r))) for r in raw]
    text = {_text(k): _text(v) for k, v in scheduler.items()}
    schedule = [
        ScheduleInfo(job=s.job, every_s=s.every_s, last_at=_iso(s.last_at), next_at=_iso(s.next_at))
        for s in scheduled_jobs(text)
    ]
    return Jobs(jobs=list(JOBS), runs=runs, schedule=schedule)


class JobRequested(BaseModel):
    job: str
    request_id: str = Field(description="The scheduler's request stream id.")


async def request_job(redis: RedisGate, keys: RedisKeys, job: str) -> str:
    """Ask the scheduler to run ``job`` now; return the request's stream id."""

    async def add(client: AsyncRedis) -> str:
        return str(await client.xadd(keys.job_requests, {"job": job}, maxlen=10_000))

    return await redis.run(add)


class Governance(BaseModel):
    audit: AuditSummary | None = Field(
        description="The latest `tillflow batch audit` (null before the first)."
    )
    skew: SkewSummary | None = Field(
        description="The latest `tillflow batch skew` (null before the first)."
    )


async def read_governance(redis: RedisGate, keys: RedisKeys) -> Governance:
    """The latest fairness audit and skew summaries (None before the first of each)."""

    async def read(client: AsyncRedis) -> dict[Any, Any]:
        found: dict[Any, Any] = await client.hgetall(keys.governance)  # type: ignore[misc]
        return found

    raw = {_text(k): v for k, v in (await redis.run(read)).items()}
    audit, skew = raw.get(AUDIT_FIELD), raw.get(SKEW_FIELD)
    return Governance(
        audit=None if audit is None else AuditSummary.model_validate_json(audit),
        skew=None if skew is None else SkewSummary.model_validate_json(skew),
    )


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
