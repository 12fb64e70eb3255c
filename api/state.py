"""What the API holds for its lifetime (created in the lifespan, never at import time)."""

from __future__ import annotations

from dataclasses import dataclass

import neo4j

from ingest.producer import EventProducer
from schemas.settings import Settings


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    producer: EventProducer
    graph: neo4j.AsyncDriver  # connects on first use
