"""Archiving a course: its work in one place first, then only its own students' homes go."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tarfile
from pathlib import Path

from nbgrader.api import Gradebook

from classhub.audit import AuditLog
from classhub.config import load_platform
from classhub.coursework.archive import archive
from classhub.coursework.layout import CourseSpace
from classhub.roster import Member, Roster
from classhub.state import StateDir


def test_archive_keeps_the_work_then_deletes_homes_nobody_else_needs(site_file, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    platform = load_platform(site_file)
    state = StateDir(platform.site.state_dir).ensure()
    Roster(state.rosters, "demo").save({"ana": Member("ana"), "ben": Member("ben"),
                                        "prof": Member("prof", role="instructor")})
    Roster(state.rosters, "m2-ia-sante").save({"ben": Member("ben")})
    for person in ("ana", "ben", "prof"):
        state.home(person)
        (state.homes / person / "travail.ipynb").write_text("{}")
    space = CourseSpace.of(platform, "demo").ensure()
    with Gradebook(f"sqlite:///{space.gradebook_dir / 'gradebook.db'}", "demo") as gb:
        gb.add_assignment("devoir", duedate=dt.datetime(2026, 1, 1))
        gb.add_student("ana")
    submitted = space.gradebook_dir / "submitted" / "ana" / "devoir"
    submitted.mkdir(parents=True)
    (submitted / "devoir.ipynb").write_text('{"cells": []}')

    manifest = archive(platform, "demo", tmp_path / "archives")
    assert manifest["homes_deleted"] == ["ana"]
    assert manifest["homes_kept_other_course"] == ["ben"]
    assert not (state.homes / "ana").exists()
    assert (state.homes / "ben" / "travail.ipynb").exists()
    assert (state.homes / "prof" / "travail.ipynb").exists()  # instructors are never touched
    with tarfile.open(manifest["files"]["coursework"]) as tar:
        names = tar.getnames()
    assert "gradebook/gradebook.db" in names
    assert "gradebook/submitted/ana/devoir/devoir.ipynb" in names
    folder = Path(manifest["files"]["coursework"]).parent
    assert folder.stat().st_mode & 0o777 == 0o700
    assert json.loads((folder / "manifest.json").read_text())["students"] == ["ana", "ben"]
    assert sorted(p.name for p in folder.glob("*.csv")) == [
        "demo-moodle.csv", "demo-pseudonymised.csv", "demo-questions.csv", "demo-totals.csv"]
    assert [e["action"] for e in AuditLog(state).entries(action="course")] == ["course.archived"]
