"""The same replay through the flow at several commits, in one run -> results/stream_ab.json.

The machine is shared, so a throughput figure on its own says little: only ratios measured
in one run, the commits interleaved, do. This produces EVENTS simulator events once, then
replays them through one flow process (``tail=False``, recovery on, as the stream benchmark
runs it) at each commit in turn, REPEATS times each (each repeat starts with the next commit),
every run with its own Redis prefix, lake and recovery folder. A commit's source comes from
``git archive`` into a scratch folder; its flow process runs on this checkout's interpreter
in that folder (``python -m`` puts the working folder first on the import path, before
``PYTHONPATH``), which also stamps the recovery folder with its own state format (``.`` is the
working tree as it is). One replay of each commit before the measured ones warms the caches
(bytecode, page cache).

Per commit: ``cpu_s`` (median user + system time of the flow process, all its threads: what
other load on the machine stretches least), ``wall_s`` (median wall time, start-up included),
``max_rss_mb`` (median peak resident memory of the flow process: what its consumers read ahead
of a backlog counts in it) and the CPU and wall ratios to the first commit
(``cpu_ratio_to_first``, ``wall_ratio_to_first``);
each replay's figures and the machine's 1-minute load average as it ended are in ``meta``.

``--freshness`` runs the stream benchmark's one-process freshness run instead of the replay,
each commit's flow in turn (:func:`freshness_ab`): whether a change moved the probes' latency
or the machine did.

Run: ``python -m benchmarks.stream_ab BASE OTHER... [--events N] [--repeats R]
[--freshness [--load-s S]]``;
``--smoke`` is a tiny size of the same path (by default the working tree against itself).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import NamedTuple

from benchmarks.common import Mode, median, write_result
from benchmarks.stream import (
    LOAD_RATE,
    LOAD_S,
    PROBES,
    Probe,
    drop_keys,
    env_of,
    timed_freshness,
    unstamped_recovery,
    variant,
)
from flows.catalogue import store_catalogue
from flows.run import process_commands
from infra.readiness import require_kafka, require_redis
from infra.stack.topics import delete_topics, ensure_topics
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS
from simulator.config import ShopConfig
from simulator.producer import RunOptions, run_shop
from simulator.shop import Shop

EVENTS = 60_000
REPEATS = 3
HERE = "."


def source_tree(ref: str, scratch: Path) -> Path:
    """A folder with the code of ``ref`` (``.``: this working tree)."""
    if ref == HERE:
        return Path.cwd()
    out = scratch / ref.replace("/", "_")
    if not out.exists():
        out.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", ref], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out


def commit_of(ref: str) -> str:
    """The commit ``ref`` names (``.``: the working tree, said as such)."""
    if ref == HERE:
        return "working tree"
    out = subprocess.run(["git", "rev-parse", "--short", ref], capture_output=True, text=True)
    return out.stdout.strip() or ref


class Replay(NamedTuple):
    wall_s: float
    cpu_s: float  # user + system time of the flow process, all its threads
    max_rss_mb: float  # the flow process's peak resident memory
    load_1m: float  # the machine's 1-minute load average as the replay ended


def replay(data: Settings, code: Path, workdir: Path) -> Replay:
    """One flow process at ``code`` replaying ``data``'s topics: its wall and CPU time."""
    tag = uuid.uuid4().hex[:6]
    s = data.model_copy(
        update={
            "redis_prefix": f"bench-ab-{tag}:",
            "lake_dir": workdir / tag / "lake",
            "recovery_dir": workdir / tag / "recovery",
        }
    )
    store_catalogue(s, Shop(ShopConfig()).catalogue())
    unstamped_recovery(s.recovery_dir, 1)
    env = env_of(s, tail=False, code=code)
    started = time.perf_counter()
    proc = subprocess.Popen(  # in ``code``: ``python -m`` puts the working folder first
        process_commands(s, 1, 1, recovery=True)[0],
        env=env,
        cwd=code,
        stdout=subprocess.DEVNULL,
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    drop_keys(s)
    if proc.returncode != 0:
        raise RuntimeError(f"flow at {code} exited with {proc.returncode}")
    cpu_s, rss_mb = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # Linux: in KiB
    return Replay(elapsed, cpu_s, round(rss_mb, 1), round(os.getloadavg()[0], 2))


def freshness_ab(refs: list[str], mode: Mode, repeats: int, load_s: int) -> None:
    """``--freshness``: the stream benchmark's one-process freshness run (LOAD_RATE events/s
    for ``load_s`` seconds, PROBES probes) with the flow of each commit in turn, interleaved as
    the replays are -> results/stream_ab_freshness.json: per commit the medians of
    :func:`benchmarks.stream.figures`; each run's figures, probes and the 1-minute load average
    as it ended in ``meta``."""
    repeats, probes, load_s = mode.size(repeats, 1), mode.size(PROBES, 10), mode.size(load_s, 1)
    base = Settings(environment="test")
    require_kafka(base)
    require_redis(base)
    workdir = Path(tempfile.mkdtemp(prefix="tillflow-ab-"))
    runs: list[list[dict[str, float]]] = [[] for _ in refs]
    probes_of: list[list[list[Probe]]] = [[] for _ in refs]
    try:
        code = [source_tree(ref, workdir) for ref in refs]
        for repeat in range(repeats):
            for i in [(repeat + j) % len(refs) for j in range(len(refs))]:
                tag = f"abf{uuid.uuid4().hex[:6]}"
                seen, probed = timed_freshness(base, workdir, tag, probes, load_s, code[i])
                runs[i].append(seen)
                probes_of[i].append(probed)
            latest = "; ".join(
                f"{ref}: " + ", ".join(f"{k}={v:,.1f}" for k, v in r[-1].items())
                for ref, r in zip(refs, runs, strict=True)
            )
            print(f"repeat {repeat + 1}/{repeats}: {latest}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    medians = {
        key: {ref: median([r[key] for r in each]) for ref, each in zip(refs, runs, strict=True)}
        for key in runs[0][0]
    }
    meta = {
        "refs": refs,
        "commits": {ref: commit_of(ref) for ref in refs},
        "load_rate": LOAD_RATE,
        "load_s": load_s,
        "repeats": repeats,
        "each": {ref: each for ref, each in zip(refs, runs, strict=True)},
        "probes": {
            ref: [[list(p) for p in run] for run in each]
            for ref, each in zip(refs, probes_of, strict=True)
        },
        "probe_fields": list(Probe._fields),
    }
    print(f"wrote {write_result('stream_ab_freshness', medians, meta, mode)}: {medians}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("refs", nargs="*", help="commits to compare, the first the baseline")
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--smoke", action="store_true", help="tiny size, results to a temp dir")
    parser.add_argument("--freshness", action="store_true", help="freshness runs, not replays")
    parser.add_argument("--load-s", type=int, default=LOAD_S, help="seconds of load a run")
    args = parser.parse_args(argv)
    refs: list[str] = args.refs or [HERE, HERE]
    mode = Mode(smoke=args.smoke)
    if args.freshness:
        freshness_ab(refs, mode, args.repeats, args.load_s)
        return
    events_n, repeats = mode.size(args.events, 2_000), mode.size(args.repeats, 1)
    base = Settings(environment="test")
    require_kafka(base)
    require_redis(base)
    workdir = Path(tempfile.mkdtemp(prefix="tillflow-ab-"))
    data = variant(base, f"ab{uuid.uuid4().hex[:6]}", workdir)
    ensure_topics(data)
    runs: list[list[Replay]] = [[] for _ in refs]
    try:
        asyncio.run(run_shop(data, ShopConfig(), RunOptions(max_events=events_n)))
        code = [source_tree(ref, workdir) for ref in refs]
        for tree in code:  # warm-up: bytecode caches, page cache
            replay(data, tree, workdir)
        for repeat in range(repeats):  # interleaved; each repeat starts with another side
            for i in [(repeat + j) % len(refs) for j in range(len(refs))]:
                runs[i].append(replay(data, code[i], workdir))
            latest = ", ".join(
                f"{ref}={r[-1].cpu_s:.2f} cpu-s/{r[-1].wall_s:.2f} s/{r[-1].max_rss_mb:.0f} MB"
                for ref, r in zip(refs, runs, strict=True)
            )
            print(f"repeat {repeat + 1}/{repeats}: {latest}", flush=True)
    finally:
        delete_topics(data, [data.topic(t) for t in ALL_TOPICS])
        shutil.rmtree(workdir, ignore_errors=True)
    cpu = [median([r.cpu_s for r in each]) for each in runs]
    wall = [median([r.wall_s for r in each]) for each in runs]
    rss = [median([r.max_rss_mb for r in each]) for each in runs]
    figures = {
        "cpu_s": dict(zip(refs, cpu, strict=True)),
        "wall_s": dict(zip(refs, wall, strict=True)),
        "max_rss_mb": dict(zip(refs, rss, strict=True)),
        "cpu_ratio_to_first": {ref: round(c / cpu[0], 4) for ref, c in zip(refs, cpu, strict=True)},
        "wall_ratio_to_first": {
            ref: round(w / wall[0], 4) for ref, w in zip(refs, wall, strict=True)
        },
    }
    each = {ref: [r._asdict() for r in r_] for ref, r_ in zip(refs, runs, strict=True)}
    loads = [r.load_1m for each_ref in runs for r in each_ref]
    meta = {
        "refs": refs,
        "commits": {ref: commit_of(ref) for ref in refs},
        "events": events_n,
        "repeats": repeats,
        "load_1m": {"min": min(loads), "median": median(loads), "max": max(loads)},
        "each": each,
    }
    print(f"wrote {write_result('stream_ab', figures, meta, mode)}: {figures}")


if __name__ == "__main__":
    main()
