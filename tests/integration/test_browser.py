"""What students, instructors and the admin see, driven in a real browser (Chromium).

One hub for the module, with a small course written here ("initiation": one notebook with a
model to train, a function to write and a written answer graded by hand, a dataset and a page
for students), a GPU course on a one-GPU node and a course whose image goes missing. The tests
run in file order, as the people would: the student submits, the instructor grades and releases
feedback, the student reads it; then the admin's page and the failure paths. Each test starts
from where the one before left the room: run the module whole, not one test of it.

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
from pathlib import Path

import docker
import pytest
import yaml
from playwright.sync_api import expect, sync_playwright

from classhub.coursework import lifecycle
from classhub.gpu.nvml import FAKE_NVML_ENV
from tests.conftest import REPO, write_site
from tests.integration.browser import (
    accessibility_violations,
    kept_on_failure,
    launch,
    log_in,
    new_person,
    shot,
    signed_in,
)
from tests.integration.conftest import start_hub, stop_hub
from tests.integration.journeys import nbgrader_cell as _cell

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


NOTEBOOK = {
    "nbformat": 4, "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}},
    "cells": [
        _cell("markdown", "# Un premier modèle\nExécutez la cellule du modèle, puis écrivez "
              "`sensibilite(vp, fn)`.", grade=False, solution=False, locked=True,
              grade_id="intro"),
        {**_cell("code", MODEL_CELL, grade_id="modele"), "metadata": {}},  # a plain cell
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


# What people do in JupyterLab (4.5, in French) and in nbgrader's assignment list.

def start(page, course: str | None = None) -> None:
    """On the start page: choose the course (when there is a choice) and press Démarrer."""
    if course:
        page.check(f"#course-{course}")
    page.locator("form button[type=submit]").click()


def start_refused(page, course: str, opening: str) -> str:
    """Start `course` and wait for the page's message that begins with `opening`: its text."""
    start(page, course)
    message = page.get_by_text(re.compile(re.escape(opening)))
    message.wait_for()
    return message.inner_text()


def lab_ready(page) -> None:
    page.locator(".jp-DirListing-content").wait_for(timeout=120_000)
    page.locator("#jupyterlab-splash").wait_for(state="detached")


def open_folder(page, name: str) -> None:
    page.locator(".jp-DirListing-item", has_text=name).first.dblclick()
    page.locator(".jp-BreadCrumbs").get_by_text(name).wait_for()


def files_shown(page, names: list[str]) -> None:
    """Wait until the file browser lists each of `names` (fails after the timeout)."""
    for name in names:
        page.locator(".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$")) \
            .wait_for()


def open_assignment_list(page) -> None:
    page.get_by_role("menuitem", name="Nbgrader").click()
    page.locator(".lm-Menu").last.get_by_text("Assignment List").click()
    page.locator("#released_assignments_list").wait_for()


def fetch_and_work(page) -> None:
    """Fetch the assignment, run the model cell (a figure appears), answer, save."""
    open_assignment_list(page)
    page.locator("#released_assignments_list").get_by_role("button", name="Fetch").click()
    fetched = page.locator("#fetched_assignments_list")
    fetched.locator(".assignment-notebooks-link").first.click()
    fetched.get_by_role("link", name=NOTEBOOK_NAME).click()
    cells = page.locator(".jp-Notebook .jp-Cell")
    cells.nth(4).wait_for()
    # the kernel idle first: a cell run before the kernel is connected may be dropped
    page.locator("#jp-main-statusbar").get_by_text(re.compile(r"\| Inactif")).wait_for(
        timeout=120_000)
    cells.nth(1).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    cells.nth(1).locator(".jp-OutputArea-output img").wait_for(timeout=180_000)
    assert "exactitude sur le test" in cells.nth(1).locator(".jp-OutputArea").inner_text()
    cells.nth(2).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(ANSWER)  # typed as is: no auto-indent, no closing brackets
    cells.nth(4).dblclick()
    cells.nth(4).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(WRITTEN)
    page.keyboard.press("Control+Enter")
    page.keyboard.press("Control+s")
    page.locator("#jp-main-statusbar").get_by_text("Enregistrement effectué").wait_for()
    cells.nth(1).locator(".jp-OutputArea-output img").scroll_into_view_if_needed()
    shot(page, "etudiant-modele-et-figure")


def submit(page) -> None:
    page.locator(".lm-TabBar-tab", has_text="Assignments").click()
    page.locator("#fetched_assignments_list").get_by_role("button", name="Submit").click()
    submitted = page.locator("#submitted_assignments_list .list_item")
    submitted.first.wait_for(timeout=60_000)
    assert ASSIGNMENT in submitted.first.inner_text()
    shot(page, "etudiant-devoir-rendu")


@pytest.fixture(scope="module")
def room(built_images, tmp_path_factory):
    runtimes = docker.from_env().info()["Runtimes"]
    if runtimes.get("nvidia", {}).get("path") != "runc":
        pytest.fail("the GPU journeys need the stand-in nvidia runtime: run "
                    "tests/gpu/standin-runtime (`make test` does)")
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
    hub.enrol("atelier", "alice")
    passwords["bruno"] = hub.enrol("vision", "bruno")
    passwords["admin"] = (hub.state.secrets / "initial-password-admin").read_text().strip()
    lifecycle.release(hub.platform, COURSE, ASSIGNMENT)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield hub, browser, passwords
        browser.close()
    stop_hub(hub)
    if before is None:
        os.environ.pop(FAKE_NVML_ENV, None)
    else:
        os.environ[FAKE_NVML_ENV] = before


def test_the_login_page_is_french_accessible_and_refuses_a_wrong_password(room):
    hub, browser, _ = room
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
    with signed_in(browser, hub.url, "alice", passwords["alice"], "student") as page:
        # Only her courses, each with its description and the GPU it comes with.
        choices = page.locator("input[name=course]")
        assert sorted(choices.evaluate_all("els => els.map(e => e.value)")) == \
            ["atelier", COURSE, "vision"]
        form = page.locator("form").first.inner_text()
        assert "Un premier modèle sur des données de santé" in form
        assert "GPU : sans GPU" in form and "GPU : un GPU entier pour vous" in form
        assert accessibility_violations(page) == []
        shot(page, "etudiant-choix-du-cours")
        start(page, COURSE)
        page.wait_for_url("**/user/alice/lab**", timeout=240_000)
        lab_ready(page)
        # JupyterLab speaks French; the course folder shows the page and the datasets.
        assert page.get_by_role("menuitem", name="Fichier").is_visible()
        page.get_by_role("menuitem", name="Paramètres").click()  # English stays one click away
        page.locator(".lm-Menu").last.get_by_text("Langue", exact=True).hover()
        page.locator(".lm-Menu").last.get_by_text("English", exact=False).wait_for()
        page.keyboard.press("Escape")
        page.keyboard.press("Escape")
        open_folder(page, COURSE)
        files_shown(page, ["LISEZMOI.md", "datasets"])
        open_folder(page, "datasets")
        open_folder(page, "patients")
        files_shown(page, ["patients.csv"])
        # memory of the server in the status bar (jupyter-resource-usage), CPU and memory of
        # each kernel in its panel; no GPU dashboard without a GPU
        page.locator("#jp-main-statusbar").get_by_text(re.compile("^Mem: ")).wait_for()
        assert page.locator(".jp-SideBar [data-id=kernelusage-panel-id]").count() == 1
        assert page.locator(".jp-SideBar [data-id=gpu-dashboard]").count() == 0
        # nothing that reaches outside: no extension manager (it would query PyPI)
        assert page.locator(".jp-SideBar [data-id='extensionmanager.main-view']").count() == 0
        shot(page, "etudiant-jupyterlab")
        fetch_and_work(page)
        submit(page)


def test_an_instructor_grades_by_hand_releases_feedback_and_exports_grades(room):
    hub, browser, passwords = room
    # The instructor's two commands first (README): collect, then grade each submission in
    # its own sandbox.
    lifecycle.collect(hub.platform, COURSE, ASSIGNMENT)
    lifecycle.autograde(hub.platform, COURSE, ASSIGNMENT)
    with signed_in(browser, hub.url, "claire", passwords["claire"], "instructor") as page:
        teaching = page.locator("section[aria-labelledby=classhub-teaching]")
        assert "Initiation à l'apprentissage automatique" in teaching.inner_text()
        shot(page, "enseignant-accueil")
        with page.context.expect_page() as opened:
            teaching.get_by_role("link", name=re.compile("ouvrir le correcteur")).click()
        grader = opened.value
        with kept_on_failure(grader, "formgrader"):
            start(grader)  # the course's formgrader server: no choice to make
            # JupyterHub asks once: claire opens a server that is not hers (the course's).
            grader.get_by_role("button", name="Autoriser").click(timeout=240_000)
            grader.wait_for_url("**/formgrader/**")
            row = grader.locator("tr", has_text=ASSIGNMENT)
            expect(row.locator("td").nth(8)).to_have_text("1")  # alice's submission
            shot(grader, "enseignant-formgrader")
            grade_by_hand(grader)
            release_feedback(grader)
        teaching.get_by_role("link", name="télécharger les notes").click()
        page.get_by_role("heading", name=re.compile("Notes du cours")).wait_for()
        assert accessibility_violations(page) == []
        shot(page, "enseignant-notes")
        with page.expect_download() as download:
            page.get_by_role("link", name=f"{COURSE}-totals.csv").click()
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        assert [(r["username"], r["assignment"], float(r["score"]), float(r["max_score"]))
                for r in rows] == [("alice", ASSIGNMENT, 2 + float(MANUAL_SCORE), 4.0)]


def grade_by_hand(grader) -> None:
    """The written answer gets its points and a comment, kept when the page is reloaded."""
    grader.get_by_role("link", name="Manual Grading").click()
    grader.get_by_role("link", name=ASSIGNMENT).click()
    grader.get_by_role("link", name=NOTEBOOK_NAME).click()
    grader.get_by_role("link", name="Submission #1").click()
    grader.wait_for_load_state("networkidle")  # its fields are filled in from the gradebook
    # The formgrader saves a field when it changes and loses the focus.
    for field, value, api in (("#interpretation", MANUAL_SCORE, "/api/grade/"),
                              ("#interpretation-comment",
                               "Oui, parmi les malades : précisez-le.", "/api/comment/")):
        with grader.expect_response(lambda r, api=api: api in r.url
                                    and r.request.method == "PUT") as saved:
            grader.fill(field, value)
            grader.locator(field).press("Tab")
        assert saved.value.ok, saved.value.status
    shot(grader, "enseignant-notation")
    grader.reload()
    # The fields are filled in from the gradebook by the page's script after it loads: wait
    # for the saved value to appear (Playwright retries), rather than read the field at once.
    expect(grader.locator("#interpretation")).to_have_value(MANUAL_SCORE, timeout=60_000)


def release_feedback(grader) -> None:
    grader.goto(f"/user/grader-{COURSE}/formgrader/manage_assignments")
    row = grader.locator("tr", has_text=ASSIGNMENT)
    for column, done in ((9, "Successfully generated feedback"),
                         (10, "Successfully released feedback")):
        row.locator("td").nth(column).locator("a").click()
        dialog = grader.locator(".modal-dialog:visible")
        dialog.get_by_text(done).wait_for(timeout=120_000)
        dialog.get_by_role("button", name="OK").click()
        dialog.wait_for(state="hidden")


def test_the_student_reads_the_feedback_in_jupyterlab(room):
    hub, browser, passwords = room
    with signed_in(browser, hub.url, "alice", passwords["alice"], "feedback",
                   lands="**/user/alice/lab**") as page:  # her server still runs
        lab_ready(page)
        open_assignment_list(page)
        submitted = page.locator("#submitted_assignments_list")
        submitted.get_by_role("button", name="Fetch Feedback").click()
        submitted.get_by_text("(view feedback)").click()
        page.locator(".jp-DirListing-item", has_text=NOTEBOOK_NAME).dblclick()
        feedback = page.frame_locator("iframe").last.locator("body")
        feedback.get_by_text("Score: 3.5 / 4.0").wait_for()
        assert "Oui, parmi les malades" in feedback.inner_text()
        shot(page, "etudiant-retour")


def test_a_gpu_course_gets_its_gpu_and_the_gpu_dashboard(room):
    hub, browser, passwords = room
    with signed_in(browser, hub.url, "bruno", passwords["bruno"], "gpu") as page:
        start(page)  # his one course: vision
        page.wait_for_url("**/user/bruno/lab**", timeout=240_000)
        lab_ready(page)
        dashboard = page.locator(".jp-SideBar [data-id=gpu-dashboard]")
        dashboard.click()
        page.get_by_role("button", name="GPU Utilization").wait_for()
        shot(page, "etudiant-gpu")
    assert hub.api.user("bruno")["servers"][""]["user_options"] == {"course": "vision"}


def test_the_admin_sees_who_runs_what_and_stops_a_server(room):
    hub, browser, passwords = room
    # the admin is enrolled nowhere: the start page says so, the Services menu has the page
    with signed_in(browser, hub.url, "admin", passwords["admin"], "admin") as page:
        page.get_by_role("button", name="Services").click()
        page.get_by_role("link", name="classhub-supervision").click()
        page.get_by_role("heading", name="Supervision du poste").wait_for()
        servers = page.locator("table", has=page.locator("caption", has_text="Serveurs"))
        alice = servers.locator("tr", has_text="alice")
        bruno = servers.locator("tr", has_text="bruno")
        assert COURSE in alice.inner_text() and "aucun" in alice.inner_text()
        assert "vision" in bruno.inner_text() and "GPU-eeee-0001" in bruno.inner_text()
        gpus = page.locator("table", has=page.locator("caption", has_text="GPU"))
        assert "bruno (cours vision, GPU entier)" in gpus.inner_text()
        assert accessibility_violations(page) == []
        shot(page, "admin-supervision")
        alice.get_by_role("button", name=re.compile("Arrêter")).click()
        # the page waits for the hub to stop it (up to 60 s) before it answers
        page.get_by_text("Serveur de alice (cours initiation) arrêté.").wait_for(timeout=90_000)
        assert servers.locator("tr", has_text="alice").count() == 0
    assert not hub.api.user("alice")["servers"]


def test_no_free_gpu_says_who_holds_it_and_what_to_do(room):
    hub, browser, passwords = room
    with signed_in(browser, hub.url, "alice", passwords["alice"], "no-gpu") as page:
        message = start_refused(page, "vision", "Aucun GPU libre pour le cours « vision »")
        assert "Utilisés par : bruno (cours vision, GPU-eeee-0001)" in message
        assert "Que faire : arrêtez un serveur que vous n'utilisez plus" in message
        assert page.locator("input[name=course]").count() == 3  # she may pick another course
        shot(page, "etudiant-pas-de-gpu")
    assert not hub.api.user("alice")["servers"]
    # The admin frees the GPU from the supervision page: bruno's server stops.
    with signed_in(browser, hub.url, "admin", passwords["admin"], "release-gpu") as page:
        page.goto("/services/classhub-supervision/")
        gpus = page.locator("table", has=page.locator("caption", has_text="GPU"))
        gpus.locator("tr", has_text="GPU-eeee-0001").get_by_role(
            "button", name=re.compile("Libérer ce GPU")).click()
        page.get_by_text("GPU GPU-eeee-0001 libéré : serveur(s) arrêté(s) : bruno.").wait_for(
            timeout=90_000)
        shot(page, "admin-gpu-libere")
    assert not hub.api.user("bruno")["servers"]


def test_a_spawn_that_fails_says_why_in_the_page(room):
    hub, browser, passwords = room
    with signed_in(browser, hub.url, "alice", passwords["alice"], "spawn-fails") as page:
        message = start_refused(page, "atelier", "L'image du cours « Atelier du vendredi »")
        assert "Prévenez l'équipe informatique" in message
        assert page.locator("html").get_attribute("lang") == "fr"
        shot(page, "etudiant-echec-demarrage")
    assert not hub.api.user("alice")["servers"]
