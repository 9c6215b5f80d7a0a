"""The site and course model: defaults, merging, and every kind of bad input named precisely."""

from pathlib import Path

import pytest
import yaml

from classhub.cli import main
from classhub.config import load_platform
from classhub.docs import config_reference
from classhub.errors import ConfigError

from tests.conftest import REPO


def _write(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def _problems(site_file) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_platform(site_file)
    return caught.value.problems


def test_example_site_config_is_valid_and_loads_the_repo_courses(tmp_path):
    text = (REPO / "site.example.yaml").read_text()
    (tmp_path / "wheelhouse").mkdir()
    site = _write(tmp_path / "site.yaml", text.replace(
        "courses_dir: courses", f"courses_dir: {REPO / 'courses'}").replace(
        "images_dir: images", f"images_dir: {REPO / 'images'}").replace(
        "wheelhouse: .cache/wheelhouse", "wheelhouse: wheelhouse"))
    platform = load_platform(site)
    assert "demo" in platform.courses
    assert platform.site.hub.bind_url == "http://127.0.0.1:8000"
    assert platform.site.auth.kind == "local"
    assert platform.site.state_dir == Path("/var/lib/classhub")


def test_relative_paths_resolve_against_the_site_file(site_file):
    platform = load_platform(site_file)
    assert platform.site.state_dir == site_file.parent / "state"
    assert platform.site.courses_dir.is_absolute()


def test_course_profile_merges_site_defaults_with_course_overrides(site_file):
    data = yaml.safe_load(site_file.read_text())
    data["resources"] = {"mem_limit": "8g", "pids_limit": 300}
    _write(site_file, data)
    profile = load_platform(site_file).profile("demo")
    assert profile.mem_limit == "2G"  # the course says 2G
    assert profile.pids_limit == 300  # from the site
    assert profile.cpu_limit == 1.0
    assert profile.image == "classhub/lab:latest"
    assert profile.gpu_policy == "none"


def test_unknown_site_key_names_file_and_key_path(site_file):
    data = yaml.safe_load(site_file.read_text())
    data["hub"] = {"bind_url": "http://127.0.0.1:8000", "bind_ulr": "x"}
    _write(site_file, data)
    assert _problems(site_file) == [f"{site_file}: hub.bind_ulr: unknown key"]


def test_wrong_type_names_file_key_and_reason(site_file):
    data = yaml.safe_load(site_file.read_text())
    data["resources"] = {"cpu_limit": "lots"}
    _write(site_file, data)
    (problem,) = _problems(site_file)
    assert problem.startswith(f"{site_file}: resources.cpu_limit: ")
    assert "number" in problem


def test_bad_memory_size_is_rejected(site_file):
    data = yaml.safe_load(site_file.read_text())
    data["resources"] = {"mem_limit": "four gigs"}
    _write(site_file, data)
    (problem,) = _problems(site_file)
    assert "resources.mem_limit" in problem and "512M or 4G" in problem


def test_missing_course_image_is_rejected_naming_the_course_file(site_file):
    course = site_file.parent / "courses" / "demo" / "course.yml"
    data = yaml.safe_load(course.read_text())
    data["image"] = "no-such-image"
    _write(course, data)
    (problem,) = _problems(site_file)
    assert problem.startswith(f"{course}: image: ")
    assert "no-such-image" in problem and "Dockerfile is missing" in problem


def test_unknown_course_key_and_missing_title_are_both_reported(site_file):
    course = site_file.parent / "courses" / "demo" / "course.yml"
    _write(course, {"image": "lab", "gpus": 2})
    problems = _problems(site_file)
    assert f"{course}: title: Field required" in problems
    assert f"{course}: gpus: unknown key" in problems


def test_invalid_yaml_names_the_line(site_file):
    _write(site_file, "hub:\n  bind_url: [unclosed\n")
    (problem,) = _problems(site_file)
    assert problem.startswith(f"{site_file} (line ") and "not valid YAML" in problem


def test_top_level_list_is_rejected(site_file):
    _write(site_file, "- a\n- b\n")
    assert "top level must be a mapping" in _problems(site_file)[0]


def test_missing_site_file_is_reported(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert _problems(missing) == [f"{missing}: file not found"]


def test_shared_password_mode_needs_a_password(site_file):
    data = yaml.safe_load(site_file.read_text())
    data["auth"] = {"kind": "shared-password"}
    _write(site_file, data)
    (problem,) = _problems(site_file)
    assert "auth: " in problem and "shared_password" in problem


def test_course_folder_with_bad_name_is_rejected(site_file):
    bad = site_file.parent / "courses" / "Bad_Name"
    bad.mkdir()
    _write(bad / "course.yml", {"title": "x", "image": "lab"})
    (problem,) = _problems(site_file)
    assert str(bad) in problem and "lower-case" in problem


def test_missing_wheelhouse_folder_is_rejected(site_file):
    data = yaml.safe_load(site_file.read_text())
    data["images"] = {"wheelhouse": "/nonexistent/wheels"}
    _write(site_file, data)
    assert _problems(site_file) == [f"{site_file}: images.wheelhouse: no folder /nonexistent/wheels"]


def test_check_verb_prints_the_errors_and_fails(site_file, capsys):
    data = yaml.safe_load(site_file.read_text())
    data["hub"] = {"bind_url": "not a url"}
    _write(site_file, data)
    assert main(["--site", str(site_file), "check"]) == 2
    err = capsys.readouterr().err
    assert f"{site_file}: hub.bind_url:" in err and "nothing was started" in err


def test_check_verb_accepts_a_valid_site(site_file, capsys):
    assert main(["--site", str(site_file), "check"]) == 0
    assert "valid; courses: demo" in capsys.readouterr().out


def test_config_reference_in_docs_matches_the_model():
    committed = (REPO / "docs" / "config-reference.md").read_text()
    assert committed == config_reference(), "run `make docs` to regenerate the reference"


def _course_file(site_file):
    return site_file.parent / "courses" / "demo" / "course.yml"


def _with_course(site_file, **keys):
    course = _course_file(site_file)
    data = yaml.safe_load(course.read_text())
    data.update(keys)
    _write(course, data)
    return course


def test_assignments_load_with_their_due_dates_and_time_budgets(site_file):
    (site_file.parent / "courses" / "demo" / "source" / "tp1").mkdir(parents=True)
    _with_course(site_file, assignments=[
        {"id": "tp1", "title": "TP 1", "due": "2027-01-15T23:59:00+01:00",
         "cell_timeout_s": 120}])
    (item,) = load_platform(site_file).courses["demo"].assignments
    assert item.due.utcoffset().total_seconds() == 3600
    assert item.cell_timeout_s == 120 and item.notebook_timeout_s == 1800


def test_an_assignment_without_time_zone_or_source_folder_is_rejected(site_file):
    course = _with_course(site_file, assignments=[
        {"id": "tp1", "title": "TP 1", "due": "2027-01-15T23:59:00"}])
    problems = _problems(site_file)
    assert any(p.startswith(f"{course}: assignments.0.id: no folder") for p in problems)
    assert any(p.startswith(f"{course}: assignments.0.due: give the time zone") for p in problems)


def test_an_assignment_listed_twice_is_rejected(site_file):
    (site_file.parent / "courses" / "demo" / "source" / "tp1").mkdir(parents=True)
    item = {"id": "tp1", "title": "TP 1", "due": "2027-01-15T23:59:00+01:00"}
    course = _with_course(site_file, assignments=[item, item])
    assert _problems(site_file) == [f"{course}: assignments: listed twice: tp1"]


def test_late_penalty_points_go_with_the_per_day_policy(site_file):
    course = _with_course(site_file, late_penalty={"policy": "none", "points_per_day": 2})
    (problem,) = _problems(site_file)
    assert problem.startswith(f"{course}: late_penalty: ") and "per-day" in problem


def test_a_dataset_folder_must_exist_and_resolves_against_the_course(site_file):
    course = _with_course(site_file, datasets=[{"name": "essai", "path": "data", "classification": "open"}])
    (problem,) = _problems(site_file)
    assert problem.startswith(f"{course}: datasets.0.path: no folder ")
    (course.parent / "data").mkdir()
    profile = load_platform(site_file).profile("demo")
    assert profile.datasets == {"essai": str(course.parent / "data")}


def test_the_repository_courses_are_valid(tmp_path):
    from tests.conftest import write_site

    platform = load_platform(write_site(tmp_path))
    assert {"m2-ia-sante", "du-ia-sante", "demo"} <= set(platform.courses)
    assert len(platform.courses["m2-ia-sante"].assignments) >= 3
    assert len(platform.courses["du-ia-sante"].assignments) >= 2
