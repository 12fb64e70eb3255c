"""The bench-smoke runner: its plan (who waits for whom, who starts first) and its processes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchmarks.common import RESULTS, SMOKE_DIR_ENV, Mode
from benchmarks.smoke import Outcome, run_passes, summary
from benchmarks.smoke_plan import Need, Plan


@pytest.mark.parametrize(
    ("modules", "after", "order"),
    [
        (["a", "b", "c"], {}, ("a", "b", "c")),  # given order when nothing differs
        (["serving", "x", "batch"], {"serving": (Need("batch"),)}, ("batch", "serving", "x")),
        (["x", "graph", "batch"], {}, ("batch", "graph", "x")),  # slow passes first
        (["graph", "z", "y"], {"y": (Need("z"),)}, ("z", "y", "graph")),  # chains before slow
        (["serving", "ingest"], {"serving": (Need("batch"),)}, ("serving", "ingest")),
    ],
)
def test_order(modules: list[str], after: dict[str, tuple[Need, ...]], order: tuple[str]) -> None:
    assert Plan.of(modules, after).order == order


AFTER_A = {"b": (Need("a"),), "c": (Need("a", "a-made"),)}


@pytest.mark.parametrize(
    ("started", "done", "present", "startable"),
    [
        (set(), set(), set(), ["a", "d"]),
        ({"a", "d"}, set(), set(), []),  # b and c wait for a
        ({"a", "d"}, {"d"}, set(), []),
        ({"a", "d"}, set(), {"a-made"}, ["c"]),  # c only needs what a wrote
        ({"a", "d"}, {"a"}, set(), ["b", "c"]),  # a ended well: its path is not needed
        ({"a", "c", "d"}, {"a", "c", "d"}, set(), ["b"]),
    ],
)
def test_startable(
    started: set[str], done: set[str], present: set[str], startable: list[str]
) -> None:
    plan = Plan.of(["a", "b", "c", "d"], AFTER_A, slow=())
    assert plan.startable(started, done, present) == startable
    assert plan.paths() == {"a-made"}


@pytest.mark.parametrize(
    ("present", "blocked"),
    [(set(), ["b", "c"]), ({"a-made"}, ["b"])],  # c has what it needs from the failed a
)
def test_what_needs_a_failed_pass_is_blocked(present: set[str], blocked: list[str]) -> None:
    plan = Plan.of(["a", "b", "c"], AFTER_A, slow=())
    assert plan.blocked({"a"}, {"a"}, present) == blocked
    assert plan.blocked({"a"}, set(), present) == []


def test_a_chain_behind_a_failed_pass_is_blocked_link_by_link() -> None:
    plan = Plan.of(["a", "b", "c"], {"b": (Need("a"),), "c": (Need("b"),)}, slow=())
    assert plan.blocked({"a"}, {"a"}, set()) == ["b"]
    assert plan.blocked({"a", "b"}, {"a", "b"}, set()) == ["c"]


def test_a_pass_listed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        Plan.of(["a", "b", "a"])


def test_smoke_results_go_to_the_runs_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SMOKE_DIR_ENV, str(tmp_path))
    assert Mode(smoke=True).results == tmp_path
    assert Mode(smoke=True).models == tmp_path / "bench-models"
    assert Mode().results == RESULTS


def script(code: str) -> list[str]:
    return [sys.executable, "-c", code]


# Each pass waits until the other has written its file: they end only if both run at once.
MEETING = """
import os, pathlib, sys, time
folder = pathlib.Path(os.environ["{env}"])
(folder / "{me}.here").write_text("")
while not (folder / "{other}.here").exists():
    time.sleep(0.01)
print("{me} met {other} in", folder)
"""


def test_independent_passes_run_at_once_in_a_folder_of_their_own() -> None:
    def command(module: str) -> list[str]:
        other = {"a": "b", "b": "a"}[module]
        return script(MEETING.format(env=SMOKE_DIR_ENV, me=module, other=other))

    outcomes = run_passes(["a", "b"], jobs=2, timeout_s=60, command=command)
    assert sorted(o.module for o in outcomes) == ["a", "b"]
    assert all(o.ok for o in outcomes)
    assert all(o.output is not None and not o.output.exists() for o in outcomes)  # cleaned up


def test_a_failed_pass_fails_the_run_shows_its_output_and_blocks_what_needs_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    commands = {
        "batch": script("import sys; print('the batch pass broke here'); sys.exit(3)"),
        "serving": script("print('never')"),
        "ingest": script("print('fine')"),
    }
    outcomes = run_passes(["ingest", "batch", "serving"], 3, 60, commands.__getitem__)
    by_module = {o.module: o for o in outcomes}
    assert by_module["batch"].code == 3
    assert by_module["serving"].code is None  # needs batch (AFTER): not run
    assert by_module["ingest"].ok
    out = capsys.readouterr().out
    assert "batch FAILED (exit 3)" in out
    assert "the batch pass broke here" in out
    assert "never" not in out


def test_a_pass_past_its_timeout_is_stopped_and_failed() -> None:
    hang = script("import threading; threading.Event().wait()")
    (outcome,) = run_passes(["stuck"], 1, 0.5, lambda _m: hang)
    assert not outcome.ok
    assert outcome.code == -15  # SIGTERM


def test_summary_lists_every_pass_and_the_totals() -> None:
    outcomes = [
        Outcome("batch", 0, 40.0, 50.0, None),
        Outcome("serving", None, 0.0, 0.0, None),
        Outcome("graph", 1, 10.0, 12.0, None),
    ]
    text = summary(outcomes, 45.0)
    assert [line.split()[:2] for line in text.splitlines()[1:4]] == [
        ["batch", "ok"],
        ["graph", "exit"],
        ["serving", "skipped"],
    ]
    assert "3 passes in 45.0 s (one after another: 50.0 s; cpu 62.0 s" in text


# serving needs batch's models: it starts once they are in the run's folder, batch still busy.
MODELS_THEN_WAIT = """
import os, pathlib, time
folder = pathlib.Path(os.environ["{env}"])
(folder / ".staging").mkdir()
(folder / ".staging" / "champion.json").write_text("{{}}")
(folder / ".staging").rename(folder / "bench-models")
while not (folder / "served").exists():
    time.sleep(0.01)
"""
SERVE = """
import os, pathlib
folder = pathlib.Path(os.environ["{env}"])
assert (folder / "bench-models" / "champion.json").exists()
(folder / "served").write_text("")
"""


def test_a_pass_starts_when_the_path_it_needs_appears() -> None:
    commands = {
        "batch": script(MODELS_THEN_WAIT.format(env=SMOKE_DIR_ENV)),
        "serving": script(SERVE.format(env=SMOKE_DIR_ENV)),
    }
    outcomes = run_passes(["serving", "batch"], 2, 60, commands.__getitem__)
    assert sorted(o.module for o in outcomes) == ["batch", "serving"]
    assert all(o.ok for o in outcomes)  # batch ended only after serving had run
