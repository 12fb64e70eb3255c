"""``tillflow schemas export`` writes JSON Schema files that accept the contract's examples."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from typer.testing import CliRunner

from cli.main import app
from schemas.topics import ALL_TOPICS
from tests.unit.test_schemas import VALID


def test_export_writes_one_valid_schema_per_topic(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["schemas", "export", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for topic in ALL_TOPICS:
        schema = json.loads((tmp_path / f"{topic.name}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.validate(VALID[topic.name], schema)
    bad = dict(VALID["inventory"], on_hand=-3)
    schema = json.loads((tmp_path / "inventory.schema.json").read_text())
    assert not jsonschema.Draft202012Validator(schema).is_valid(bad)
