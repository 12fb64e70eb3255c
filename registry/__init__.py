"""The model registry: versioned ONNX models on disk with an atomically switched ``current``."""

from registry.store import MODEL_NAME_PATTERN, ModelRegistry, ModelVersion, RegistryError

__all__ = ["MODEL_NAME_PATTERN", "ModelRegistry", "ModelVersion", "RegistryError"]
