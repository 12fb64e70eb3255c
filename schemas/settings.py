"""Settings: one typed object, read from ``TILLFLOW_*`` environment variables (or ``.env``).

>>> s = Settings(topic_prefix="shop1.")
>>> s.topic(ORDERS)
'shop1.orders'
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.event_time import DEFAULT_SKEW_S, EventTimePolicy
from schemas.keys import RedisKeys
from schemas.topics import ORDERS, Topic  # noqa: F401  (ORDERS is used by the doctest)

DEV_ADMIN_PASSWORD = "tillflow-admin"  # development and tests only; refused in production
DEV_JWT_SECRET = "tillflow-development-jwt-secret-not-for-production"
SECRET_MIN_BYTES = 32  # JWT secret and plain admin password, outside development


class InsecureSettings(ValueError):
    """A secret that only development may use was given to a non-development deployment."""


def _weak(variable: str, value: SecretStr, development: str, also: str = "") -> list[str]:
    """``variable``'s problem, if it is the development default or under the minimum length.

    >>> _weak("TILLFLOW_JWT_SECRET", SecretStr(""), "dev")
    ['set TILLFLOW_JWT_SECRET: it is empty or shorter than 32 bytes']
    >>> _weak("X", SecretStr("s" * 32), "dev")
    []
    """
    secret = value.get_secret_value()
    hint = f" ({also})" if also else ""
    if secret == development:
        return [f"set {variable}: the development default is refused{hint}"]
    if len(secret.encode()) < SECRET_MIN_BYTES:
        return [f"set {variable}: it is empty or shorter than {SECRET_MIN_BYTES} bytes{hint}"]
    return []


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
    # The largest message the producers send (librdkafka's message.max.bytes default; the
    # broker accepts a little more): longer dead letters are cut to fit.
    kafka_max_message_bytes: int = Field(default=1_000_000, ge=10_000)

    # Events later than now + this skew are refused (schemas/event_time.py)
    event_time_skew_s: float = Field(default=DEFAULT_SKEW_S, ge=0)

    # Redis
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_port: int = 6379
    # No braces: the keys' hash tags (schemas/keys.py) must be the only ones in a key.
    redis_prefix: str = Field(default="tillflow:", pattern=r"^[^{}]*$")
    redis_timeout_s: float = Field(default=2.0, gt=0)
    # The local Redis: AOF persistence (fsync every second) and a memory cap. Under the cap,
    # only keys with an idle TTL (shoppers' and products' serving keys, rebuilt from the
    # flow's state) are evicted, least recently used first; keys without a TTL (catalogue,
    # current prices, popularity, scheduler cursors) never are (docs/operations.md).
    redis_maxmemory: str = "1gb"
    redis_maxmemory_policy: Literal["volatile-lru", "noeviction"] = "volatile-lru"
    redis_check_s: float = Field(default=5.0, gt=0)  # how often a lost Redis is looked for
    # Redis Cluster: ``redis_url`` names any one master and every client discovers the others
    # (infra/clients.py). ``tillflow up`` then starts ``redis_cluster_masters`` masters of
    # their own on ``redis_port``, ``redis_port + 1``, ... (infra/stack/redis_cluster.py).
    redis_cluster: bool = False
    redis_cluster_masters: int = Field(default=3, ge=3)  # Redis Cluster needs three masters

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

    # OpenSearch (product search and log search, search/)
    opensearch_url: str = "http://127.0.0.1:9200"
    opensearch_port: int = 9200  # HTTP port of the local node (change the URL too)
    opensearch_transport_port: int = 9300
    opensearch_heap: str = "512m"
    opensearch_timeout_s: float = Field(default=2.0, gt=0)
    search_index: str = "tillflow-products"  # the product index
    search_bulk_docs: int = Field(default=500, ge=1)  # documents per bulk request
    search_flush_s: float = Field(default=0.2, gt=0)  # the indexer flushes at least this often
    search_popularity_weight: float = Field(default=1.0, ge=0)  # log1p(popularity) boost
    search_personal_weight: float = Field(default=1.0, ge=0)  # weight of the ranker's score
    log_index_prefix: str = "tillflow-logs-"  # one index a day: <prefix>YYYY.MM.DD
    log_retention_days: int = Field(default=7, ge=1)  # older log indices are deleted

    # MLflow (tracking server and model registry; registry/)
    mlflow_url: str = "http://127.0.0.1:5000"
    mlflow_port: int = 5000  # port of the local server (change the URL too)
    mlflow_timeout_s: float = Field(default=10.0, gt=0)  # per HTTP request to the server
    mlflow_experiment: str = "tillflow-training"  # every training run is logged under it
    # Registered models are named <prefix><model> (``demand``, ``ranker``): one server, many shops.
    mlflow_model_prefix: str = Field(default="tillflow-", pattern=r"^[a-z0-9_-]{0,40}$")
    # Model governance: the fairness audit (batch/audit.py) and online/offline skew (batch/skew.py).
    # An audit check breaches when its between-group ratio (lowest ÷ highest) is below these.
    audit_min_ratio_demand_error: float = Field(default=0.4, ge=0, le=1)  # WAPE
    audit_min_ratio_exposure: float = Field(default=0.1, ge=0, le=1)  # slots ÷ catalogue share
    audit_min_ratio_hit_rate: float = Field(default=0.3, ge=0, le=1)
    audit_min_ratio_price_change: float = Field(default=0.2, ge=0, le=1)
    audit_min_group_rows: int = Field(default=20, ge=1)  # smaller groups stay out of the ratio
    skew_sample: int = Field(default=200, ge=1)  # entities compared per skew run
    skew_max_mismatch_rate: float = Field(default=0.05, ge=0, le=1)  # per feature
    skew_rel_tolerance: float = Field(default=1e-6, ge=0)  # equal within this relative error

    # Flows
    lake_dir: Path = Path(".tillflow/lake")
    recovery_dir: Path = Path(".tillflow/recovery")
    registry_dir: Path = Path(".tillflow/models")  # local copies of model versions from MLflow
    flow_processes: int = Field(default=1, ge=1)
    flow_workers: int = Field(default=1, ge=1)
    flow_base_port: int = 2101  # processes talk on base_port, base_port + 1, ...
    snapshot_s: int = Field(default=5, ge=1)
    # How often each flow process removes dropped keys' markers from the recovery store.
    recovery_compact_s: float = Field(default=60.0, gt=0)
    lake_batch_rows: int = Field(default=20_000, ge=1)
    lake_flush_s: float = Field(default=5.0, gt=0)  # longest a bronze row waits in its buffer
    kafka_batch: int = Field(default=2_000, ge=1)
    # What a flow consumer reads ahead per partition, at most (KiB): librdkafka's own default
    # (64 MB or 100,000 messages a partition) held a backlog in memory (docs/flows.md).
    kafka_read_ahead_kb: int = Field(default=1_024, ge=1)
    # Batches each sink holds for its writer thread, written by each epoch's end.
    sink_in_flight: int = Field(default=4, ge=1)
    dedupe_horizon_s: float = Field(default=86_400.0, gt=0)  # 8 bytes per event within it
    # Idle time after which a shopper's / a product's flow state and Redis keys are dropped.
    shopper_idle_s: float = Field(default=30 * 86_400.0, gt=0)
    product_idle_s: float = Field(default=90 * 86_400.0, gt=0)
    # Wall time between two feature rows of a product at least (0: one per batch that
    # touched it); the latest row is always written (flows.steps.CategoryState.rows).
    feature_row_every_ms: float = Field(default=100.0, ge=0)
    price_history_len: int = Field(default=1_000, ge=1)  # price changes kept per product
    popularity_len: int = Field(default=1_000, ge=1)  # products kept per popularity list
    stream_len: int = Field(default=10_000, ge=1)  # entries kept in the drift stream (about)
    catalogue_file: Path = Path(".tillflow/catalogue.jsonl")  # durable copy of the catalogue
    recommendations_k: int = Field(default=10, ge=1)

    # Batch jobs (batch/), the scheduler and lineage
    # job=seconds, comma-separated; an audit also runs after every successful training
    batch_schedule: str = "pipeline=3600,maintain=86400,skew=3600"
    scheduler_poll_s: float = Field(default=5.0, gt=0)
    job_lock_ttl_s: int = Field(default=3_600, ge=1)  # a crashed job's lock expires after this
    vacuum_retention_hours: int = Field(default=168, ge=0)  # time travel reaches this far back
    lineage_file: Path = Path(".tillflow/lineage/events.jsonl")  # OpenLineage events, one a line
    lineage_url: str = ""  # an OpenLineage HTTP endpoint (e.g. Marquez); replaces the file
    # The engine of silver, gold and the Feast export (batch/engines/): DuckDB in-process, or
    # Apache Spark with Delta Lake (``local[*]``, or a cluster's master URL).
    batch_engine: Literal["duckdb", "spark"] = "duckdb"
    spark_master: str = "local[*]"
    spark_driver_memory: str = "1g"
    spark_shuffle_partitions: int = Field(default=4, ge=1)
    # The table catalogue (Hive metastore): empty → Spark's embedded Derby under runtime_dir,
    # one process at a time; e.g. thrift://metastore:9083 for a shared one.
    metastore_uri: str = ""

    # API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # The HTTP server and its worker processes (api/server.py). Every per-process budget
    # (rate limits, failed logins, websocket caps) is divided among the workers.
    api_server: Literal["uvicorn", "granian"] = "uvicorn"
    api_workers: int = Field(default=1, ge=1)
    max_events_per_request: int = Field(default=10_000, ge=1)
    api_cache_ttl_s: float = Field(default=1.0, ge=0)  # in-process cache of price/reco reads
    # Prices requested in the last cache interval are re-read before they expire, at most this
    # many a tick (a quarter of the interval), the most recently requested first. 0: off.
    api_refresh_ahead_max: int = Field(default=5_000, ge=0)
    # The API's garbage collection on a clock (infra/runtime.py collect_on_a_clock): the
    # youngest generation every api_gc_young_s, everything every api_gc_full_s. 0: CPython's
    # allocation thresholds instead.
    api_gc_young_s: float = Field(default=0.05, ge=0)
    api_gc_full_s: float = Field(default=60.0, gt=0)
    # One structured log line per request; off by default: it was about a third of a cached
    # price read's CPU (docs/serving.md); the request metrics count every request anyway.
    api_access_log: bool = False
    api_redis_timeout_s: float = Field(default=0.25, gt=0)  # then serve last-known or 503
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)  # larger bodies: 413
    api_kafka_timeout_s: float = Field(default=2.0, gt=0)  # POST /events: then 503
    # Public routes, per client address; events from shopper sessions count one each. 0: off.
    rate_limit_per_s: float = Field(default=50.0, ge=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    rate_limit_max_clients: int = Field(default=50_000, ge=1)  # least recently seen go first
    # Events per second per producer client (a batch of n costs n); 0: off.
    producer_rate_per_s: float = Field(default=5_000.0, ge=0)
    producer_burst: int = Field(default=10_000, ge=1)
    producer_check_s: float = Field(default=1.0, ge=0)  # a revocation reaches the API within
    # Failed logins (admin and producer clients) allowed per client address and per user.
    login_failures_burst: int = Field(default=5, ge=1)
    login_failures_per_min: float = Field(default=5.0, gt=0)
    ws_queue_size: int = Field(default=64, ge=1)  # per websocket; oldest dropped when full
    ws_max_connections: int = Field(default=10_000, ge=1)  # open websockets in the API
    ws_max_per_client: int = Field(default=50, ge=1)  # open websockets per client address
    model_poll_s: float = Field(default=2.0, gt=0)  # how often the API checks the registry
    admin_username: str = "admin"
    admin_password: SecretStr = SecretStr(DEV_ADMIN_PASSWORD)
    # An argon2 hash (`tillflow admin hash-password`); when set, TILLFLOW_ADMIN_PASSWORD is unused.
    admin_password_hash: SecretStr = SecretStr("")
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_ttl_s: int = Field(default=3_600, ge=60)
    session_ttl_s: int = Field(default=86_400, ge=60)  # shopper sessions of the storefront

    # Observability: /metrics endpoints, Prometheus
    metrics_host: str = "127.0.0.1"  # bind address of the flows' and scheduler's /metrics
    flow_metrics_port: int = Field(default=9101, ge=0)  # process i serves port + i; 0: off
    scheduler_metrics_port: int = Field(default=9100, ge=0)
    prometheus_port: int = 9090
    prometheus_scrape_interval_s: int = Field(default=15, ge=1)
    prometheus_retention: str = "7d"
    alertmanager_url: str = ""  # e.g. http://127.0.0.1:9095; empty: alerts stay in Prometheus

    def secret_problems(self) -> list[str]:
        """What is unsafe about the secrets outside ``development`` (empty when nothing is)."""
        given_hash = self.admin_password_hash.get_secret_value()
        if given_hash and not given_hash.startswith("$argon2"):
            return [
                "set TILLFLOW_ADMIN_PASSWORD_HASH to an argon2 hash "
                "(`tillflow admin hash-password` prints one)"
            ]
        if self.environment == "development":
            return []
        problems = _weak("TILLFLOW_JWT_SECRET", self.jwt_secret, DEV_JWT_SECRET)
        if not given_hash:
            problems += _weak(
                "TILLFLOW_ADMIN_PASSWORD",
                self.admin_password,
                DEV_ADMIN_PASSWORD,
                also="or set TILLFLOW_ADMIN_PASSWORD_HASH",
            )
        return problems

    def require_safe_secrets(self) -> None:
        """Refuse to run outside ``development`` with a development, empty or short secret."""
        problems = self.secret_problems()
        if problems:
            raise InsecureSettings(
                f"refusing to start with environment={self.environment}: "
                + "; ".join(problems)
                + " (set them in the environment or in .env, see .env.example)"
            )

    def event_time_policy(self) -> EventTimePolicy:
        """The event-time policy of this deployment, on the wall clock."""
        return EventTimePolicy(self.event_time_skew_s)

    def topic(self, topic: Topic) -> str:
        """The broker-side name of ``topic`` under this deployment's prefix."""
        return topic.qualified(self.topic_prefix)

    @property
    def keys(self) -> RedisKeys:
        """The Redis key layout under this deployment's prefix."""
        return RedisKeys(self.redis_prefix)

    @property
    def shopper_ttl_s(self) -> int:
        """The Redis TTL of a shopper's keys: the shopper idle time, in whole seconds (≥ 1)."""
        return max(1, math.ceil(self.shopper_idle_s))

    @property
    def product_ttl_s(self) -> int:
        """The Redis TTL of a product's keys: the product idle time, in whole seconds (≥ 1)."""
        return max(1, math.ceil(self.product_idle_s))

    def partitions(self, topic: Topic) -> int:
        """How many partitions ``topic`` is created with."""
        if topic.partitions is not None:
            return topic.partitions
        return self.input_partitions if topic.direction == "in" else self.output_partitions
