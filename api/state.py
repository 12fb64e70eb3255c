"""What the API holds for its lifetime (created in the lifespan, never at import time)."""

from __future__ import annotations

from dataclasses import dataclass, field

from api.cache import LastKnown
from api.features import FeatureReads
from api.hub import Hub
from api.kafka_gate import KafkaGate
from api.metrics import ApiMetrics
from api.onnx_models import ModelSlot
from api.prices import PriceState
from api.recommendations import Item, RecommendedItem, Shopper
from api.redis_gate import RedisGate
from graph.serving import GraphService
from ingest.producer import EventProducer
from registry import ModelRegistry
from schemas.settings import Settings

MODEL_NAMES = ("demand", "ranker")


@dataclass
class AppState:
    settings: Settings
    kafka: KafkaGate
    redis: RedisGate
    metrics: ApiMetrics
    hub: Hub
    registry: ModelRegistry
    features: FeatureReads
    models: dict[str, ModelSlot] = field(default_factory=dict)
    prices: LastKnown[PriceState] = field(default_factory=lambda: LastKnown(1.0))
    shoppers: LastKnown[Shopper] = field(default_factory=lambda: LastKnown(1.0))
    popular: LastKnown[list[RecommendedItem]] = field(default_factory=lambda: LastKnown(1.0))
    items: LastKnown[Item] = field(default_factory=lambda: LastKnown(1.0))
    # Neo4j driver and the Redis copy of related lists: opened in the lifespan, closed with it.
    graph: GraphService = field(init=False)

    @classmethod
    def create(cls, settings: Settings) -> AppState:
        metrics = ApiMetrics()
        registry = ModelRegistry(settings.registry_dir)
        state = cls(
            settings=settings,
            kafka=KafkaGate(EventProducer(settings), settings),
            redis=RedisGate(settings),
            metrics=metrics,
            hub=Hub(settings, metrics),
            registry=registry,
            features=FeatureReads.create(settings),
            models={name: ModelSlot(registry, name) for name in MODEL_NAMES},
            prices=LastKnown(settings.api_cache_ttl_s),
            shoppers=LastKnown(settings.api_cache_ttl_s),
            popular=LastKnown(settings.api_cache_ttl_s),
            items=LastKnown(settings.api_cache_ttl_s),
        )
        state.hub.on_price.append(state.prices.invalidate)
        state.hub.on_recommendations.append(state.shoppers.invalidate)
        return state

    def refresh_models(self) -> None:
        for name, slot in self.models.items():
            if slot.refresh():
                self.metrics.set_model(name, slot.model.label if slot.model else None)
