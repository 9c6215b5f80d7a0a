"""How fast a batch is graded: serial `nbgrader autograde` against `classhub grade`, same run.

    .venv/bin/python benchmarks/grading.py [-n 40] [--jobs N]

Builds an nbgrader course directory of the breast-cancer assignment (m2-ia-sante,
01-cancer-du-sein) with N submissions (correct and partial answers, alternating), copies it
twice, and grades one copy with serial `nbgrader autograde` in one container of the course
image (the classic way) and the other with the sandboxed parallel grader, both with
OMP_NUM_THREADS=1. Prints both times, the ratio, submissions per minute, how close the grader
gets to (cores x serial throughput), and the per-submission overhead of a sandbox beyond the
notebook's own execution. Not a test: it asserts nothing and gates nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.spawn import machine  # noqa: E402
from grading.batch import GradingJob, grade, quiet_nbgrader  # noqa: E402
from grading.progress import Progress  # noqa: E402
from grading.sandbox import Limits  # noqa: E402
from tests.integration.grading_course import answered, make_course, released, submit  # noqa: E402
from tests.integration.test_grading_equivalence import (  # noqa: E402
    COURSE,
    IMAGE,
    NB,
    A,
    solutions,
)


def build_course(folder: Path, n: int) -> Path:
    source = json.loads((REPO / "courses" / COURSE / "source" / A / f"{NB}.ipynb").read_text())
    course = make_course(folder, COURSE, A, {NB: source},
                         due=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30),
                         cell_timeout_s=120)
    release, answers = released(course, A, NB), solutions(source)
    half = dict(list(answers.items())[: len(answers) // 2])
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    for i in range(n):
        nb = answered(release, answers if i % 2 == 0 else half)
        submit(course, f"etudiant{i:03d}", A, {f"{NB}.ipynb": nb}, when)
    return course


def serial_nbgrader(course: Path) -> float:
    subprocess.run(["chown", "-R", "1000:1000", str(course)], check=True)
    started = time.monotonic()
    subprocess.run(["docker", "run", "--rm", "--network", "none", "--user", "1000:1000",
                    "-e", "OMP_NUM_THREADS=1", "-v", f"{course}:/home/jovyan/course",
                    "-w", "/home/jovyan/course", IMAGE, "nbgrader", "autograde", A, "--force"],
                   check=True, capture_output=True)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=40, help="submissions (default 40)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    quiet_nbgrader()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="classhub-bench-") as tmp:
        base = build_course(Path(tmp) / "base", args.n)
        classic, sandboxed = Path(tmp) / "classic", Path(tmp) / "sandboxed"
        shutil.copytree(base, classic)
        shutil.copytree(base, sandboxed)
        serial = serial_nbgrader(classic)
        job = GradingJob(sandboxed, A, IMAGE, Limits(mem_limit="2g", cpus=1.0,
                                                     cell_timeout_s=120,
                                                     notebook_timeout_s=600),
                         jobs=args.jobs, env={"OMP_NUM_THREADS": "1"})
        started = time.monotonic()
        report = grade(job, Progress(args.n, stream=open(os.devnull, "w")))
        parallel = time.monotonic() - started
    statuses = report.counts()
    runs = [nb for r in report.results for nb in r.notebooks]
    overhead = [nb["seconds"] - nb["execution_s"] for nb in runs]
    execution = [nb["execution_s"] for nb in runs]
    serial_rate, parallel_rate = args.n / serial * 60, args.n / parallel * 60
    print(f"{args.n} submissions of {COURSE}/{A}, OMP_NUM_THREADS=1, "
          f"{args.jobs} sandbox(es) at a time; statuses: {statuses}")
    print(f"serial nbgrader autograde (one container):   {serial:7.1f} s   "
          f"{serial_rate:5.1f} submissions/min")
    print(f"classhub grade (sandboxed, parallel):        {parallel:7.1f} s   "
          f"{parallel_rate:5.1f} submissions/min")
    print(f"ratio classhub / serial time:                {parallel / serial:7.2f}")
    print(f"ideal (cores x serial throughput):           {cores * serial_rate:7.1f} "
          f"submissions/min; reached {parallel_rate / (cores * serial_rate):.0%} of it")
    print(f"per notebook: execution p50 {statistics.median(execution):.2f} s; sandbox overhead "
          f"beyond it p50 {statistics.median(overhead):.2f} s, max {max(overhead):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
