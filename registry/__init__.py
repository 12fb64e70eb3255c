"""The model registry: versioned ONNX models on disk with an atomically switched ``current``."""

from registry.store import ModelRegistry, ModelVersion, RegistryError

__all__ = ["ModelRegistry", "ModelVersion", "RegistryError"]
