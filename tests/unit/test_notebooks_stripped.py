"""Notebooks are committed without outputs: results belong to a run, not to the repository."""

from __future__ import annotations

import nbformat
import pytest

from tests.notebooks import NOTEBOOKS

PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert [p.name for p in PATHS] == ["demand_model.ipynb"]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_a_notebook_has_no_outputs_and_no_execution_counts(path: object) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for i, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {i} has outputs: clear them before committing"
            assert cell.execution_count is None, f"cell {i} has an execution count"
