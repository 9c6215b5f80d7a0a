"""Shared test helpers: a site config written into a temporary folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def write_site(folder: Path, **overrides) -> Path:
    """A site.yaml using the repo's images and a copy of its courses, state inside `folder`."""
    courses = folder / "courses"
    if not courses.exists():
        shutil.copytree(REPO / "courses", courses)
    data = {
        "state_dir": str(folder / "state"),
        "courses_dir": str(courses),
        "images_dir": str(REPO / "images"),
        "images": {"wheelhouse": str(REPO / ".cache" / "wheelhouse")},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def site_file(tmp_path) -> Path:
    (REPO / ".cache" / "wheelhouse").mkdir(parents=True, exist_ok=True)
    return write_site(tmp_path)


def pytest_collection_modifyitems(config, items):
    """Everything under tests/integration drives real parts: mark it so either tier runs alone."""
    for item in items:
        if "tests/integration/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)
