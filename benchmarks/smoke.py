"""``make bench-smoke``: every benchmark at its tiny size (``--smoke``), independent passes at once.

Each pass is ``python -m benchmarks.<module> --smoke`` in a process group of its own, with
``TILLFLOW_BENCH_SMOKE_DIR`` set to this run's temporary folder (its results and the batch
pass's models: nothing lands in ``benchmarks/results/``). At most ``--jobs`` run at a time,
in the order and with the waits of :mod:`benchmarks.smoke_plan`. Each pass's wall time and
CPU time (its process and the flows, APIs and JVMs it waited for) is printed as it ends,
then a summary; the run fails when any pass fails, after printing that pass's output. A
pass that needs a failed one is not run.

``--record`` measures the runner itself and writes ``benchmarks/results/bench_smoke.json``:
the passes at once and, next in the same run with ``--baseline-ref``, ``make bench-smoke`` of
an older commit (its own passes and sizes).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from benchmarks.common import SMOKE_DIR_ENV, write_result
from benchmarks.smoke_plan import Plan

OUTPUT_TAIL = 200  # lines of a failed pass's output to show
STOP_GRACE_S = 10.0  # after SIGTERM, before SIGKILL
POLL_S = 0.1
Command = Callable[[str], list[str]]


def smoke_command(module: str) -> list[str]:
    return [sys.executable, "-m", f"benchmarks.{module}", "--smoke"]


@dataclass(frozen=True)
class Outcome:
    """How one pass ended (``code`` None: not run, a pass it needs failed)."""

    module: str
    code: int | None
    wall_s: float
    cpu_s: float
    output: Path | None

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass
class Running:
    module: str
    proc: subprocess.Popen[bytes]
    started: float
    output: Path
    sink: IO[bytes]
    stopping_since: float | None = None


def start(module: str, folder: Path, command: Command) -> Running:
    output = folder / f"{module}.log"
    sink = output.open("wb")
    env = {**os.environ, SMOKE_DIR_ENV: str(folder), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        command(module),
        stdout=sink,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # its flows, APIs and JVMs can be stopped with it
    )
    return Running(module, proc, time.monotonic(), output, sink)


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a pass's process group; False when none of it is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def stop_group(pgid: int, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM a process group whose leader has been reaped; SIGKILL what is left after
    ``grace_s`` (the flows, APIs and JVMs a pass may leave behind)."""
    if not signal_group(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not signal_group(pgid, 0):
            return
        time.sleep(0.1)
    signal_group(pgid, signal.SIGKILL)


def run_passes(
    modules: Sequence[str], jobs: int, timeout_s: float, command: Command = smoke_command
) -> list[Outcome]:
    """Run the passes, at most ``jobs`` at a time; their outcomes in the order they ended."""
    plan = Plan.of(modules)
    folder = Path(tempfile.mkdtemp(prefix="tillflow-bench-smoke-"))
    running: dict[int, Running] = {}
    outcomes: list[Outcome] = []
    started: set[str] = set()
    done: set[str] = set()
    failed: set[str] = set()
    try:
        while len(outcomes) < len(plan.order):
            present = {p for p in plan.paths() if (folder / p).exists()}
            for module in plan.blocked(started, failed, present):
                started.add(module)
                failed.add(module)
                outcomes.append(Outcome(module, None, 0.0, 0.0, None))
                needs = ", ".join(n.module for n in plan.after[module])
                print(f"-- {module}: not run (it needs {needs})")
            for module in plan.startable(started, done, present)[: max(0, jobs - len(running))]:
                started.add(module)
                run = start(module, folder, command)
                running[run.proc.pid] = run
                print(f".. {module} started", flush=True)
            outcome = reap(running, timeout_s) if running else None
            if outcome is None:
                time.sleep(POLL_S)
                continue
            (done if outcome.ok else failed).add(outcome.module)
            outcomes.append(outcome)
            report(outcome)
    finally:
        for run in running.values():
            signal_group(run.proc.pid, signal.SIGTERM)
        for run in running.values():
            try:
                run.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                signal_group(run.proc.pid, signal.SIGKILL)
                run.proc.wait()
            stop_group(run.proc.pid)
            run.sink.close()
        shutil.rmtree(folder, ignore_errors=True)
    return outcomes


def reap(running: dict[int, Running], timeout_s: float) -> Outcome | None:
    """A pass that has ended, if one has (a pass past ``timeout_s`` is stopped: it ends as
    failed). ``os.wait4`` reaps it and gives its CPU time, which includes the processes it
    waited for (flows, APIs, wrk)."""
    pid, status, usage = os.wait4(-1, os.WNOHANG)
    if pid in running:
        run = running.pop(pid)
        run.proc.returncode = os.waitstatus_to_exitcode(status)
        run.sink.close()
        stop_group(pid)  # whatever it started and left behind
        cpu = usage.ru_utime + usage.ru_stime
        return Outcome(
            run.module, run.proc.returncode, time.monotonic() - run.started, cpu, run.output
        )
    now = time.monotonic()
    for run in running.values():
        if run.stopping_since is None and now - run.started > timeout_s:
            print(f"!! {run.module} still running after {timeout_s:.0f} s: stopped")
            run.stopping_since = now
            signal_group(run.proc.pid, signal.SIGTERM)
        elif run.stopping_since is not None and now - run.stopping_since > STOP_GRACE_S:
            signal_group(run.proc.pid, signal.SIGKILL)
    return None


def report(outcome: Outcome) -> None:
    if outcome.ok:
        print(f"ok {outcome.module} in {outcome.wall_s:.1f} s (cpu {outcome.cpu_s:.1f} s)")
        return
    print(f"!! {outcome.module} FAILED (exit {outcome.code}) after {outcome.wall_s:.1f} s")
    if outcome.output is not None:
        lines = outcome.output.read_text(errors="replace").splitlines()
        print(f"   --- its output (last {OUTPUT_TAIL} lines) ---")
        print("\n".join(f"   {line}" for line in lines[-OUTPUT_TAIL:]))
        print(f"   --- end of {outcome.module}'s output ---", flush=True)


def summary(outcomes: list[Outcome], wall_s: float) -> str:
    width = max([len("pass"), *(len(o.module) for o in outcomes)]) + 2
    rows = [f"{'pass':<{width}}{'result':>8}{'wall s':>9}{'cpu s':>9}"]
    for o in sorted(outcomes, key=lambda o: -o.wall_s):
        result = "ok" if o.ok else ("skipped" if o.code is None else f"exit {o.code}")
        rows.append(f"{o.module:<{width}}{result:>8}{o.wall_s:>9.1f}{o.cpu_s:>9.1f}")
    cpu = sum(o.cpu_s for o in outcomes)
    passes = sum(o.wall_s for o in outcomes)
    rows.append(
        f"{len(outcomes)} passes in {wall_s:.1f} s (one after another: {passes:.1f} s; "
        f"cpu {cpu:.1f} s; load average {os.getloadavg()[0]:.1f})"
    )
    return "\n".join(rows)


def timed_run(modules: Sequence[str], jobs: int, timeout_s: float) -> tuple[float, list[Outcome]]:
    print(f"== {len(modules)} smoke passes, at most {jobs} at a time")
    began = time.monotonic()
    outcomes = run_passes(modules, jobs, timeout_s)
    wall = time.monotonic() - began
    print(summary(outcomes, wall), flush=True)
    return wall, outcomes


def baseline_seconds(ref: str) -> tuple[float, float]:
    """Wall and CPU time of ``make bench-smoke`` of commit ``ref`` (exported to a temporary
    folder, run with this checkout's virtualenv and downloaded jars)."""
    here = Path.cwd()
    tree = Path(tempfile.mkdtemp(prefix="tillflow-bench-smoke-baseline-"))
    try:
        archive = subprocess.run(["git", "archive", ref], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        (tree / ".venv").symlink_to(here / ".venv")
        (tree / ".tillflow").mkdir()
        (tree / ".tillflow" / "cache").symlink_to((here / ".tillflow" / "cache").resolve())
        print(f"== make bench-smoke of {ref} (the baseline)", flush=True)
        began, cpu = time.monotonic(), children_cpu_s()
        subprocess.run(["make", "--no-print-directory", "bench-smoke"], cwd=tree, check=True)
        return time.monotonic() - began, children_cpu_s() - cpu
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def record(modules: Sequence[str], jobs: int, timeout_s: float, baseline_ref: str | None) -> None:
    """In the same run: these passes at once, then the baseline commit's ``make bench-smoke``
    (when given; a failed pass shows first); wall and CPU time of each, the machine's load."""
    figures: dict[str, float] = {}
    runs: dict[str, object] = {"repeats": 1, "jobs": jobs, "modules": list(modules)}
    loads: dict[str, float] = {"start": os.getloadavg()[0]}
    wall, outcomes = timed_run(modules, jobs, timeout_s)
    if not all(o.ok for o in outcomes):
        raise SystemExit("a pass failed: nothing recorded")
    loads["after_parallel"] = os.getloadavg()[0]
    if baseline_ref is not None:
        base_wall, base_cpu = baseline_seconds(baseline_ref)
        figures["baseline_serial_s"], figures["baseline_serial_cpu_s"] = base_wall, base_cpu
        runs["baseline_ref"] = baseline_ref
    figures["parallel_s"] = wall
    figures["parallel_cpu_s"] = sum(o.cpu_s for o in outcomes)
    figures["parallel_passes_one_after_another_s"] = sum(o.wall_s for o in outcomes)
    runs["passes"] = {o.module: [round(o.wall_s, 1), round(o.cpu_s, 1)] for o in outcomes}
    loads["end"] = os.getloadavg()[0]
    if "baseline_serial_s" in figures:
        figures["parallel_vs_baseline"] = wall / figures["baseline_serial_s"]
    figures["load_1m_max"] = max(loads.values())
    runs["load_1m"] = loads
    print(f"wrote {write_result('bench_smoke', figures, runs)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("modules", nargs="+", help="benchmark modules (make's BENCH_MODULES)")
    parser.add_argument("--jobs", type=int, default=4, help="passes at a time (default 4)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per pass")
    parser.add_argument("--record", action="store_true", help="write results/bench_smoke.json")
    parser.add_argument("--baseline-ref", help="with --record: also time this commit's make")
    args = parser.parse_args(argv)
    # SIGTERM (make interrupted, CI cancelled) unwinds like Ctrl-C: the passes are stopped.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(128 + signal.SIGTERM))
    if args.record:
        record(args.modules, max(1, args.jobs), args.timeout, args.baseline_ref)
        return 0
    _, outcomes = timed_run(args.modules, max(1, args.jobs), args.timeout)
    bad = [o.module for o in outcomes if not o.ok]
    if bad:
        print(f"bench-smoke FAILED: {', '.join(bad)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
