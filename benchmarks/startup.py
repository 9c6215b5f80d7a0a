"""What leaving rfc3987-syntax out of the locks saves: Jupyter imports with and without it.

    .venv/bin/python benchmarks/startup.py [-r 7] [--wheels .cache/hub-wheels]

The locks leave out rfc3987-syntax and its lark (see LEFT_OUT in the Makefile). The baseline
puts them back for the same run: their wheels (from --wheels; fetch them with
`pip download --no-deps rfc3987-syntax==1.1.0 lark==1.3.1 -d DIR`) are unpacked into a folder
put on PYTHONPATH. Timed, alternating the two, median of R rounds each:
- in the lab image (a throwaway container, no network): what a lab server and a grading step
  import (`jupyter_server.serverapp`, `nbgrader.api`);
- in the hub's venv on the host: `jupyterhub.app`, what the hub and each `classhub` command
  importing JupyterHub load.
Not a test: it asserts nothing and gates nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import docker

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.spawn import machine  # noqa: E402
from classhub.config.model import image_tag  # noqa: E402

IMAGE_IMPORTS = "jupyter_server.serverapp, nbgrader.api"
HUB_IMPORTS = "jupyterhub.app"
# Prints whether the grammars were built, so that the baseline is known to be one.
PROBE = "import sys, time; t = time.perf_counter(); import {}; " \
        "print(time.perf_counter() - t, 'rfc3987_syntax' in sys.modules)"


def unpack(wheels: Path, into: Path) -> None:
    for name in ("rfc3987_syntax", "lark"):
        found = sorted(wheels.glob(f"{name}-*.whl"))
        if not found:
            sys.exit(f"no {name} wheel in {wheels}: pip download --no-deps "
                     f"rfc3987-syntax==1.1.0 lark==1.3.1 -d {wheels}")
        with zipfile.ZipFile(found[-1]) as wheel:
            wheel.extractall(into)


def in_container(container, extra: bool) -> tuple[float, bool]:
    env = {"PYTHONPATH": "/extra"} if extra else {}
    code, output = container.exec_run(["python", "-c", PROBE.format(IMAGE_IMPORTS)],
                                      environment=env)
    if code != 0:
        sys.exit(f"lab image: {output.decode()}")
    seconds, loaded = output.decode().split()
    return float(seconds), loaded == "True"


def on_host(extra_dir: Path, extra: bool) -> tuple[float, bool]:
    env = {"PYTHONPATH": str(extra_dir)} if extra else {}
    output = subprocess.run([sys.executable, "-c", PROBE.format(HUB_IMPORTS)], check=True,
                            capture_output=True, text=True, env=env).stdout
    seconds, loaded = output.split()
    return float(seconds), loaded == "True"


def compare(label: str, measure, rounds: int) -> None:
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for extra in (True, False):
            seconds, loaded = measure(extra)
            if loaded != extra:
                sys.exit(f"{label}: rfc3987_syntax {'not ' if extra else ''}imported "
                         f"{'with' if extra else 'without'} it: the comparison is void")
            times[extra].append(seconds)
    shipped, upstream = statistics.median(times[False]), statistics.median(times[True])
    print(f"{label:58}{upstream:9.2f}{shipped:9.2f}{shipped / upstream:9.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--rounds", type=int, default=7)
    parser.add_argument("--wheels", type=Path, default=REPO / ".cache" / "hub-wheels")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"median of {args.rounds} imports each, seconds")
    print(f"{'':58}{'with it':>9}{'without':>9}{'ratio':>9}")
    with tempfile.TemporaryDirectory() as extra:
        unpack(args.wheels, Path(extra))
        Path(extra).chmod(0o755)  # read by the image's uid 1000
        compare(f"hub venv: import {HUB_IMPORTS}", lambda e: on_host(Path(extra), e), args.rounds)
        container = docker.from_env().containers.run(
            image_tag("lab"), ["sleep", "infinity"], detach=True, network_mode="none",
            volumes={extra: {"bind": "/extra", "mode": "ro"}})
        try:
            compare("lab image: import " + IMAGE_IMPORTS.replace(", ", "+"),
                    lambda e: in_container(container, e), args.rounds)
        finally:
            container.remove(force=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
