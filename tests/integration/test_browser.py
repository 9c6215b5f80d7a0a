"""What students, instructors and the admin see, driven in a real browser (Chromium).

One hub for the module, with a small course written here ("initiation": one notebook with a
model to train, a function to write and a written answer graded by hand, a dataset and a page
for students), a GPU course on a one-GPU node and a course whose image goes missing. The tests
run in file order, as the people would: the student submits, the instructor grades and releases
feedback, the student reads it; then the admin's page and the failure paths.

The GPU is the one boundary no machine here has: the engine's runtime named `nvidia` is plain
runc and NVML is a fake inventory (the same two stand-ins as test_gpu.py, and only those).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil

import docker
import pytest
import yaml

from classhub.coursework import lifecycle
from classhub.gpu.nvml import FAKE_NVML_ENV
from tests.conftest import REPO, write_site
from tests.integration.browser import (
    accessibility_violations,
    launch,
    log_in,
    new_person,
    shot,
)
from tests.integration.conftest import start_hub, stop_hub

playwright_api = pytest.importorskip("playwright.sync_api")

COURSE, ASSIGNMENT, NOTEBOOK_NAME = "initiation", "devoir-1", "premier-modele"
MODEL_CELL = """\
# Un petit modèle : régression logistique sur les tumeurs du sein (données de scikit-learn)
import matplotlib.pyplot as plt
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
modele = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_train, y_train)
print(f"exactitude sur le test : {modele.score(X_test, y_test):.2f}")
plt.hist(modele.predict_proba(X_test)[:, 1], bins=20)
plt.xlabel("probabilité prédite de tumeur bénigne")
plt.show()"""


def _cell(kind, source, **nbgrader):
    cell = {"id": nbgrader.get("grade_id", "modele"), "cell_type": kind, "source": source,
            "metadata": {"nbgrader": {"schema_version": 3, **nbgrader}} if nbgrader else {}}
    if kind == "code":
        cell.update(outputs=[], execution_count=None)
    return cell


NOTEBOOK = {
    "nbformat": 4, "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}},
    "cells": [
        _cell("markdown", "# Un premier modèle\nExécutez la cellule du modèle, puis écrivez "
              "`sensibilite(vp, fn)`.", grade=False, solution=False, locked=True,
              grade_id="intro"),
        _cell("code", MODEL_CELL),
        _cell("code", "def sensibilite(vp, fn):\n    ### BEGIN SOLUTION\n"
                      "    return vp / (vp + fn)\n    ### END SOLUTION",
              grade=False, solution=True, locked=False, grade_id="sensibilite"),
        _cell("code", "assert sensibilite(8, 2) == 0.8", grade=True, solution=False,
              locked=True, points=2, grade_id="test_sensibilite"),
        _cell("markdown", "Que dit la sensibilité d'un test de dépistage ?\n\n"
              "### BEGIN SOLUTION\nLa part des malades qu'il détecte.\n### END SOLUTION",
              grade=True, solution=True, locked=False, points=2, grade_id="interpretation"),
    ],
}
ANSWER = "def sensibilite(vp, fn):\n    return vp / (vp + fn)\n"
WRITTEN = "La proportion de malades que le test détecte."
MANUAL_SCORE = "1.5"

FAKE_GPU = {"gpus": [{"uuid": "GPU-eeee-0001", "name": "NVIDIA H200", "memory_mib": 143771,
                      "used_mib": 0}], "busy_pids": []}


def _write_courses(folder):
    write_site(folder)  # the repository's courses first, the ones of this module beside them
    course = folder / "courses" / COURSE
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    (course / "source" / ASSIGNMENT / f"{NOTEBOOK_NAME}.ipynb").write_text(json.dumps(NOTEBOOK))
    (course / "data").mkdir()
    (course / "data" / "patients.csv").write_text("id,age,stade\n1,64,II\n2,57,I\n")
    (course / "LISEZMOI.md").write_text(
        "# Initiation\n\nVos devoirs arrivent dans ce dossier (onglet *Assignments*). "
        "Les données du cours sont dans `datasets/`.\n")
    (course / "course.yml").write_text(yaml.safe_dump({
        "title": "Initiation à l'apprentissage automatique",
        "description": "Un premier modèle sur des données de santé, pas à pas.",
        "image": "lab", "resources": {"mem_limit": "2G"},
        "datasets": [{"name": "patients", "path": "data", "classification": "open"}],
        "assignments": [{"id": ASSIGNMENT, "title": "Devoir 1 : un premier modèle",
                         "due": "2030-01-01T00:00:00+01:00", "cell_timeout_s": 120}],
    }, allow_unicode=True))
    for course_id, spec in {
        "vision": {"title": "Vision par ordinateur", "description": "Un CNN sur GPU.",
                   "image": "lab", "gpu": {"policy": "exclusive"}},
        "atelier": {"title": "Atelier du vendredi", "description": "Un cours dont l'image "
                    "a disparu du poste.", "image": "atelier"},
    }.items():
        (folder / "courses" / course_id).mkdir()
        (folder / "courses" / course_id / "course.yml").write_text(
            yaml.safe_dump({**spec, "resources": {"mem_limit": "1G"}}, allow_unicode=True))
    # The "atelier" course's image: a recipe of its own, present when the hub starts, then
    # removed (as a careless `docker image prune -a` would) before anyone starts it.
    shutil.copytree(REPO / "images", folder / "images")
    (folder / "images" / "atelier").mkdir()
    (folder / "images" / "atelier" / "Dockerfile").write_text("FROM classhub/lab:latest\n")
    docker.from_env().images.get("classhub/lab:latest").tag("classhub/atelier", "latest")


@pytest.fixture(scope="module")
def room(built_images, tmp_path_factory):
    runtimes = docker.from_env().info()["Runtimes"]
    if runtimes.get("nvidia", {}).get("path") != "runc":
        pytest.skip("needs the stand-in nvidia runtime (tests/gpu/standin-runtime; make test "
                    "runs it)")
    folder = tmp_path_factory.mktemp("browser")
    _write_courses(folder)
    nvml = folder / "fake-nvml.json"
    nvml.write_text(json.dumps(FAKE_GPU))
    before = os.environ.get(FAKE_NVML_ENV)
    os.environ[FAKE_NVML_ENV] = str(nvml)
    hub = start_hub(folder, idle_timeout_s=0,
                    site={"images_dir": str(folder / "images"),
                          "gpu": {"node": "salle-ia", "idle_release_after_s": 0}})
    docker.from_env().images.remove("classhub/atelier:latest")  # the tag only: lab stays
    passwords = {"alice": hub.enrol(COURSE, "alice"), "claire": hub.enrol(COURSE, "claire",
                                                                            role="instructor")}
    hub.enrol("vision", "alice")
    passwords["bruno"] = hub.enrol("vision", "bruno")
    hub.enrol("atelier", "bruno")
    passwords["admin"] = (hub.state.secrets / "initial-password-admin").read_text().strip()
    lifecycle.release(hub.platform, COURSE, ASSIGNMENT)
    with playwright_api.sync_playwright() as playwright:
        browser = launch(playwright)
        yield hub, browser, passwords
        browser.close()
    stop_hub(hub)
    if before is None:
        os.environ.pop(FAKE_NVML_ENV, None)
    else:
        os.environ[FAKE_NVML_ENV] = before


def test_the_login_page_is_french_accessible_and_refuses_a_wrong_password(room):
    hub, browser, passwords = room
    context = new_person(browser, hub.url)
    page = context.new_page()
    with kept_on_failure(page, "login"):
        page.goto("/hub/login")
        assert page.locator("html").get_attribute("lang") == "fr"
        assert page.locator("#login_submit").get_attribute("value") == "Se connecter"
        assert accessibility_violations(page) == []
        shot(page, "connexion")
        log_in(page, "alice", "pas-le-bon-mot-de-passe")
        error = page.locator(".login_error")
        error.wait_for()
        assert "mot de passe" in error.inner_text().lower()
        assert "/hub/login" in page.url
        shot(page, "connexion-refusee")
    context.close()


def test_a_student_starts_their_course_works_in_french_jupyterlab_and_submits(room):
    hub, browser, passwords = room
    context = new_person(browser, hub.url)
    page = context.new_page()
    with kept_on_failure(page, "student"):
        log_in(page, "alice", passwords["alice"])
        page.wait_for_url("**/hub/spawn**")
        # Only her courses, each with its description and the GPU it comes with.
        choices = page.locator("input[name=course]")
        assert sorted(choices.evaluate_all("els => els.map(e => e.value)")) == \
            [COURSE, "vision"]
        form = page.locator("form").first.inner_text()
        assert "Un premier modèle sur des données de santé" in form
        assert "GPU : sans GPU" in form and "GPU : un GPU entier pour vous" in form
        assert accessibility_violations(page) == []
        shot(page, "etudiant-choix-du-cours")
        page.check(f"#course-{COURSE}")
        page.locator("form input[type=submit], form button[type=submit]").first.click()
        page.wait_for_url("**/user/alice/lab**", timeout=240_000)
        lab_ready(page)
        # JupyterLab speaks French; the course folder shows the page and the datasets.
        assert page.get_by_role("menuitem", name="Fichier").is_visible()
        open_folder(page, COURSE)
        listing = file_names(page)
        assert {"LISEZMOI.md", "datasets"} <= set(listing), listing
        open_folder(page, "datasets")
        open_folder(page, "patients")
        assert "patients.csv" in file_names(page)
        # memory and CPU of the server in the status bar; no GPU dashboard without a GPU
        page.locator("#jp-main-statusbar").get_by_text(re.compile("Mém|Mem")).wait_for()
        assert page.get_by_text("GPU Dashboards").count() == 0
        shot(page, "etudiant-jupyterlab")
        fetch_and_work(page)
        submit(page)
    context.close()
