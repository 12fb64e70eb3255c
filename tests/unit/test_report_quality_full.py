"""BENCHMARKS.md shows every full-size quality run kept beside the recorded one
(benchmarks.report.render_quality_full), each under its own file name and modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import report


def _run(modes: list[str], coverage: float) -> dict[str, object]:
    return {
        "modes": {m: {"elasticity_coverage_90": coverage} for m in modes},
        "meta": {"measured_at": "2026-12-02", "runs": {"products": 500, "days": 28, "seed": 42}},
    }


def test_every_full_size_run_is_shown_under_its_modes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "quality_pos_full.json").write_text(json.dumps(_run(["pos"], 0.768)))
    (tmp_path / "quality_both_full.json").write_text(json.dumps(_run(["both"], 0.812)))
    (tmp_path / "quality.json").write_text(json.dumps(_run(["web", "pos", "both"], 0.321)))
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    text = report.render_quality_full()
    both = text.index("Full size, web and tills (`benchmarks/results/quality_both_full.json`")
    pos = text.index("Full size, point of sale (`benchmarks/results/quality_pos_full.json`")
    assert both < pos  # in the files' order
    assert "0.812" in text[both:pos]
    assert "0.768" in text[pos:]
    assert "0.321" not in text  # the recorded run is not a full-size one


def test_no_full_size_run_shows_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    assert report.render_quality_full() == ""
