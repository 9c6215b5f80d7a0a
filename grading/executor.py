"""The executor half of a grading sandbox: runs inside its own container, as its own uid.

    python -P executor.py JOB     # JOB/in: notebook.ipynb, kernel.json, job.json; JOB/out: writable

It executes the prepared notebook on a kernel that runs in another container (another uid,
another filesystem, the same loopback), with nbgrader's own `Execute` preprocessor, so that cell
timeouts, interrupts and errors are handled exactly as `nbgrader autograde` handles them. The
kernel cannot reach JOB/out: each executed code cell is appended there as one JSON line,

    {"cell": 3, "execution_count": 2, "outputs": [...], "hidden_error": false}

and the run ends with {"end": "complete" | "kernel-died" | "executor-error", "reason": "..."}.
The grader on the host reads and validates these lines; nothing else comes back.

Standalone on purpose: it imports only what every nbgrader image has (nbgrader, nbclient,
jupyter_client, pyzmq), never classhub.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
import threading
import time
import types
from pathlib import Path


def _load_nbgrader_execute():
    """nbgrader's Execute preprocessor alone. Importing the `nbgrader` package loads its server
    extensions and every preprocessor (SQLAlchemy, the gradebook): seconds per notebook on a
    small machine, for code this process never runs. Its two packages are stood in for by empty
    ones, so that only nbgrader/preprocessors/{base,execute}.py are read, unchanged."""
    root = importlib.util.find_spec("nbgrader").submodule_search_locations[0]
    for name, folder in (("nbgrader", root), ("nbgrader.preprocessors",
                                              os.path.join(root, "preprocessors"))):
        package = types.ModuleType(name)
        package.__path__ = [folder]
        sys.modules[name] = package
    from nbgrader.preprocessors.base import NbGraderPreprocessor

    sys.modules["nbgrader.preprocessors"].NbGraderPreprocessor = NbGraderPreprocessor
    from nbgrader.preprocessors.execute import Execute

    return Execute


# jsonschema compiles an IRI grammar at import when rfc3987_syntax is installed (2 s here); no
# notebook check in this process needs it (the host validates what comes back). The lab image
# leaves the package out (Makefile LEFT_OUT); a site's own course image may still carry it.
sys.modules["rfc3987_syntax"] = None
Execute = _load_nbgrader_execute()

import nbformat  # noqa: E402
import zmq  # noqa: E402
import zmq.asyncio  # noqa: E402
from jupyter_client.manager import AsyncKernelManager  # noqa: E402
from nbclient.exceptions import CellTimeoutError, DeadKernelError  # noqa: E402
from traitlets.config import Config  # noqa: E402

CELL_OUTPUT_LIMIT = 2_000_000  # characters of output kept per cell; the rest is dropped
HEARTBEAT_TIMEOUT_MS = 10_000  # a kernel silent this long on its heartbeat is dead
KERNEL_START_TIMEOUT_S = 90
TRUNCATED = ("[classhub] Sortie tronquée par le correcteur : plus de "
             f"{CELL_OUTPUT_LIMIT // 1_000_000} Mo pour cette cellule.\n")


class RemoteKernel(AsyncKernelManager):
    """A kernel someone else started (the kernel container), reached through its connection file.

    It cannot be signalled from here (another uid, another container): interrupts go as
    `interrupt_request` messages on the control channel. It lives in this container's process
    namespace, so a kernel that exits is seen at once; one that hangs, by its heartbeat.
    """

    pid: int | None = None

    @property
    def has_kernel(self) -> bool:
        return True

    @property
    def ipykernel(self) -> bool:
        return True

    async def beats(self, timeout_ms: int = HEARTBEAT_TIMEOUT_MS) -> bool:
        if self.pid is not None and not _running(self.pid):
            return False
        socket = zmq.asyncio.Context.instance().socket(zmq.REQ)
        socket.linger = 0
        socket.connect(f"{self.transport}://{self.ip}:{self.hb_port}")
        try:
            await socket.send(b"ping")
            return bool(await socket.poll(timeout_ms))
        finally:
            socket.close()

    _async_is_alive = beats
    is_alive = beats

    async def _async_interrupt_kernel(self) -> None:
        self._connect_control_socket()
        self.session.send(self._control_socket, self.session.msg("interrupt_request", content={}))

    interrupt_kernel = _async_interrupt_kernel

    async def _async_shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        """The host removes the kernel's container; nothing to do from here."""

    shutdown_kernel = _async_shutdown_kernel


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def find_kernel(uid: int = 1000) -> int | None:
    """The kernel's process: the one of the kernel's uid that runs ipykernel_launcher."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        uids = next((line.split()[1:] for line in status.splitlines()
                     if line.startswith("Uid:")), [])
        if uids[:1] == [str(uid)] and b"ipykernel_launcher" in cmdline:
            return int(entry)
    return None


class ReportingExecute(Execute):
    """nbgrader's Execute, reporting each executed code cell and capping what a cell may print."""

    def __init__(self, report, **kwargs):
        super().__init__(**kwargs)
        self._report = report
        self._sizes: dict[int, int] = {}
        self._hidden: set[int] = set()

    def on_cell_executed(self, **kwargs):
        cell, reply = kwargs["cell"], kwargs["execute_reply"]
        before = len(cell.outputs)
        super().on_cell_executed(**kwargs)
        # nbgrader appended the error the kernel replied with but its display did not show:
        # the student's code hid it (a timeout is the one legitimate cause).
        if len(cell.outputs) > before and reply["content"].get("ename") != "CellTimeoutError":
            self._hidden.add(kwargs["cell_index"])

    def output(self, outs, msg, display_id, cell_index):
        out = super().output(outs, msg, display_id, cell_index)
        if out is None:
            return out
        size = self._sizes.get(cell_index, 0) + len(json.dumps(out))
        self._sizes[cell_index] = size
        if size <= CELL_OUTPUT_LIMIT:
            return out
        # Over the limit: keep what decides a grade (an error, a first stderr, a first result),
        # shortened; drop the rest, and say so once.
        outs.remove(out)
        if out.output_type == "error":
            out.traceback = out.traceback[:50]
        elif out.output_type == "stream" and not any(
                o.output_type == "stream" and o.name == out.name for o in outs):
            out.text = out.text[:1000]
        elif out.output_type == "execute_result" and not any(
                o.output_type == "execute_result" for o in outs):
            out.data = {k: v[:1000] for k, v in out.data.items() if k == "text/plain"}
        else:
            out = None
        if not any(o.output_type == "stream" and o.get("text") == TRUNCATED for o in outs):
            outs.append(nbformat.v4.new_output("stream", name="stdout", text=TRUNCATED))
        if out is not None:
            outs.append(out)
        return out

    def preprocess_cell(self, cell, resources, index):
        cell, resources = super().preprocess_cell(cell, resources, index)
        if cell.cell_type == "code":
            self._report({"cell": index, "execution_count": cell.get("execution_count"),
                          "outputs": cell.get("outputs", []),
                          "hidden_error": index in self._hidden})
        return cell, resources


def main(job: Path) -> int:
    out = (job / "out" / "cells.jsonl").open("a", encoding="utf-8")
    lock = threading.Lock()

    def report(record: dict) -> None:
        with lock:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()

    def out_of_time() -> None:
        with lock:  # the last word: nothing is written after it
            out.write(json.dumps({"end": "notebook-timeout", "reason": (
                f"the notebook's budget of {spec['notebook_timeout_s']} s ran out")}) + "\n")
            out.flush()
            os._exit(0)

    spec = json.loads((job / "in" / "job.json").read_text())
    nb = nbformat.read(job / "in" / "notebook.ipynb", as_version=4)
    km = RemoteKernel(connection_file=str(job / "in" / "kernel.json"))
    km.load_connection_file()
    started = time.monotonic()
    while km.pid is None:  # the kernel's container starts just after this one
        km.pid = find_kernel()
        if km.pid is None:
            time.sleep(0.05)
        if time.monotonic() - started > KERNEL_START_TIMEOUT_S:
            report({"end": "kernel-start-failed", "reason": "no kernel process"})
            return 0
    while not asyncio.run(km.beats(timeout_ms=2000)):
        if time.monotonic() - started > KERNEL_START_TIMEOUT_S:
            report({"end": "kernel-start-failed",
                    "reason": f"no kernel heartbeat after {KERNEL_START_TIMEOUT_S} s"})
            return 0
    config = Config()
    config.Execute.timeout = spec["cell_timeout_s"]
    config.Execute.startup_timeout = KERNEL_START_TIMEOUT_S
    executor = ReportingExecute(report, config=config)
    ready = time.monotonic()
    watchdog = threading.Timer(spec["notebook_timeout_s"], out_of_time)
    watchdog.daemon = True
    watchdog.start()
    try:
        executor.preprocess(nb, {"metadata": {"path": spec["workdir"]}}, km=km)
    except DeadKernelError as error:
        end = {"end": "kernel-died", "reason": str(error) or "the kernel stopped"}
    except CellTimeoutError as error:
        end = {"end": "kernel-died", "reason": f"the kernel stopped answering: {error}"}
    except Exception as error:  # noqa: BLE001 - reported to the host, which decides
        end = {"end": "executor-error", "reason": f"{type(error).__name__}: {error}"[:2000]}
    else:
        end = {"end": "complete", "language_info": nb.metadata.get("language_info", {})}
    report({**end, "execution_s": round(time.monotonic() - ready, 3)})
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
