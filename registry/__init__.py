"""The model registry: MLflow's registered models and aliases, with local copies of versions."""

from registry.rest import MlflowUnavailable, RegistryError
from registry.store import (
    CHALLENGER,
    CHAMPION,
    MODEL_NAME_PATTERN,
    ModelRegistry,
    ModelVersion,
    UnloadableModel,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "MODEL_NAME_PATTERN",
    "MlflowUnavailable",
    "ModelRegistry",
    "ModelVersion",
    "RegistryError",
    "UnloadableModel",
]
