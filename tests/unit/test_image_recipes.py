"""Image recipes: pins that must agree, and rebuilds only when a recipe changes."""

import re

from classhub.config import load_platform
from classhub.images import base_recipe, course_recipe

from tests.conftest import REPO


def _pin(path, name):
    match = re.search(rf"^{name}==(\S+)$", path.read_text(), re.M | re.I)
    assert match, f"{name} is not pinned in {path}"
    return match.group(1)


def test_image_jupyterhub_matches_the_hub():
    hub = _pin(REPO / "requirements" / "hub.lock", "jupyterhub")
    assert _pin(REPO / "images" / "lab" / "requirements.lock", "jupyterhub") == hub


def test_jupyterlab_is_pinned_to_the_french_language_pack_series():
    lab = _pin(REPO / "images" / "lab" / "requirements.lock", "jupyterlab")
    pack = _pin(REPO / "images" / "lab" / "requirements.lock", "jupyterlab-language-pack-fr-FR")
    assert lab.split(".")[:2] == pack.split(".")[:2]


def test_recipe_digest_changes_with_the_recipe_and_the_torch_variant(site_file, tmp_path):
    import shutil

    import yaml

    images = tmp_path / "images"
    shutil.copytree(REPO / "images", images)
    data = yaml.safe_load(site_file.read_text())
    data["images_dir"] = str(images)
    site_file.write_text(yaml.safe_dump(data))
    platform = load_platform(site_file)
    base = base_recipe(platform)
    lab = course_recipe(platform, "lab", base)
    assert lab.digest == course_recipe(load_platform(site_file), "lab", base_recipe(platform)).digest

    (images / "lab" / "Dockerfile").write_text((images / "lab" / "Dockerfile").read_text() + "\n")
    assert course_recipe(platform, "lab", base).digest != lab.digest
    assert base_recipe(platform).digest == base.digest  # the base does not depend on the lab

    data["images"]["torch"] = "cuda"
    site_file.write_text(yaml.safe_dump(data))
    cuda = load_platform(site_file)
    assert course_recipe(cuda, "lab", base).digest != course_recipe(platform, "lab", base).digest
