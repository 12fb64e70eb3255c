"""What the API holds for its lifetime (created in the lifespan, never at import time)."""

from __future__ import annotations

from dataclasses import dataclass

from graph.serving import GraphService
from ingest.producer import EventProducer
from schemas.settings import Settings


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    producer: EventProducer
    graph: GraphService  # connects on first use
