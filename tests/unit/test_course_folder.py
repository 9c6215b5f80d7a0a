"""The lab image's course folder links (images/lab/classhub_course_folder.py), on real files."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location(
    "classhub_course_folder", REPO / "images" / "lab" / "classhub_course_folder.py")
course_folder = importlib.util.module_from_spec(spec)
spec.loader.exec_module(course_folder)


def _mounts(tmp_path, readme=True, datasets=True):
    srv = tmp_path / "srv"
    (srv / "datasets").mkdir(parents=True)
    if datasets:
        (srv / "datasets" / "patients").mkdir()
    if readme:
        (srv / "LISEZMOI.md").write_text("# Le cours\n")
    home = tmp_path / "home"
    home.mkdir()
    return home, {"LISEZMOI.md": srv / "LISEZMOI.md", "datasets": srv / "datasets"}


def test_the_course_page_and_datasets_are_linked_into_the_course_folder(tmp_path):
    home, links = _mounts(tmp_path)
    made = course_folder.lay_out(home, "m2", links)
    assert sorted(p.name for p in made) == ["LISEZMOI.md", "datasets"]
    assert (home / "m2" / "LISEZMOI.md").read_text() == "# Le cours\n"
    assert (home / "m2" / "datasets" / "patients").is_dir()
    assert course_folder.lay_out(home, "m2", links) == []  # the next start changes nothing


def test_a_students_own_file_of_that_name_is_left_alone(tmp_path):
    home, links = _mounts(tmp_path)
    (home / "m2").mkdir()
    (home / "m2" / "LISEZMOI.md").write_text("mes notes")
    made = course_folder.lay_out(home, "m2", links)
    assert [p.name for p in made] == ["datasets"]
    assert (home / "m2" / "LISEZMOI.md").read_text() == "mes notes"


def test_another_courses_links_go_and_nothing_points_at_what_is_not_mounted(tmp_path):
    home, links = _mounts(tmp_path, datasets=False)
    (home / "du").mkdir()
    (home / "du" / "LISEZMOI.md").symlink_to(links["LISEZMOI.md"])  # left by du's server
    (home / "du" / "datasets").symlink_to(links["datasets"])
    (home / "du" / "devoir-1").mkdir()
    course_folder.lay_out(home, "m2", links)
    assert sorted(p.name for p in (home / "du").iterdir()) == ["devoir-1"]
    assert sorted(p.name for p in (home / "m2").iterdir()) == ["LISEZMOI.md"]  # no datasets


def test_a_students_own_link_named_datasets_is_theirs_and_stays(tmp_path):
    home, links = _mounts(tmp_path)
    (home / "m2").mkdir()
    (home / "m2" / "datasets").symlink_to(tmp_path)  # made by the student, pointing elsewhere
    made = course_folder.lay_out(home, "m2", links)
    assert [p.name for p in made] == ["LISEZMOI.md"]
    assert (home / "m2" / "datasets").readlink() == tmp_path
