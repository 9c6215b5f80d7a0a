"""The grader's host side, without Docker: what it trusts from a sandbox, what it takes in from a
submission, what it exports."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grading.batch import refused_by_nbgrader
from grading.converter import graft
from grading.export import pseudonym, pseudonym_key
from grading.intake import take_in
from grading.sandbox import SandboxUnavailable, read_report
from tests.conftest import REPO


def _pin(path, name):
    match = re.search(rf"^{name}==(\S+)$", path.read_text(), re.M | re.I)
    assert match, f"{name} is not pinned in {path}"
    return match.group(1)


@pytest.mark.parametrize("package", ["nbgrader", "nbformat", "nbconvert", "nbclient"])
def test_host_grader_and_image_run_the_same_nbgrader(package):
    assert _pin(REPO / "requirements" / "hub.lock", package) == \
        _pin(REPO / "images" / "lab" / "requirements.lock", package)


def _notebook():
    return new_notebook(cells=[new_markdown_cell("# titre"), new_code_cell("x = 1"),
                               new_code_cell("assert x == 1"), new_code_cell("print(x)")])


def test_report_lines_are_validated_and_a_cut_line_is_ignored(tmp_path):
    good = {"output_type": "stream", "name": "stdout", "text": "1\n"}
    lines = [
        json.dumps({"cell": 1, "execution_count": 1, "outputs": [], "hidden_error": False}),
        json.dumps({"cell": 2, "execution_count": 2,
                    "outputs": [{"output_type": "bogus"}]}),           # invalid output
        json.dumps({"cell": 9, "execution_count": 3, "outputs": []}),  # no such cell
        json.dumps(["not", "a", "record"]),
        json.dumps({"cell": 3, "execution_count": "3", "outputs": [good]}),  # bad count
        json.dumps({"cell": 3, "execution_count": 4, "outputs": [good], "hidden_error": 1}),
        '{"end": "kernel-di',                                           # cut by a kill
    ]
    path = tmp_path / "cells.jsonl"
    path.write_text("\n".join(lines))
    execution = read_report(path, cell_count=4)
    assert sorted(execution.cells) == [1, 3]
    assert execution.cells[3]["hidden_error"] is False  # only a real true counts
    assert execution.end == "executor-lost"


def test_graft_keeps_the_hosts_sources_and_fails_cells_that_never_ran(tmp_path):
    path = tmp_path / "cells.jsonl"
    path.write_text(json.dumps({"cell": 1, "execution_count": 1, "outputs": []}) + "\n"
                    + json.dumps({"end": "kernel-died", "reason": "Kernel died"}) + "\n")
    nb = _notebook()
    nb = graft(nb, read_report(path, 4))
    assert [c.source for c in nb.cells] == [c.source for c in _notebook().cells]
    assert nb.cells[1].outputs == []
    for cell in nb.cells[2:]:
        assert cell.outputs[0]["output_type"] == "error"
        assert cell.outputs[0]["ename"] == "DeadKernelError"
    nbformat.validate(nb)


def test_intake_copies_regular_files_only_and_sets_unreadable_notebooks_aside(tmp_path):
    submitted = tmp_path / "submitted"
    submitted.mkdir()
    nbformat.write(_notebook(), submitted / "a.ipynb")
    (submitted / "b.ipynb").write_text('{"cells": [')
    (submitted / "data.csv").write_text("1,2\n")
    (submitted / "shadow").symlink_to("/etc/shadow")
    (submitted / "other").symlink_to(tmp_path)
    staging = tmp_path / "staging"
    intake = take_in(submitted, staging, {"a": {}, "b": {}, "c": {}})
    assert intake.notebooks == ["a"]
    assert list(intake.invalid) == ["b"] and intake.missing == ["c"]
    assert sorted(p.name for p in staging.iterdir()) == ["a.ipynb", "data.csv"]
    assert any("shadow" in n for n in intake.notes) and any("other" in n for n in intake.notes)


def test_only_nbgraders_own_checks_count_against_a_student():
    assert not refused_by_nbgrader(SandboxUnavailable("engine down"))
    assert not refused_by_nbgrader(OSError("disk full"))
    try:
        nbformat.validate({"nbformat": 4, "cells": "nope"})
    except Exception as error:  # noqa: BLE001
        assert refused_by_nbgrader(error)


def test_pseudonyms_are_keyed_stable_and_not_the_username(tmp_path):
    key = pseudonym_key(tmp_path / "key")
    assert (tmp_path / "key").stat().st_mode & 0o777 == 0o600
    assert pseudonym(key, "alice") == pseudonym(pseudonym_key(tmp_path / "key"), "alice")
    assert pseudonym(key, "alice") != pseudonym(key, "bob")
    assert "alice" not in pseudonym(key, "alice")
    assert pseudonym(key, "alice") != pseudonym(pseudonym_key(tmp_path / "other"), "alice")


def test_export_from_a_course_directory(tmp_path, monkeypatch):
    """A gradebook made with nbgrader's API, exported by `classhub export --course-dir`."""
    import datetime as dt
    import os
    from pathlib import Path

    # nbgrader runs its `alembic` script to stamp a new gradebook
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    from nbgrader.api import Gradebook

    course = tmp_path / "cours"
    course.mkdir()
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "c") as gb:
        gb.add_assignment("a1", duedate=dt.datetime(2026, 1, 1))
        gb.add_student("alice")
        gb.add_student("bob")
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "classhub.cli", "export", "--course-dir",
                          str(course), "--course-id", "c", "-o", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    names = sorted(p.name for p in out.iterdir())
    missing = subprocess.run([sys.executable, "-m", "classhub.cli", "export", "--course-dir",
                              str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert missing.returncode == 2 and "no gradebook.db" in missing.stderr
    assert names == ["cours-moodle.csv", "cours-pseudonymised.csv", "cours-questions.csv",
                     "cours-totals.csv"]
    with open(out / "cours-pseudonymised.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["question"] for r in rows} == {"total"}
    assert not any("alice" in value or "bob" in value for r in rows for value in r.values())
    with open(out / "cours-moodle.csv", newline="") as handle:
        assert list(csv.reader(handle)) == [["username", "a1"], ["alice", "0.00"],
                                            ["bob", "0.00"]]


def test_executor_loads_nbgraders_execute_alone():
    """The executor's shortcut loads nbgrader's real Execute class, and nothing of the gradebook."""
    script = ("import runpy, sys; ns = runpy.run_path(sys.argv[1]); "
              "E = ns['Execute']; import nbgrader.preprocessors.execute as m; "
              "assert E is m.Execute and E.__module__ == 'nbgrader.preprocessors.execute'; "
              "assert 'sqlalchemy' not in sys.modules and 'nbgrader.api' not in sys.modules; "
              "print(E.timeout.default_value, E.interrupt_on_timeout.default_value)")
    run = subprocess.run([sys.executable, "-c", script, str(REPO / "grading" / "executor.py")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["30", "True"]
