"""The audit trail: any edited, removed, reordered or truncated line is detected."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from classhub.audit import AuditLog
from classhub.state import StateDir


@pytest.fixture
def log(tmp_path):
    log = AuditLog(StateDir(tmp_path / "state").ensure())
    for i in range(5):
        log.record(f"user{i}", "login", course="demo" if i % 2 else "", target="", ip="10.0.0.1")
    return log


def _lines(log):
    return log.path.read_text().splitlines()


def _write(log, lines):
    log.path.write_text("\n".join(lines) + "\n")


def test_an_untouched_log_verifies(log):
    count, problems = log.verify()
    assert count == 5 and problems == []
    assert log.path.stat().st_mode & 0o777 == 0o600
    assert log.anchor.stat().st_mode & 0o777 == 0o600


def test_an_edited_line_is_detected(log):
    lines = _lines(log)
    entry = json.loads(lines[2])
    entry["actor"] = "someone-else"
    lines[2] = json.dumps(entry)
    _write(log, lines)
    _, problems = log.verify()
    assert [p.line for p in problems] == [3]
    assert "edited" in str(problems[0])


def test_a_recomputed_chain_needs_the_key(log):
    """Editing a line and rehashing it with a plain SHA-256 (no key) is still caught."""
    import hashlib

    lines = _lines(log)
    entry = json.loads(lines[-1])
    entry["action"] = "nothing"
    body = {k: v for k, v in entry.items() if k != "hash"}
    entry["hash"] = hashlib.sha256(entry["prev"].encode() + json.dumps(body).encode()).hexdigest()
    lines[-1] = json.dumps(entry)
    _write(log, lines)
    _, problems = log.verify()
    assert problems  # its hash is not the keyed one, and no longer the anchored one


def test_a_removed_line_is_detected(log):
    lines = _lines(log)
    del lines[1]
    _write(log, lines)
    _, problems = log.verify()
    assert any(p.line == 2 and "removed" in p.what for p in problems)


def test_reordered_lines_are_detected(log):
    lines = _lines(log)
    lines[1], lines[2] = lines[2], lines[1]
    _write(log, lines)
    _, problems = log.verify()
    assert {p.line for p in problems} >= {2, 3}


def test_a_cut_tail_is_detected_by_the_anchor(log):
    _write(log, _lines(log)[:-2])
    count, problems = log.verify()
    assert count == 3
    assert len(problems) == 1 and "cut" in str(problems[0])


def test_appending_after_verification_keeps_the_chain(log):
    log.record("prof", "grade.autograde", course="demo", target="ana", score=3.0)
    assert log.verify() == (6, [])


def test_filters(log):
    assert [e["actor"] for e in log.entries(course="demo")] == ["user1", "user3"]
    assert [e["actor"] for e in log.entries(user="user4")] == ["user4"]
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    assert list(log.entries(since=future)) == []
    assert len(list(log.entries(action="log"))) == 5


def test_commands_are_recorded_and_verify_exits_nonzero_on_damage(site_file):
    run = [sys.executable, "-m", "classhub.cli", "--site", str(site_file)]
    assert subprocess.run([*run, "roster", "add", "demo", "ana"], capture_output=True,
                          text=True).returncode == 0
    shown = subprocess.run([*run, "audit", "show", "--json", "--action", "cli.roster"],
                           capture_output=True, text=True)
    entries = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [(e["action"], e["course"], e["details"]["username"]) for e in entries] == [
        ("cli.roster.add", "demo", "ana")]
    assert subprocess.run([*run, "audit", "verify"], capture_output=True).returncode == 0
    import yaml

    state = StateDir(Path(yaml.safe_load(site_file.read_text())["state_dir"]))
    path = AuditLog(state).path
    path.write_text(path.read_text().replace('"ana"', '"bob"'))
    damaged = subprocess.run([*run, "audit", "verify"], capture_output=True, text=True)
    assert damaged.returncode == 1 and "edited" in damaged.stdout
