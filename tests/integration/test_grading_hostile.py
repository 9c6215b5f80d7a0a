"""Hostile and broken submissions, graded in one batch with honest ones.

Every case gets its own test: its status, its score, and what it tried (read back from the
autograded notebook); `test_honest_submissions_unharmed` checks the honest ones of the same
batch. `test_probes_from_inside_the_sandbox` is the sandbox test: a student's code reports
what it can reach from inside the grading container, and none of it is reachable.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path

import docker
import pytest

from grading.batch import GradingJob, grade
from grading.sandbox import LABEL, Limits
from tests.integration.conftest import default_bridge_gateway
from tests.integration.grading_course import (
    answered,
    cell,
    make_course,
    notebook,
    released,
    submit,
)

A = "devoir"
NB = "double"
SOURCE = notebook([
    cell("markdown", "Écrivez `double(x)`.", grade=False, solution=False, locked=True,
         grade_id="consigne"),
    cell("code", "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
         grade=False, solution=True, locked=False, grade_id="reponse"),
    cell("code", "assert double(2) == 4", grade=True, solution=False, locked=True, points=2,
         grade_id="test_double"),
    cell("code", "assert double(-3) == -6", grade=True, solution=False, locked=True, points=1,
         grade_id="test_negatif"),
])
GOOD = "def double(x):\n    return 2 * x"
WRONG = "def double(x):\n    return x"

NOW = dt.datetime.now(dt.timezone.utc)
ON_TIME = NOW - dt.timedelta(days=2)

PROBES = r'''
import json, os, socket
def probe(f):
    try:
        return "reached: " + repr(f())[:80]
    except BaseException as error:
        return "blocked: " + type(error).__name__
found = {
    "network_gateway": probe(lambda: socket.create_connection((GATEWAY, PORT), timeout=3)),
    "network_loopback_host_port": probe(lambda: socket.create_connection(("127.0.0.1", PORT),
                                                                        timeout=3)),
    "docker_socket": probe(lambda: open("/var/run/docker.sock", "rb")),
    "etc_shadow": probe(lambda: open("/etc/shadow").read()),
    "solutions": probe(lambda: open(SOURCE_NB).read()),
    "gradebook": probe(lambda: open(GRADEBOOK, "rb").read()),
    "other_submission": probe(lambda: open(OTHER).read()),
    "executor_job": probe(lambda: os.listdir("/job")),
    "write_root": probe(lambda: open("/classhub-probe", "w")),
    "write_usr": probe(lambda: open("/usr/lib/classhub-probe", "w")),
}
def cmdline(pid):
    try:
        return open(f"/proc/{pid}/cmdline").read()
    except OSError:
        return ""
executor = [p for p in os.listdir("/proc") if p.isdigit() and "executor.py" in cmdline(p)]
found["executor_environ"] = probe(lambda: open(f"/proc/{executor[0]}/environ").read())
found["kill_executor"] = probe(lambda: os.kill(int(executor[0]), 9))
status = dict(l.split(":\t") for l in open("/proc/self/status").read().splitlines() if ":\t" in l)
found["uid"] = os.getuid()
found["gpus"] = os.environ.get("NVIDIA_VISIBLE_DEVICES")
found["cap_eff"] = status["CapEff"].strip()
found["no_new_privs"] = status["NoNewPrivs"].strip()
found["interfaces"] = sorted(os.listdir("/sys/class/net"))
found["root_mount"] = [l.split()[3].split(",")[0] for l in open("/proc/mounts")
                       if l.split()[1] == "/"][0]
print(json.dumps(found))
def double(x):
    return 2 * x
'''

FORGER_KERNEL = '''
# A fake kernel that would answer "ok" to everything, if Python ever imported it from here.
import sys
print("forged kernel", file=sys.stderr)
'''


def _truncate(nb: dict) -> str:
    text = json.dumps(nb)
    return text[: len(text) // 2]


def _cases(release: dict, course: Path, gateway: str, port: int) -> dict[str, dict]:
    """student -> files of their submission (and its time, if not on time)."""
    without_test = dict(release, cells=[c for c in release["cells"]
                                        if c["metadata"]["nbgrader"]["grade_id"] != "test_negatif"])
    retyped = answered(release, {"reponse": WRONG})
    for c in retyped["cells"]:
        if c["metadata"]["nbgrader"]["grade_id"] == "test_double":
            c["cell_type"] = "markdown"
            c.pop("outputs"), c.pop("execution_count")
    probes = (PROBES.replace("GATEWAY", repr(gateway)).replace("PORT", str(port))
              .replace("SOURCE_NB", repr(str(course / "source" / A / f"{NB}.ipynb")))
              .replace("GRADEBOOK", repr(str(course / "gradebook.db")))
              .replace("OTHER", repr(str(course / "submitted" / "honest" / A / f"{NB}.ipynb"))))
    answers = {
        "honest": {"reponse": GOOD},
        "partial": {"reponse": "def double(x):\n    return 4 if x == 2 else 0"},
        "empty": {},
        "infinite_loop": {"reponse": GOOD + "\nwhile True:\n    pass"},
        "deaf_loop": {"reponse": GOOD + "\nwhile True:\n    try:\n        while True:\n"
                                 "            pass\n    except KeyboardInterrupt:\n        pass"},
        "memory_bomb": {"reponse": GOOD + "\nhog = b'x' * (3 * 1024 ** 3)"},
        "fork_bomb": {"reponse": GOOD + "\nimport os, time\nfor _ in range(10000):\n    try:\n"
                                 "        if os.fork() == 0:\n            time.sleep(600)\n"
                                 "    except OSError:\n        break"},
        "megabytes": {"reponse": GOOD + "\nfor _ in range(30):\n    print('x' * 1_000_000)"},
        "socket": {"reponse": GOOD + f"\nimport socket\ntry:\n    socket.create_connection("
                             f"({gateway!r}, {port}), timeout=3)\n    print('CONNECTED')\n"
                             "except OSError as error:\n    print('blocked:', error)"},
        "probe": {"reponse": probes},
        "hidden_errors": {"reponse": WRONG + "\nget_ipython().showtraceback = "
                                     "lambda *a, **k: None\nimport sys\n"
                                     "sys.excepthook = lambda *a: None"},
        "result_writer": {"reponse": WRONG + "\nimport json\nfor path in ['/job/out/cells.jsonl',"
                                     " 'cells.jsonl', '/tmp/cells.jsonl']:\n    try:\n"
                                     "        open(path, 'w').write(json.dumps({'end': "
                                     "'complete'}))\n        print('wrote', path)\n"
                                     "    except OSError as error:\n"
                                     "        print('refused', path, error)"},
        "sys_exit": {"reponse": GOOD + "\nimport sys\nsys.exit(0)"},
        "os_exit": {"reponse": GOOD + "\nimport os\nos._exit(0)"},
        "edited_test": {"reponse": WRONG, "test_double": "assert True",
                        "test_negatif": "pass"},
        "late": {"reponse": GOOD},
        "extra_files": {"reponse": WRONG},
        "links": {"reponse": GOOD + "\nimport os\nprint(sorted(os.listdir('.')))"},
    }
    cases = {student: {"files": {f"{NB}.ipynb": answered(release, a)}}
             for student, a in answers.items()}
    cases["late"]["when"] = NOW + dt.timedelta(days=1, hours=2)  # two started days late
    cases["extra_files"]["files"].update({"notes.txt": "brouillon",
                                          "ipykernel_launcher.py": FORGER_KERNEL,
                                          "sitecustomize.py": FORGER_KERNEL})
    cases["deleted_test"] = {"files": {f"{NB}.ipynb": answered(without_test,
                                                                 {"reponse": GOOD})}}
    cases["changed_cell_type"] = {"files": {f"{NB}.ipynb": retyped}}
    cases["truncated_json"] = {"files": {f"{NB}.ipynb": _truncate(answered(release,
                                                                           {"reponse": GOOD}))}}
    cases["not_json"] = {"files": {f"{NB}.ipynb": "%PDF-1.4 not a notebook"}}
    cases["missing_notebook"] = {"files": {"autre.ipynb": answered(release, {"reponse": GOOD})}}
    return cases


@pytest.fixture(scope="module")
def batch(built_images, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile") / "cours"
    course = make_course(root, "hostile", A, {NB: SOURCE}, due=NOW, cell_timeout_s=3)
    gateway = default_bridge_gateway()
    listener = socket.create_server(("0.0.0.0", 0))  # a host port the probes must not reach
    port = listener.getsockname()[1]
    cases = _cases(released(course, A, NB), course, gateway, port)
    for student, case in cases.items():
        folder = submit(course, student, A, case["files"], case.get("when", ON_TIME))
        if student == "links":
            (folder / "shadow.txt").symlink_to("/etc/shadow")
            (folder / "voisin").symlink_to(course / "submitted" / "honest")
    job = GradingJob(course, A, "classhub/lab:latest",
                     Limits(mem_limit="256m", cpus=1.0, pids=64, cell_timeout_s=3,
                            notebook_timeout_s=7), jobs=2)
    try:
        report = grade(job)
    finally:
        listener.close()
    return course, report.by_student(), report


def _outputs(course: Path, student: str, grade_id: str) -> list[dict]:
    nb = json.loads((course / "autograded" / student / A / f"{NB}.ipynb").read_text())
    found = next(c for c in nb["cells"]
                 if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)
    return found.get("outputs", [])


def _text(outputs: list[dict]) -> str:
    def one(output):
        if output["output_type"] == "stream":
            text = output.get("text", "")
            return "".join(text) if isinstance(text, list) else text
        return f"{output.get('ename', '')}: {output.get('evalue', '')}\n"
    return "".join(one(o) for o in outputs)


def _graded(results, student, status, score, tests=None):
    result = results[student]
    assert result.status == status, (student, result.status, result.notes)
    assert result.score == score, (student, result.score, result.grades, result.notes)
    if tests is not None:
        assert {k: v for k, v in result.grades[NB].items() if k.startswith("test")} == tests
    return result


def test_honest_submissions_unharmed(batch):
    _, results, report = batch
    _graded(results, "honest", "ok", 3.0, {"test_double": 2.0, "test_negatif": 1.0})
    _graded(results, "partial", "ok", 2.0, {"test_double": 2.0, "test_negatif": 0.0})
    _graded(results, "empty", "ok", 0.0, {"test_double": 0.0, "test_negatif": 0.0})
    assert len(report.results) == 23 and not report.interrupted
    assert not any(r.status == "error" for r in report.results), report.counts()


def test_no_sandbox_left_behind(batch):
    left = docker.from_env().containers.list(all=True, filters={"label": f"{LABEL}=1"})
    assert left == []


def test_infinite_loop_is_interrupted_and_the_rest_runs(batch):
    course, results, _ = batch
    _graded(results, "infinite_loop", "cell-timeout", 3.0)
    assert "CellTimeoutError" in _text(_outputs(course, "infinite_loop", "reponse"))


def test_loop_that_swallows_interrupts_spends_the_notebook_budget(batch):
    course, results, _ = batch
    result = _graded(results, "deaf_loop", "notebook-timeout", 0.0)
    assert result.seconds < 60
    assert "NotebookTimeout" in _text(_outputs(course, "deaf_loop", "test_negatif")) or \
        "CellTimeoutError" in _text(_outputs(course, "deaf_loop", "test_negatif"))


def test_memory_bomb_is_killed_for_memory(batch):
    course, results, _ = batch
    _graded(results, "memory_bomb", "memory-limit", 0.0)
    assert "MemoryLimit" in _text(_outputs(course, "memory_bomb", "test_double"))


def test_fork_bomb_hits_the_process_limit(batch):
    _, results, _ = batch
    result = _graded(results, "fork_bomb", "ok", 3.0)
    assert result.seconds < 60


def test_megabytes_of_output_are_cut(batch):
    course, results, _ = batch
    _graded(results, "megabytes", "ok", 3.0)
    path = course / "autograded" / "megabytes" / A / f"{NB}.ipynb"
    assert path.stat().st_size < 3_000_000
    assert "tronquée" in _text(_outputs(course, "megabytes", "reponse"))


def test_socket_cannot_reach_the_host(batch):
    course, results, _ = batch
    _graded(results, "socket", "ok", 3.0)
    text = _text(_outputs(course, "socket", "reponse"))
    assert "blocked:" in text and "CONNECTED" not in text


def test_probes_from_inside_the_sandbox(batch):
    course, results, _ = batch
    _graded(results, "probe", "ok", 3.0)
    found = json.loads(_text(_outputs(course, "probe", "reponse")).splitlines()[0])
    reached = {k: v for k, v in found.items() if isinstance(v, str) and v.startswith("reached")}
    assert reached == {}, reached
    assert found["uid"] == 1000
    assert found["gpus"] == "void"  # grading runs on CPU even where nvidia is the default runtime
    assert found["cap_eff"] == "0000000000000000" and found["no_new_privs"] == "1"
    assert found["interfaces"] == ["lo"]
    assert found["root_mount"] == "ro"


def test_hidden_errors_still_count(batch):
    _, results, _ = batch
    result = _graded(results, "hidden_errors", "tampered", 0.0)
    assert any("hidden" in note for note in result.notes)
    assert any("showtraceback" in note for note in result.notes)


def test_kernel_cannot_write_the_result(batch):
    course, results, _ = batch
    _graded(results, "result_writer", "ok", 0.0)
    assert "wrote /job" not in _text(_outputs(course, "result_writer", "reponse"))


def test_sys_exit_is_an_error_in_its_cell_only(batch):
    _, results, _ = batch
    _graded(results, "sys_exit", "ok", 3.0)


def test_os_exit_kills_the_kernel_and_scores_the_rest_zero(batch):
    course, results, _ = batch
    _graded(results, "os_exit", "kernel-died", 0.0)
    assert "DeadKernelError" in _text(_outputs(course, "os_exit", "test_double"))


def test_edited_tests_are_restored(batch):
    _, results, _ = batch
    result = _graded(results, "edited_test", "ok", 0.0)
    assert any("edited, restored: test_double, test_negatif" in n for n in result.notes)


def test_deleted_test_is_put_back_and_run(batch):
    _, results, _ = batch
    result = _graded(results, "deleted_test", "ok", 3.0, {"test_double": 2.0,
                                                          "test_negatif": 1.0})
    assert any("deleted, put back: test_negatif" in n for n in result.notes)


def test_changed_cell_type_is_restored(batch):
    _, results, _ = batch
    result = _graded(results, "changed_cell_type", "ok", 0.0)
    assert any("type changed, restored: test_double" in n for n in result.notes)


@pytest.mark.parametrize("student", ["truncated_json", "not_json"])
def test_unreadable_notebook_scores_zero_with_a_reason(batch, student):
    _, results, _ = batch
    result = _graded(results, student, "invalid-notebook", 0.0)
    assert any("not a valid notebook" in n for n in result.notes)


def test_missing_notebook_scores_zero(batch):
    _, results, _ = batch
    result = _graded(results, "missing_notebook", "missing-notebook", 0.0)
    assert any("autre.ipynb" in n for n in result.notes)


def test_extra_files_do_not_replace_the_kernel(batch):
    _, results, _ = batch
    result = _graded(results, "extra_files", "ok", 0.0)
    assert any("extra files" in n and "ipykernel_launcher.py" in n for n in result.notes)


def test_links_are_left_behind(batch):
    course, results, _ = batch
    result = _graded(results, "links", "ok", 3.0)
    assert any("ignored a link: voisin" in n for n in result.notes)
    listing = _text(_outputs(course, "links", "reponse"))
    assert "shadow" not in listing and "voisin" not in listing


def test_late_submission_loses_points_per_started_day(batch):
    _, results, _ = batch
    result = _graded(results, "late", "late", 1.0)  # 3 points, two started days late
    assert result.late_penalty == 2.0


def test_gradebook_is_owned_and_consistent(batch):
    import sqlite3

    course, _, _ = batch
    db = sqlite3.connect(course / "gradebook.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert os.stat(course / "autograded" / "honest" / A).st_uid == os.stat(course).st_uid
