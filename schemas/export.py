"""Write the contract as JSON Schema files, one per topic (``tillflow schemas export``)."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.topics import ALL_TOPICS


def export_json_schemas(out_dir: Path) -> list[Path]:
    """Write ``<topic>.schema.json`` for every topic into ``out_dir``; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for topic in ALL_TOPICS:
        schema = topic.model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://tillflow.dev/schemas/{topic.name}.schema.json"
        schema["description"] = f"{topic.description} Kafka key: {topic.key_field or 'none'}."
        path = out_dir / f"{topic.name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
