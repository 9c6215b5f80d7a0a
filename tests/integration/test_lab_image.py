"""The built lab image holds exactly its lock: consistent, at the hub's JupyterHub, and without
the IRI format checker the locks leave out (see LEFT_OUT in the Makefile)."""

from __future__ import annotations

import re
import subprocess
import sys

import docker

from classhub.config.model import image_tag
from tests.conftest import REPO

# Importing what every server and grading container imports must not build the rfc3987
# grammars (1.5 s of CPU per process on a 2-core workstation).
STARTUP_IMPORTS = ("import sys, jupyter_server.serverapp, nbgrader.api, nbformat.validator; "
                   "print(sorted(m for m in sys.modules if m.split('.')[0] in "
                   "('rfc3987_syntax', 'lark')))")


def _run(command: list[str]) -> str:
    """What `command` printed on its standard output in the lab image (a warning on its
    standard error is not mistaken for a result)."""
    output = docker.from_env().containers.run(image_tag("lab"), command, remove=True,
                                              network_mode="none", stdout=True, stderr=False)
    return output.decode()


def _pins(text: str) -> dict[str, str]:
    """name -> version, names normalised as pip compares them (PEP 503)."""
    pins = (line.split("==") for line in text.splitlines() if "==" in line)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins}


def test_the_lab_image_is_its_lock_and_consistent(built_images):
    frozen = _pins(_run(["pip", "freeze", "--all"]))
    lock = _pins((REPO / "images" / "lab" / "requirements.lock").read_text())
    assert {name: frozen.get(name) for name in lock} == lock
    assert "rfc3987-syntax" not in frozen and "lark" not in frozen
    assert "No broken requirements found" in _run(["pip", "check"])


def test_jupyter_processes_start_without_building_iri_grammars(built_images):
    assert _run(["python", "-c", STARTUP_IMPORTS]).strip() == "[]"


def test_the_hub_venv_imports_without_building_iri_grammars():
    hub_imports = STARTUP_IMPORTS.replace("jupyter_server.serverapp", "jupyterhub.app")
    result = subprocess.run([sys.executable, "-c", hub_imports], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
