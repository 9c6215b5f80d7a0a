"""Execute one prepared notebook in a throwaway sandbox: two containers, two uids.

    kernel container    uid 1000, the student's code; sees a copy of the submission's files
                        (no notebook, no solutions, no gradebook) and nothing it can report to
    executor container  uid 2000, nbgrader's Execute (executor.py); sees the notebook and the
                        one folder its report goes to; the kernel cannot reach either

Both have no network (the kernel joins the executor's empty network namespace, loopback only,
and its process namespace, so that the executor sees it exit), a read-only root with small
tmpfs, no capabilities, no-new-privileges, and pids, memory and CPU limits. The executor ends
the run when the notebook's time budget is spent; the host removes both containers, and if the
executor has not ended a minute after the budget, ends the run itself.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
import requests

from classhub.state import chown_tree

EXECUTOR_SCRIPT = Path(__file__).with_name("executor.py")
KERNEL_UID = 1000
EXECUTOR_UID = 2000
WORKDIR = "/home/jovyan/work"
LABEL = "org.classhub.grading"
REPORT_LIMIT = 64 * 2**20  # bytes of cells.jsonl read back; a longer report is cut there
START_MARGIN_S = 60  # container and kernel start, on top of the notebook's budget
# Grading runs on CPU, even where the NVIDIA runtime is the engine's default: a GPU is given
# out by the allocator to students' servers only.
NO_GPU = {"NVIDIA_VISIBLE_DEVICES": "void"}
# The kernel starts with `python -P`, so that a submitted `zmq.py` or `ipykernel_launcher.py`
# cannot replace the kernel's own modules; once started, the working folder goes on sys.path
# as a notebook's kernel has it (helper modules shipped with the assignment import), leaving no
# name behind in the student's namespace.
KERNEL_PATH_LINE = "--IPKernelApp.exec_lines=[\"__import__('sys').path.insert(0, '')\"]"


class SandboxUnavailable(Exception):
    """The sandbox could not run (engine, image): the grader's fault, never the student's."""


@dataclass(frozen=True)
class Limits:
    mem_limit: str = "2g"
    cpus: float = 1.0
    pids: int = 256
    cell_timeout_s: int = 120
    notebook_timeout_s: int = 600
    tmpfs: str = "256m"


@dataclass
class Execution:
    """What came back: validated records per executed cell, and how the run ended."""

    cells: dict[int, dict] = field(default_factory=dict)
    end: str = "executor-error"  # complete | kernel-died | memory-limit | notebook-timeout | ...
    reason: str = ""
    seconds: float = 0.0  # the whole sandbox, from creating its containers to removing them
    execution_s: float = 0.0  # the notebook's own execution, as the executor timed it
    language_info: dict = field(default_factory=dict)


def _volume(path: Path, bind: str, mode: str) -> dict:
    return {str(path): {"bind": bind, "mode": mode}}


def _prepare_job(job: Path, notebook: dict, workdir: Path, limits: Limits) -> None:
    """JOB/in (executor, read-only), JOB/out (executor, writable), JOB/kernel, JOB/work."""
    for name in ("in", "out", "kernel"):
        (job / name).mkdir(parents=True)
    (job / "in" / "notebook.ipynb").write_text(json.dumps(notebook))
    (job / "in" / "job.json").write_text(json.dumps({
        "cell_timeout_s": limits.cell_timeout_s, "notebook_timeout_s": limits.notebook_timeout_s,
        "workdir": WORKDIR}))
    connection = {"ip": "127.0.0.1", "transport": "tcp", "key": secrets.token_hex(32),
                  "signature_scheme": "hmac-sha256", "kernel_name": "python3",
                  **{f"{ch}_port": port for ch, port in
                     zip(("shell", "iopub", "stdin", "control", "hb"), range(50001, 50006),
                         strict=True)}}
    for where in ("in", "kernel"):
        (job / where / "kernel.json").write_text(json.dumps(connection))
    # The submission's files without any notebook: the kernel needs data and modules only.
    shutil.copytree(workdir, job / "work", ignore=shutil.ignore_patterns("*.ipynb"),
                    symlinks=True)
    owners = {job / "out": EXECUTOR_UID, job / "work": KERNEL_UID}
    for path in (job / "in", job / "kernel", job / "out", job / "work"):
        for top, dirs, files in os.walk(path):
            for name in [top, *(os.path.join(top, n) for n in dirs + files)]:
                os.chmod(name, 0o755 if os.path.isdir(name) else 0o644)
        chown_tree(path, owners.get(path, 0), owners.get(path, 0))
    if os.geteuid() != 0:  # each folder is mounted in one container only, so this stays safe
        (job / "out").chmod(0o777)
        (job / "work").chmod(0o777)


def _security(limits_mem: str, cpus: float, pids: int, tmpfs: dict) -> dict:
    return {"read_only": True, "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"], "mem_limit": limits_mem,
            "memswap_limit": limits_mem, "nano_cpus": int(cpus * 1e9), "pids_limit": pids,
            "tmpfs": tmpfs}


def read_report(path: Path, cell_count: int) -> Execution:
    """Validate the executor's JSON lines; anything malformed is ignored, never trusted."""
    from nbformat import from_dict
    from nbformat.v4.nbbase import validate

    execution = Execution(end="executor-error", reason="the executor wrote no report")
    if not path.exists():
        return execution
    with path.open("rb") as handle:
        data = handle.read(REPORT_LIMIT)
    for raw in data.splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            continue  # a line cut by a kill
        if not isinstance(record, dict):
            continue
        if "end" in record:
            execution.end = str(record["end"])[:40]
            execution.reason = str(record.get("reason", ""))[:2000]
            took = record.get("execution_s")
            execution.execution_s = float(took) if isinstance(took, (int, float)) else 0.0
            info = record.get("language_info")
            execution.language_info = info if isinstance(info, dict) else {}
            continue
        index = record.get("cell")
        if not isinstance(index, int) or not 0 <= index < cell_count:
            continue
        count = record.get("execution_count")
        outputs = record.get("outputs")
        if not isinstance(outputs, list) or not (count is None or isinstance(count, int)):
            continue
        try:
            nodes = [from_dict(o) for o in outputs]
            for node in nodes:
                validate(node, "output")
        except Exception:  # noqa: BLE001 - a malformed output is a lost output
            continue
        execution.cells[index] = {"execution_count": count, "outputs": nodes,
                                  "hidden_error": record.get("hidden_error") is True}
    if execution.end == "executor-error" and execution.reason == "the executor wrote no report":
        execution.end, execution.reason = "executor-lost", "the executor stopped without ending"
    return execution


class Sandbox:
    """Runs notebooks of one course image under one set of limits; thread-safe."""

    def __init__(self, image: str, limits: Limits, scratch: Path, env: dict | None = None,
                 volumes: dict | None = None, labels: dict | None = None):
        self.image, self.limits, self.scratch = image, limits, scratch
        self.env = env or {}
        self.volumes = volumes or {}
        self.labels = {LABEL: "1", **(labels or {})}
        self.engine = docker.from_env(timeout=120)
        self._cancelled = threading.Event()

    def check_image(self) -> None:
        try:
            self.engine.images.get(self.image)
        except docker.errors.ImageNotFound as error:
            raise SandboxUnavailable(f"image {self.image!r} is not in the engine") from error
        except docker.errors.DockerException as error:
            raise SandboxUnavailable(f"the Docker engine does not answer: {error}") from error

    def cancel(self) -> None:
        """Stop every sandbox of this grader now (Ctrl-C)."""
        self._cancelled.set()
        remove_sandboxes(self.engine, self.labels)

    def run(self, notebook: dict, workdir: Path, name: str) -> Execution:
        if self._cancelled.is_set():
            raise SandboxUnavailable("grading was interrupted")
        job = Path(self.scratch) / f"{name}-{secrets.token_hex(4)}"
        _prepare_job(job, notebook, workdir, self.limits)
        try:
            return self._run(job, len(notebook["cells"]))
        finally:
            shutil.rmtree(job, ignore_errors=True)

    def _run(self, job: Path, cell_count: int) -> Execution:
        limits, started = self.limits, time.monotonic()
        executor = kernel = None
        try:
            executor = self.engine.containers.create(
                self.image, ["python", "-P", "/opt/classhub-grading/executor.py", "/job"],
                user=f"{EXECUTOR_UID}:{EXECUTOR_UID}", network_mode="none", init=True,
                environment={"HOME": "/tmp", "PYTHONSAFEPATH": "1", **NO_GPU},
                volumes={**_volume(EXECUTOR_SCRIPT, "/opt/classhub-grading/executor.py", "ro"),
                         **_volume(job / "in", "/job/in", "ro"),
                         **_volume(job / "out", "/job/out", "rw")},
                labels={**self.labels, f"{LABEL}.role": "executor"},
                **_security("512m", 1.0, 64, {"/tmp": "size=16m,mode=1777"}))
            kernel = self.engine.containers.create(
                self.image, ["python", "-P", "-m", "ipykernel_launcher", "-f",
                             "/run/classhub-kernel/kernel.json",
                             "--HistoryManager.hist_file=:memory:", KERNEL_PATH_LINE],
                user=f"{KERNEL_UID}:{KERNEL_UID}", working_dir=WORKDIR,
                network_mode=f"container:{executor.id}", pid_mode=f"container:{executor.id}",
                environment={"HOME": "/home/jovyan", "NBGRADER_EXECUTION": "autograde",
                             **self.env, **NO_GPU},
                volumes={**_volume(job / "kernel", "/run/classhub-kernel", "ro"),
                         **_volume(job / "work", WORKDIR, "rw"), **self.volumes},
                labels={**self.labels, f"{LABEL}.role": "kernel"},
                **_security(limits.mem_limit, limits.cpus, limits.pids,
                            {"/tmp": f"size={limits.tmpfs},mode=1777",
                             "/home/jovyan": f"size={limits.tmpfs},uid={KERNEL_UID},"
                                             f"gid={KERNEL_UID},mode=0700"}))
            executor.start()
            kernel.start()
        except docker.errors.DockerException as error:
            for container in (kernel, executor):
                _remove(container)
            raise SandboxUnavailable(f"cannot start the sandbox: {error}") from error
        timed_out = False
        try:
            executor.wait(timeout=limits.notebook_timeout_s + START_MARGIN_S)
        except (requests.exceptions.ConnectionError, requests.exceptions.ReadTimeout):
            timed_out = True
        except docker.errors.NotFound:
            pass  # removed by cancel()
        oom = False
        try:
            kernel.reload()
            oom = bool(kernel.attrs["State"].get("OOMKilled"))
        except docker.errors.DockerException:
            pass
        for container in (kernel, executor):
            _remove(container)
        if self._cancelled.is_set():
            raise SandboxUnavailable("grading was interrupted")
        execution = read_report(job / "out" / "cells.jsonl", cell_count)
        execution.seconds = time.monotonic() - started
        if timed_out:
            execution.end = "notebook-timeout"
            execution.reason = (f"the notebook's budget of {limits.notebook_timeout_s} s ran out")
        elif oom and execution.end != "complete":
            execution.end = "memory-limit"
            execution.reason = f"the kernel went over its memory limit ({limits.mem_limit})"
        elif execution.end == "kernel-start-failed":
            raise SandboxUnavailable(f"the kernel did not start: {execution.reason}")
        return execution


def _remove(container) -> None:
    if container is None:
        return
    try:
        container.remove(force=True)
    except docker.errors.DockerException:
        pass


def remove_sandboxes(engine, labels: dict) -> int:
    """Remove the sandboxes carrying these labels (a crashed or interrupted grader's)."""
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    containers = engine.containers.list(all=True, filters=filters)
    for container in containers:
        _remove(container)
    return len(containers)
