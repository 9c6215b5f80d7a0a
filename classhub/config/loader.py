"""Reads site.yaml and the course folders into the validated model, or fails naming file and key."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from classhub.config.model import COURSE_ID, Course, Platform, Site
from classhub.errors import ConfigError

SITE_ENV = "CLASSHUB_SITE"


def default_site_file() -> Path:
    """`$CLASSHUB_SITE`, else `/etc/classhub/site.yaml` when it exists, else `./site.yaml`."""
    if os.environ.get(SITE_ENV):
        return Path(os.environ[SITE_ENV])
    system = Path("/etc/classhub/site.yaml")
    return system if system.is_file() else Path("site.yaml")


def _read_yaml(path: Path) -> tuple[dict | None, list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [f"{path}: file not found"]
    except OSError as exc:
        return None, [f"{path}: cannot read: {exc.strerror}"]
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return None, [f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None, [f"{path}: the top level must be a mapping of keys, not {type(data).__name__}"]
    return data, []


def _problems(path: Path, error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(f"{path}: {where}: {message}")
    return problems


def _validate(model: type[BaseModel], path: Path, data: dict, context: dict | None = None):
    try:
        return model.model_validate(data, context=context), []
    except ValidationError as exc:
        return None, _problems(path, exc)


def _resolve(base: Path, value: Path) -> Path:
    return value if value.is_absolute() else (base / value).resolve()


def load_platform(site_file: Path | str | None = None) -> Platform:
    """Load and validate everything, or raise ConfigError listing every problem found."""
    site_file = Path(site_file) if site_file else default_site_file()
    data, problems = _read_yaml(site_file)
    if data is None:
        raise ConfigError(problems)
    site, problems = _validate(Site, site_file, data)
    if site is None:
        raise ConfigError(problems)

    base = site_file.resolve().parent
    images = site.images
    if images.wheelhouse is not None:
        images = images.model_copy(update={"wheelhouse": _resolve(base, images.wheelhouse)})
    site = site.model_copy(
        update={
            "state_dir": _resolve(base, site.state_dir),
            "courses_dir": _resolve(base, site.courses_dir),
            "images_dir": _resolve(base, site.images_dir),
            "images": images,
        }
    )
    if images.wheelhouse is not None and not images.wheelhouse.is_dir():
        problems.append(f"{site_file}: images.wheelhouse: no folder {images.wheelhouse}")
    if not site.courses_dir.is_dir():
        problems.append(f"{site_file}: courses_dir: no folder {site.courses_dir}")
        raise ConfigError(problems)

    courses: dict[str, Course] = {}
    context = {"images_dir": site.images_dir}
    for folder in sorted(p for p in site.courses_dir.iterdir() if p.is_dir()):
        course_file = folder / "course.yml"
        if not course_file.is_file():
            continue
        if not COURSE_ID.match(folder.name):
            problems.append(
                f"{folder}: a course folder name must be lower-case letters, digits and '-'"
            )
            continue
        course_data, read_problems = _read_yaml(course_file)
        problems += read_problems
        if course_data is not None:
            course, course_problems = _validate(
                Course, course_file, course_data, {**context, "course_dir": folder})
            problems += course_problems
            if course is not None:
                courses[folder.name] = course
    if problems:
        raise ConfigError(problems)
    return Platform(site=site, site_file=site_file.resolve(), courses=courses)
