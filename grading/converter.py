"""nbgrader's own `autograde`, with its one execution step moved into the sandbox.

Everything else is nbgrader's code, on the host: sanitising (clear outputs, restore the
kernelspec, overwrite the instructor's cells from the gradebook, check metadata), then, on the
executed notebook, output limits, the gradebook write and the late penalty. That is what makes
the scores the ones `nbgrader autograde` gives.

The execution step sends the sanitised notebook to the sandbox and takes back only outputs and
execution counts, grafted onto the host's own copy of the cells: the kernel can change neither
a cell's source nor its metadata. A code cell that never reported (kernel dead, budget spent)
gets an error output saying why, so that its tests score zero, as a failed test does.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbformat.v4 import new_output
from nbgrader.converters import Autograde
from nbgrader.converters.base import BaseConverter
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    IgnorePattern,
    LimitOutput,
    NbGraderPreprocessor,
    SaveAutoGrades,
)

from grading.sandbox import Execution, Sandbox

NOT_RUN = {
    "notebook-timeout": ("NotebookTimeout",
                         "Cellule non exécutée : le temps accordé au notebook est écoulé."),
    "kernel-died": ("DeadKernelError",
                    "Cellule non exécutée : le noyau s'est arrêté avant (exit, plantage)."),
    "memory-limit": ("MemoryLimit",
                     "Cellule non exécutée : le noyau a dépassé la mémoire autorisée."),
}
DEFAULT_NOT_RUN = ("NotRun", "Cellule non exécutée par le correcteur.")


@dataclass
class NotebookRun:
    name: str
    end: str
    reason: str
    seconds: float
    execution_s: float = 0.0
    timed_out_cells: int = 0
    hidden_errors: int = 0
    not_run: int = 0


@dataclass
class SubmissionContext:
    """Shared by the converter's preprocessors for one submission."""

    sandbox: Sandbox
    host_lock: Lock
    runs: list[NotebookRun] = field(default_factory=list)
    current: str = ""


def graft(nb, execution: Execution):
    """Outputs from the sandbox onto the host's cells; errors where nothing came back."""
    ename, evalue = NOT_RUN.get(execution.end, DEFAULT_NOT_RUN)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        record = execution.cells.get(index)
        if record is None:
            cell.outputs = [new_output("error", ename=ename, evalue=evalue,
                                       traceback=[f"{ename}: {evalue}", execution.reason])]
            cell.execution_count = None
        else:
            cell.outputs = record["outputs"]
            cell.execution_count = record["execution_count"]
    if execution.language_info:
        nb.metadata["language_info"] = execution.language_info
    return nb


class SandboxExecute(NbGraderPreprocessor):
    """Takes the place of nbgrader's Execute in the autograde step (the converter registers it,
    so its parent is the exporter and the exporter's parent the converter)."""

    def preprocess(self, nb, resources):
        context: SubmissionContext = self.parent.parent.context  # exporter, then converter
        workdir = Path(resources["metadata"]["path"])
        name = resources["nbgrader"]["notebook"]
        context.current = name
        prepared = nb.copy()
        context.host_lock.release()  # the host's work waits for no sandbox
        try:
            execution = context.sandbox.run(prepared, workdir,
                                            f"{resources['nbgrader']['student']}-{name}")
        finally:
            context.host_lock.acquire()
        graft(nb, execution)
        if execution.end == "notebook-timeout":
            execution.reason = execution.reason or "the notebook's time budget ran out"
        context.runs.append(NotebookRun(
            name=name, end=execution.end, reason=execution.reason,
            seconds=round(execution.seconds, 2),
            execution_s=execution.execution_s,
            timed_out_cells=sum(
                1 for c in execution.cells.values()
                if any(o.get("ename") == "CellTimeoutError" for o in c["outputs"])),
            hidden_errors=sum(1 for c in execution.cells.values() if c["hidden_error"]),
            not_run=sum(1 for i, c in enumerate(nb.cells)
                        if c.cell_type == "code" and i not in execution.cells)))
        return nb, resources


class SandboxedAutograde(Autograde):
    """nbgrader's Autograde for one submission, executing in the sandbox."""

    def __init__(self, context: SubmissionContext, **kwargs):
        super().__init__(**kwargs)
        self.context = context
        self.autograde_preprocessors = [
            SandboxExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
            SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]

    def convert_single_notebook(self, notebook_filename: str) -> None:
        """Autograde's two passes, without its toggling of NBGRADER_EXECUTION in os.environ:
        that races between threads, and the kernel has it from its container's environment."""
        self._sanitizing = True
        self._init_preprocessors()
        BaseConverter.convert_single_notebook(self, notebook_filename)
        notebook_filename = os.path.join(self.writer.build_directory,
                                         os.path.basename(notebook_filename))
        self._sanitizing = False
        self._init_preprocessors()
        try:
            BaseConverter.convert_single_notebook(self, notebook_filename)
        finally:
            self._sanitizing = True

    def grade(self, assignment_id: str, student_id: str) -> None:
        """nbgrader's per-submission steps, without its catch-all (the caller wants the error)."""
        from nbconvert.writers import FilesWriter

        self.init_notebooks()
        self.writer = FilesWriter(parent=self, config=self.config)
        self.exporter = self.exporter_class(parent=self, config=self.config)
        (folder, notebooks), = self.assignments.items()
        self.notebooks = sorted(notebooks)
        dest = Path(self._format_dest(assignment_id, student_id))
        if dest.exists():
            shutil.rmtree(dest)
        self.init_assignment(assignment_id, student_id)
        for notebook in self.notebooks:
            self.context.current = os.path.splitext(os.path.basename(notebook))[0]
            self.convert_single_notebook(notebook)
        self.set_permissions(assignment_id, student_id)
