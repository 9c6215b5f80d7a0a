"""Rosters, imports, accounts and course membership: the data behind enrolment."""

import stat

import pytest

from classhub.accounts import AccountStore, generate_password
from classhub.errors import ClasshubError
from classhub.hub.spawner import enrolled_courses
from classhub.roster import Member, Roster, merge, read_export


def test_roster_round_trips_and_is_private(tmp_path):
    roster = Roster(tmp_path, "m2")
    roster.save({"b": Member("b", "Bea", "b@u.fr"), "a": Member("a", role="instructor")})
    assert roster.members()["b"] == Member("b", "Bea", "b@u.fr", "student")
    assert roster.students() == ["b"] and roster.instructors() == ["a"]
    assert stat.S_IMODE(roster.path.stat().st_mode) == 0o600


def test_university_export_import_is_idempotent_and_reports_changes(tmp_path):
    export = tmp_path / "export.csv"
    export.write_text("id;name;email\nALICE;Alice Martin;alice@u.fr\nbob;Bob Petit;bob@u.fr\n")
    members, changes = merge({}, read_export(export), remove_missing=False)
    assert changes.added == ["alice", "bob"]
    again, changes = merge(members, read_export(export), remove_missing=False)
    assert again == members
    assert changes.unchanged == ["alice", "bob"] and not changes.added and not changes.updated


def test_import_updates_names_and_keeps_absent_members_unless_asked(tmp_path):
    export = tmp_path / "export.csv"
    export.write_text("id,name,email\nalice,Alice M.,alice@u.fr\n")
    current = {"alice": Member("alice", "Alice", "alice@u.fr"), "zoe": Member("zoe")}
    kept, changes = merge(current, read_export(export), remove_missing=False)
    assert changes.updated == ["alice"] and changes.absent == ["zoe"] and "zoe" in kept
    assert "kept" in changes.summary()
    pruned, changes = merge(current, read_export(export), remove_missing=True)
    assert changes.removed == ["zoe"] and "zoe" not in pruned


@pytest.mark.parametrize(
    "text, message",
    [
        ("login,name,email\nx,y,z\n", "missing column(s) id"),
        ("id,name,email\nbad user,B,b@u.fr\n", "line 2: id 'bad user' is not a valid username"),
        ("id,name,email\nann,A,a@u\nann,A,a@u\n", "line 3: ann appears twice"),
        ("id,name,email,role\nann,A,a@u,dean\n", "role 'dean' is not student or instructor"),
    ],
)
def test_bad_exports_are_refused_with_the_line(tmp_path, text, message):
    export = tmp_path / "export.csv"
    export.write_text(text)
    with pytest.raises(ClasshubError) as caught:
        read_export(export)
    assert message in str(caught.value)


def test_accounts_store_hashes_and_verifies(tmp_path):
    store = AccountStore(tmp_path / "accounts.sqlite")
    password = store.create("alice")
    assert password and store.create("alice") is None  # an existing password is never replaced
    assert store.verify("alice", password)
    assert not store.verify("alice", password + "x")
    assert not store.verify("nobody", password)
    raw = (tmp_path / "accounts.sqlite").read_bytes()
    assert password.encode() not in raw
    assert stat.S_IMODE((tmp_path / "accounts.sqlite").stat().st_mode) == 0o600


def test_generated_passwords_are_long_and_unambiguous():
    passwords = {generate_password() for _ in range(200)}
    assert len(passwords) == 200
    assert all(len(p) == 14 and not set(p) & set("0O1lI") for p in passwords)


def test_enrolled_courses_come_from_student_and_instructor_groups():
    groups = {"nbgrader-m2", "formgrade-du", "nbgrader-other-site"}
    assert enrolled_courses(groups, ["du", "m2", "demo"]) == ["du", "m2"]
    assert enrolled_courses(set(), ["m2"]) == []
