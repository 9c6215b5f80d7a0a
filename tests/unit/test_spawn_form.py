"""The start page's form: what a student, an instructor and a grader account are offered."""

from __future__ import annotations

import docker.errors
import yaml

from classhub.config import load_platform
from classhub.hub import spawn_form
from classhub.hub.spawner import GRADER_ACCOUNT, GRADER_SERVICE, engine_refusal


def _profiles(site_file):
    courses = site_file.parent / "courses"
    spec = yaml.safe_load((courses / "demo" / "course.yml").read_text())
    spec["description"] = "Données <patients> & modèles"
    spec["gpu"] = {"policy": "shared", "students_per_gpu": 4}
    (courses / "demo" / "course.yml").write_text(yaml.safe_dump(spec))
    return load_platform(site_file).profiles()


def test_a_student_sees_only_their_courses_with_description_and_gpu(site_file):
    profiles = _profiles(site_file)
    form = spawn_form.course_choice(["demo"], profiles)
    assert 'value="demo" checked' in form and form.count('name="course"') == 1
    assert "Données &lt;patients&gt; &amp; modèles" in form  # escaped, never markup
    assert "GPU : une part d&#x27;un GPU partagé (4 étudiants par GPU)" in form
    assert spawn_form.course_choice([], profiles) == spawn_form.NOT_ENROLLED


def test_an_instructor_gets_each_taught_courses_formgrader_and_grades(site_file):
    profiles = _profiles(site_file)
    links = spawn_form.teaching(["du-ia-sante"], profiles, "/", GRADER_ACCOUNT, GRADER_SERVICE)
    assert 'href="/hub/spawn/grader-du-ia-sante" target="_blank"' in links
    assert 'href="/services/classhub-grader/notes/du-ia-sante/"' in links
    assert "demo" not in links
    assert spawn_form.teaching([], profiles, "/", GRADER_ACCOUNT, GRADER_SERVICE) == ""


def test_a_grader_account_is_told_what_its_server_is(site_file):
    form = spawn_form.grader_form(_profiles(site_file)["demo"])
    assert "formgrader" in form and "Découverte de la plateforme" in form
    assert "<input" not in form  # no choice to make: the account grades one course
    # ...so its form sends nothing, and the spawn's options stay empty (not an empty course)
    assert spawn_form.options_from_form({}) == {}
    assert spawn_form.options_from_form({"course": [""]}) == {}
    assert spawn_form.options_from_form({"course": ["demo"], "image": ["x"]}) == {"course": "demo"}


def test_the_students_page_of_a_course_is_in_its_profile_when_it_has_one(site_file):
    (site_file.parent / "courses" / "m2-ia-sante" / "LISEZMOI.md").unlink()
    profiles = _profiles(site_file)
    assert profiles["demo"].students_readme == str(
        site_file.parent / "courses" / "demo" / "LISEZMOI.md")
    assert profiles["m2-ia-sante"].students_readme is None


def test_an_engine_refusal_reads_as_a_french_sentence_not_a_500(site_file):
    profile = _profiles(site_file)["demo"]
    missing = engine_refusal(docker.errors.ImageNotFound("No such image"), profile)
    assert missing.status_code == 503
    assert missing.jupyterhub_message.startswith(
        "L'image du cours « Découverte de la plateforme » (classhub/lab:latest) n'est pas")
    other = engine_refusal(docker.errors.APIError("boom", explanation="device busy"), profile)
    assert "(device busy)" in other.jupyterhub_message and "Réessayez" in other.jupyterhub_message
