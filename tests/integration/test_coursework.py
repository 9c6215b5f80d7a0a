"""An assignment's whole life through real student servers, and attacks on the exchange.

A small course written here ("mini", one notebook) keeps this fast; the real courses' notebooks
are checked in test_course_content.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import time

import docker
import pytest
import requests
import yaml

from classhub.coursework import lifecycle
from classhub.coursework.layout import CourseSpace
from classhub.engine import student_containers
from tests.integration.conftest import parallel, start_hub, stop_hub
from tests.integration.journeys import (
    fetch_feedback_through_server,
    grade_by_hand_in_the_formgrader,
    submit_through_server,
)
from tests.integration.journeys import nbgrader_cell as _cell

NOTEBOOK = {
    "nbformat": 4, "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}},
    "cells": [
        _cell("markdown", "# Devoir 1\nÉcrivez `carre(x)`.", grade=False, solution=False,
              locked=True, grade_id="intro"),
        _cell("code", "def carre(x):\n    ### BEGIN SOLUTION\n    return x * x\n"
                      "    ### END SOLUTION", grade=False, solution=True, locked=False,
              grade_id="carre"),
        _cell("code", "assert carre(3) == 9", grade=True, solution=False, locked=True,
              points=2, grade_id="test_carre_3"),
        _cell("code", "assert carre(-2) == 4", grade=True, solution=False, locked=True,
              points=1, grade_id="test_carre_moins_2"),
        _cell("markdown", "### BEGIN SOLUTION\nUn carré est positif.\n### END SOLUTION",
              grade=True, solution=True, locked=False, points=2, grade_id="explication"),
    ],
}

ANSWERS = {
    "ana": {"carre": "def carre(x):\n    return x * x"},       # correct: 3/3 autograded
    "ben": {"carre": "def carre(x):\n    return x * abs(x)"},  # wrong for negatives: 2/3
    "cyril": {},                                               # the untouched release: 0/3
}

def _write_mini_course(folder):
    course = folder / "courses" / "mini"
    (course / "source" / "devoir-1").mkdir(parents=True)
    (course / "source" / "devoir-1" / "devoir.ipynb").write_text(json.dumps(NOTEBOOK))
    (course / "data").mkdir()
    (course / "data" / "patients.csv").write_text("id,age\n1,64\n2,57\n")
    due = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=7)).isoformat()
    (course / "course.yml").write_text(yaml.safe_dump({
        "title": "Mini cours", "image": "lab", "resources": {"mem_limit": "1G"},
        "late_penalty": {"policy": "per-day", "points_per_day": 1},
        "datasets": [{"name": "essai", "path": "data", "classification": "open"}],
        "assignments": [{"id": "devoir-1", "title": "Devoir 1 : carrés", "due": due,
                         "cell_timeout_s": 60}],
    }))


@pytest.fixture(scope="module")
def course_hub(built_images, tmp_path_factory):
    folder = tmp_path_factory.mktemp("coursework")
    from tests.conftest import write_site

    write_site(folder)  # lays out the courses first, then the mini course beside them
    _write_mini_course(folder)
    running = start_hub(folder, idle_timeout_s=0)
    yield running
    stop_hub(running)


@pytest.fixture(scope="module")
def submitted(course_hub):
    hub = course_hub
    hub.enrol("mini", "prof", role="instructor")
    for student in ANSWERS:
        hub.enrol("mini", student)
    lifecycle.release(hub.platform, "mini", "devoir-1")
    started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    parallel(lambda s: hub.spawn(s, {"course": "mini"}), list(ANSWERS))
    parallel(hub.wait_ready, list(ANSWERS))
    tokens = {s: hub.user_token(s) for s in ANSWERS}
    parallel(lambda s: submit_through_server(hub, s, tokens[s], "mini", "devoir-1", "devoir",
                                             ANSWERS[s]), list(ANSWERS))
    return {"tokens": tokens, "started": started}


def _csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_whole_lifecycle_scores_each_student_as_expected(course_hub, submitted, tmp_path):
    hub = course_hub
    collected = lifecycle.collect(hub.platform, "mini", "devoir-1")
    assert collected.rejected == []
    space = CourseSpace(hub.state, "mini")
    for student in ANSWERS:
        stamp = (space.gradebook_dir / "submitted" / student / "devoir-1" / "timestamp.txt")
        when = dt.datetime.strptime(stamp.read_text(), "%Y-%m-%d %H:%M:%S.%f UTC")
        assert when >= submitted["started"] - dt.timedelta(seconds=1)

    lifecycle.autograde(hub.platform, "mini", "devoir-1")
    grade_by_hand_in_the_formgrader(hub, "prof", "mini", "devoir-1", "devoir", "explication",
                                    {"ana": 2, "ben": 1}, list(ANSWERS))
    lifecycle.feedback(hub.platform, "mini", "devoir-1")
    files = lifecycle.export(hub.platform, "mini", tmp_path)

    questions = _csv(files["questions"])
    auto = {(r["username"], r["question"]): float(r["score"]) for r in questions
            if r["question"].startswith("test_")}
    assert auto == {
        ("ana", "test_carre_3"): 2.0, ("ana", "test_carre_moins_2"): 1.0,
        ("ben", "test_carre_3"): 2.0, ("ben", "test_carre_moins_2"): 0.0,
        ("cyril", "test_carre_3"): 0.0, ("cyril", "test_carre_moins_2"): 0.0,
    }
    manual = {r["username"]: r["score"] for r in questions if r["question"] == "explication"}
    assert manual == {"ana": "2.0", "ben": "1.0", "cyril": "0.0"}  # unchanged answer: 0
    totals = {r["username"]: float(r["score"]) for r in _csv(files["totals"])}
    assert totals == {"ana": 5.0, "ben": 3.0, "cyril": 0.0}
    moodle = _csv(files["moodle"])
    assert moodle == [
        {"username": "ana", "Devoir 1 : carrés": "5.00"},
        {"username": "ben", "Devoir 1 : carrés": "3.00"},
        {"username": "cyril", "Devoir 1 : carrés": "0.00"},
    ]
    # The student fetches their feedback in their own server.
    feedback = fetch_feedback_through_server(hub, "ben", submitted["tokens"]["ben"], "mini",
                                             "devoir-1")
    assert [path.rsplit("/", 1)[1] for path in feedback] == ["devoir.html"]


ATTACKS = r"""
import os, subprocess, glob
root = "/srv/nbgrader/exchange"
result = {"courses": sorted(os.listdir(root)),
          "inbound": sorted(os.listdir(f"{root}/mini/inbound"))}
# read or overwrite another student's submission: there is no path to it
result["other"] = (os.path.exists(f"{root}/mini/inbound/ana")
                   or bool(glob.glob("/srv/**/ana*", recursive=True)))
try:
    open(f"{root}/mini/outbound/devoir-1/devoir.ipynb", "a").write("x")
    result["outbound"] = "writable"
except OSError as e:
    result["outbound"] = type(e).__name__
# submit as someone else, with --student and with a forged JUPYTERHUB_USER
env = dict(os.environ, JUPYTERHUB_USER="ana")
run = subprocess.run(["nbgrader", "submit", "devoir-1", "--course", "mini", "--student", "ana"],
                     env=env, capture_output=True, text=True)
result["forged"] = run.returncode
# back-date everything in that submission
for d in glob.glob(f"{root}/mini/inbound/ben+devoir-1+*"):
    open(f"{d}/timestamp.txt", "w").write("2020-01-01 00:00:00.000000 UTC")
    subprocess.run(["touch", "-h", "-d", "2020-01-01", *glob.glob(f"{d}/*"), d],
                   capture_output=True)
# a second submission with a symlink to someone else's file planted in it
bad = f"{root}/mini/inbound/ben+devoir-1+2020-01-01 00:00:00.000000 UTC+evil"
os.makedirs(bad)
os.symlink("/etc/passwd", f"{bad}/devoir.ipynb")
# datasets: readable, never writable
result["dataset"] = open("/srv/datasets/essai/patients.csv").read().count("\n")
try:
    open("/srv/datasets/essai/patients.csv", "a").write("3,99\n")
    result["dataset_write"] = "ok"
except OSError as e:
    result["dataset_write"] = type(e).__name__
# fetch an assignment of a course one is not enrolled in
run = subprocess.run(["nbgrader", "fetch_assignment", "devoir-1", "--course", "autre"],
                     capture_output=True, text=True)
result["other_course"] = run.returncode
"""


def test_attacks_from_a_student_container_are_refused(course_hub, submitted):
    hub = course_hub
    run = hub.run_for_result("ben", submitted["tokens"]["ben"], ATTACKS)
    found = run.result
    assert found["courses"] == ["mini"], run.output
    assert all(name.startswith("ben+") for name in found["inbound"]), run.output
    assert found["other"] is False
    assert found["outbound"] in ("OSError", "PermissionError"), run.output
    # A forged identity is refused by the hub (JUPYTERHUB_USER) or lands in ben's own folder.
    assert found["other_course"] != 0
    assert found["dataset"] == 3
    assert found["dataset_write"] in ("OSError", "PermissionError"), run.output
    engine = docker.from_env()
    (container,) = [c for c in student_containers(engine, hub.platform.site)
                    if c.labels["org.classhub.user"] == "ben"]
    writable = {m["Destination"]: m["RW"] for m in container.attrs["Mounts"]}
    assert writable == {
        "/home/jovyan": True,
        "/srv/nbgrader/exchange/mini/inbound": True,
        "/srv/nbgrader/exchange/mini/outbound": False,
        "/srv/nbgrader/exchange/mini/feedback": False,
        "/srv/datasets/essai": False,
    }

    before = time.time()
    collected = lifecycle.collect(hub.platform, "mini", "devoir-1")
    assert ("ben", "symbolic link devoir.ipynb") in collected.rejected
    space = CourseSpace(hub.state, "mini")
    ana = space.gradebook_dir / "submitted" / "ana" / "devoir-1" / "devoir.ipynb"
    assert "abs(x)" not in ana.read_text(), "ben's forged submission reached ana"
    ben_stamp = (space.gradebook_dir / "submitted" / "ben" / "devoir-1" / "timestamp.txt")
    when = dt.datetime.strptime(ben_stamp.read_text(), "%Y-%m-%d %H:%M:%S.%f UTC")
    assert when.replace(tzinfo=dt.timezone.utc).timestamp() >= before - 120, \
        "the back-dated submission kept its forged time"
    assert "/etc/passwd" not in (space.gradebook_dir / "submitted" / "ben" / "devoir-1" /
                                 "devoir.ipynb").read_text()


def test_student_servers_have_no_formgrader(course_hub, submitted):
    reply = requests.get(f"{course_hub.url}/user/ana/formgrader",
                         headers={"Authorization": f"token {submitted['tokens']['ana']}"},
                         timeout=30)
    assert reply.status_code == 404
