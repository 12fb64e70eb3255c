"""Settings: one typed object, read from ``TILLFLOW_*`` environment variables (or ``.env``).

>>> s = Settings(topic_prefix="shop1.")
>>> s.topic(ORDERS)
'shop1.orders'
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.keys import RedisKeys
from schemas.topics import ORDERS, Topic  # noqa: F401  (ORDERS is used by the doctest)

DEV_ADMIN_PASSWORD = "tillflow-admin"  # development and tests only; refused in production
DEV_JWT_SECRET = "tillflow-development-jwt-secret-not-for-production"


class Settings(BaseSettings):
    """Every tunable of tillflow. Environment variables are ``TILLFLOW_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="TILLFLOW_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Literal["development", "test", "production"] = "development"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"

    # Where the local stack keeps its jars, data, logs and pid files.
    runtime_dir: Path = Path(".tillflow")

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    topic_prefix: str = ""
    input_partitions: int = Field(default=3, ge=1)
    output_partitions: int = Field(default=3, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    kafka_timeout_s: float = Field(default=10.0, gt=0)

    # Redis
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_port: int = 6379
    redis_prefix: str = "tillflow:"
    redis_timeout_s: float = Field(default=2.0, gt=0)

    # Neo4j (the co-purchase graph, graph/)
    neo4j_uri: str = "bolt://127.0.0.1:7687"
    neo4j_port: int = 7687  # Bolt port of the local Neo4j (change the URI too)
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr = SecretStr("")  # empty: the local Neo4j runs without auth
    neo4j_heap: str = "1g"
    neo4j_pagecache: str = "512m"
    neo4j_timeout_s: float = Field(default=5.0, gt=0)
    graph_namespace: str = "tillflow"  # every node carries it, so one Neo4j holds several shops
    graph_batch_rows: int = Field(default=10_000, ge=1)  # rows per UNWIND transaction

    # Flows
    lake_dir: Path = Path(".tillflow/lake")
    recovery_dir: Path = Path(".tillflow/recovery")
    registry_dir: Path = Path(".tillflow/models")
    flow_processes: int = Field(default=1, ge=1)
    flow_workers: int = Field(default=1, ge=1)
    flow_base_port: int = 2101  # processes talk on base_port, base_port + 1, ...
    snapshot_s: int = Field(default=5, ge=1)
    lake_batch_rows: int = Field(default=20_000, ge=1)
    lake_flush_s: float = Field(default=2.0, gt=0)
    kafka_batch: int = Field(default=2_000, ge=1)
    dedupe_horizon_s: float = Field(default=86_400.0, gt=0)
    recommendations_k: int = Field(default=10, ge=1)

    # Batch jobs (batch/), the scheduler and lineage
    batch_schedule: str = "pipeline=3600,maintain=86400"  # job=seconds, comma-separated
    scheduler_poll_s: float = Field(default=5.0, gt=0)
    job_lock_ttl_s: int = Field(default=3_600, ge=1)  # a crashed job's lock expires after this
    vacuum_retention_hours: int = Field(default=168, ge=0)  # time travel reaches this far back
    lineage_file: Path = Path(".tillflow/lineage/events.jsonl")  # OpenLineage events, one a line
    lineage_url: str = ""  # an OpenLineage HTTP endpoint (e.g. Marquez); replaces the file

    # API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    max_events_per_request: int = Field(default=10_000, ge=1)
    api_cache_ttl_s: float = Field(default=1.0, ge=0)  # in-process cache of price/reco reads
    api_redis_timeout_s: float = Field(default=0.25, gt=0)  # then serve last-known or 503
    api_kafka_timeout_s: float = Field(default=2.0, gt=0)  # POST /events: then 503
    rate_limit_per_s: float = Field(default=50.0, ge=0)  # per client on public routes; 0: off
    rate_limit_burst: int = Field(default=100, ge=1)
    ws_queue_size: int = Field(default=64, ge=1)  # per websocket; oldest dropped when full
    model_poll_s: float = Field(default=2.0, gt=0)  # how often the API checks the registry
    admin_username: str = "admin"
    admin_password: SecretStr = SecretStr(DEV_ADMIN_PASSWORD)
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_ttl_s: int = Field(default=3_600, ge=60)

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> Settings:
        if self.environment == "production":
            if self.admin_password.get_secret_value() == DEV_ADMIN_PASSWORD:
                raise ValueError("set TILLFLOW_ADMIN_PASSWORD: the development default is refused")
            if self.jwt_secret.get_secret_value() == DEV_JWT_SECRET:
                raise ValueError("set TILLFLOW_JWT_SECRET: the development default is refused")
        return self

    # Observability: /metrics endpoints, Prometheus
    metrics_host: str = "127.0.0.1"  # bind address of the flows' and scheduler's /metrics
    flow_metrics_port: int = Field(default=9101, ge=0)  # process i serves port + i; 0: off
    scheduler_metrics_port: int = Field(default=9100, ge=0)
    prometheus_port: int = 9090
    prometheus_scrape_interval_s: int = Field(default=15, ge=1)
    prometheus_retention: str = "7d"
    alertmanager_url: str = ""  # e.g. http://127.0.0.1:9095; empty: alerts stay in Prometheus

    def topic(self, topic: Topic) -> str:
        """The broker-side name of ``topic`` under this deployment's prefix."""
        return topic.qualified(self.topic_prefix)

    @property
    def keys(self) -> RedisKeys:
        """The Redis key layout under this deployment's prefix."""
        return RedisKeys(self.redis_prefix)

    def partitions(self, topic: Topic) -> int:
        """How many partitions ``topic`` is created with."""
        return self.input_partitions if topic.direction == "in" else self.output_partitions
