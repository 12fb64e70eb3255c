"""What the API holds for its lifetime (created in the lifespan, never at import time)."""

from __future__ import annotations

from dataclasses import dataclass, field

from api.cache import LastKnown
from api.catalogue import CatalogueService
from api.discover import GraphReads
from api.features import FeatureReads
from api.hub import Hub
from api.kafka_gate import KafkaGate
from api.limits import ConnectionSlots
from api.metrics import ApiMetrics
from api.onnx_models import ModelSlot
from api.passwords import hash_secret, is_hash
from api.prices import Priced, PriceService
from api.ratelimit import LoginThrottle, TokenBucket
from api.recommendations import Item, Popular, RecommendationService, Shopper
from api.redis_gate import RedisGate
from api.served import ServedLog
from api.tokens import VerifiedTokens
from graph.serving import GraphService
from ingest.producer import EventProducer
from online_models.factors import factors_path
from online_models.ranking import RANKER_FEATURES
from registry import ModelRegistry
from schemas.producers import ProducerClient
from schemas.settings import Settings

MODEL_NAMES = ("demand", "ranker")
MODEL_FEATURES = {"ranker": RANKER_FEATURES}
"""The input columns the API builds for a model: a champion trained on others is refused."""


@dataclass
class AppState:
    settings: Settings
    kafka: KafkaGate
    redis: RedisGate
    metrics: ApiMetrics
    hub: Hub
    served: ServedLog
    registry: ModelRegistry
    features: FeatureReads
    models: dict[str, ModelSlot] = field(default_factory=dict)
    prices: LastKnown[Priced] = field(default_factory=lambda: LastKnown(1.0))
    shoppers: LastKnown[Shopper] = field(default_factory=lambda: LastKnown(1.0))
    popular: LastKnown[Popular] = field(default_factory=lambda: LastKnown(1.0))
    items: LastKnown[Item] = field(default_factory=lambda: LastKnown(1.0))
    producer_clients: LastKnown[ProducerClient] = field(default_factory=lambda: LastKnown(1.0))
    public_limit: TokenBucket | None = None  # per client address on the public routes
    producer_limit: TokenBucket | None = None  # events per producer client
    logins: LoginThrottle = field(default_factory=lambda: LoginThrottle.create(5, 5.0, 10_000))
    ws_slots: ConnectionSlots = field(default_factory=lambda: ConnectionSlots(10_000, 50))
    tokens: VerifiedTokens = field(default_factory=VerifiedTokens)
    _admin_hash: str = ""
    # The reads the HTTP and websocket handlers share (api/deps.py), over the caches above.
    price_service: PriceService = field(init=False)
    recommendation_service: RecommendationService = field(init=False)
    catalogue_service: CatalogueService = field(init=False)
    # Neo4j driver and the Redis copy of related lists: opened in the lifespan, closed with it.
    graph: GraphService = field(init=False)

    @classmethod
    def create(cls, settings: Settings) -> AppState:
        metrics = ApiMetrics()
        registry = ModelRegistry.from_settings(settings)
        kafka = KafkaGate(EventProducer(settings), settings)
        state = cls(
            settings=settings,
            kafka=kafka,
            redis=RedisGate(settings),
            metrics=metrics,
            hub=Hub(settings, metrics),
            served=ServedLog(kafka.producer, settings.api_kafka_timeout_s, metrics),
            registry=registry,
            features=FeatureReads.create(settings),
            models={
                name: ModelSlot(registry, name, MODEL_FEATURES.get(name)) for name in MODEL_NAMES
            },
            prices=LastKnown(settings.api_cache_ttl_s),
            shoppers=LastKnown(settings.api_cache_ttl_s),
            popular=LastKnown(settings.api_cache_ttl_s),
            items=LastKnown(settings.api_cache_ttl_s),
            producer_clients=LastKnown(settings.producer_check_s),
            public_limit=_bucket(settings.rate_limit_per_s, settings.rate_limit_burst, settings),
            producer_limit=_bucket(settings.producer_rate_per_s, settings.producer_burst, settings),
            logins=LoginThrottle.create(
                settings.login_failures_burst,
                settings.login_failures_per_min,
                settings.rate_limit_max_clients,
                shares=settings.api_workers,
            ),
            ws_slots=ConnectionSlots(
                settings.ws_max_connections, settings.ws_max_per_client, settings.api_workers
            ),
        )
        keys, reads = settings.keys, state.features
        state.price_service = PriceService(
            state.redis, state.prices, keys, reads, state.models["demand"], metrics
        )
        state.catalogue_service = CatalogueService(state.redis, keys)
        state.recommendation_service = RecommendationService(
            state.redis,
            (state.shoppers, state.popular, state.items),
            keys,
            reads,
            state.models["ranker"],
            metrics,
            state.catalogue_service,
            on_served=state.served.record,
            graph=GraphReads.kept_for(
                settings.api_cache_ttl_s,
                factors_path(settings.registry_dir, settings.mlflow_model_prefix),
            ),
        )
        state.hub.render_prices = state.price_service.answers
        state.hub.on_price.append(state.prices.invalidate)
        state.hub.on_recommendations.append(state.shoppers.invalidate)
        state.hub.on_catalogue.append(state.catalogue_service.invalidate)
        return state

    def admin_password_hash(self) -> str:
        """The admin's argon2 hash: TILLFLOW_ADMIN_PASSWORD_HASH, else the hash of
        TILLFLOW_ADMIN_PASSWORD computed once (slow: call it off the event loop)."""
        if not self._admin_hash:
            given = self.settings.admin_password_hash.get_secret_value()
            self._admin_hash = (
                given
                if is_hash(given)
                else hash_secret(self.settings.admin_password.get_secret_value())
            )
        return self._admin_hash

    def refresh_models(self) -> None:
        for name, slot in self.models.items():
            if slot.refresh():
                self.metrics.set_model(name, slot.model.label if slot.model else None)


def _bucket(rate: float, burst: int, settings: Settings) -> TokenBucket | None:
    """This worker's share of a limit of the whole API (None: no limit)."""
    if rate <= 0:
        return None
    return TokenBucket(rate, burst, settings.rate_limit_max_clients, shares=settings.api_workers)
