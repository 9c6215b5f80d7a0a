"""A full disk during a submission: the student is told, and nothing already submitted is lost.

The student's inbound folder is a 300 KiB tmpfs mounted by the test before her server starts.
A first, small submission fits; a second one carrying 1 MB does not: nbgrader's submit fails
with classhub's message, no partial copy is left, and collect still finds the first one whole.
"""

from __future__ import annotations

import subprocess

from classhub.coursework import lifecycle
from classhub.coursework.layout import CourseSpace
from tests.integration.conftest import start_hub, stop_hub
from tests.integration.test_coursework import _write_mini_course

KERNEL = """
import os, subprocess
def sh(*args):
    run = subprocess.run(args, capture_output=True, text=True)
    return run.returncode, (run.stdout + run.stderr)[-600:]
result = {"fetch": sh("nbgrader", "fetch_assignment", "devoir-1", "--course", "mini"),
          "first": sh("nbgrader", "submit", "devoir-1", "--course", "mini")}
open(os.path.expanduser("~/mini/devoir-1/donnees.bin"), "wb").write(os.urandom(1_000_000))
result["second"] = sh("nbgrader", "submit", "devoir-1", "--course", "mini")
"""


def test_a_full_disk_refuses_the_submission_and_keeps_the_earlier_one(built_images, tmp_path):
    _write_mini_course(tmp_path)
    hub = start_hub(tmp_path, idle_timeout_s=0)
    inbound = CourseSpace.of(hub.platform, "mini").ensure().inbound("alice")
    inbound.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k,uid=1000,gid=1000,mode=0700",
                    "tmpfs", str(inbound)], check=True)
    try:
        hub.enrol("mini", "alice")
        lifecycle.release(hub.platform, "mini", "devoir-1")
        assert hub.spawn("alice", {"course": "mini"}).status_code in (201, 202)
        hub.wait_ready("alice")
        steps = hub.run_for_result("alice", hub.user_token("alice"), KERNEL).result
        assert steps["fetch"][0] == 0 and steps["first"][0] == 0, steps
        assert steps["second"][0] == 1 and "Rendu NON enregistré" in steps["second"][1], steps
        entries = sorted(p.name for p in inbound.iterdir())
        assert len(entries) == 1 and not entries[0].startswith("."), entries
        assert (inbound / entries[0] / "timestamp.txt").exists()
        assert not (inbound / entries[0] / "donnees.bin").exists()
        collected = lifecycle.collect(hub.platform, "mini", "devoir-1")
        assert collected.rejected == []
        submitted = CourseSpace.of(hub.platform, "mini").gradebook_dir / "submitted" / "alice"
        assert (submitted / "devoir-1" / "devoir.ipynb").exists()
    finally:
        stop_hub(hub)
        subprocess.run(["umount", str(inbound)], check=False)
