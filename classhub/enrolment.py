"""Enrolment: roster changes, the accounts they create, and the hub groups derived from them.

Hub groups follow the rosters, one way: `nbgrader-<course>` holds a course's students and
`formgrade-<course>` its instructors (the names nbgrader's JupyterHub integration expects).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field

from classhub.accounts import AccountStore
from classhub.config.model import Platform
from classhub.errors import ClasshubError
from classhub.hub.spawner import GRADER_ACCOUNT, INSTRUCTOR_GROUP, STUDENT_GROUP
from classhub.hubapi import HubAPI
from classhub.roster import Changes, Member, Roster, merge, read_export
from classhub.state import StateDir, write_private


def from_identity_provider(platform: Platform, course: str) -> bool:
    """Whether the course's enrolment comes from the identity provider's groups."""
    return platform.site.auth.external and platform.courses[course].identity_groups.any()


def wanted_groups(platform: Platform, state: StateDir) -> dict[str, list[str]]:
    """Hub groups of the roster-enrolled courses (provider-enrolled ones are set at login)."""
    groups = {}
    for course in sorted(platform.courses):
        if from_identity_provider(platform, course):
            continue
        roster = Roster(state.rosters, course)
        groups[STUDENT_GROUP.format(course=course)] = roster.students()
        groups[INSTRUCTOR_GROUP.format(course=course)] = roster.instructors()
    return groups


@dataclass
class Enrolment:
    platform: Platform
    state: StateDir = field(init=False)

    def __post_init__(self):
        self.state = StateDir(self.platform.site.state_dir).ensure()

    def _roster(self, course: str) -> Roster:
        if course not in self.platform.courses:
            known = ", ".join(sorted(self.platform.courses)) or "none"
            raise ClasshubError(f"no course {course!r}", f"courses of this site: {known}")
        return Roster(self.state.rosters, course)

    def _handout(self, course: str, passwords: dict[str, str]) -> str | None:
        """Write the new people's initial passwords to a file for the instructor (0600)."""
        if not passwords:
            return None
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = self.state.handouts / f"{course}-{stamp}.csv"
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["username", "initial_password", "login_url"])
        for username in sorted(passwords):
            writer.writerow([username, passwords[username], self.platform.site.hub.bind_url])
        write_private(path, out.getvalue())
        return str(path)

    def _apply(self, course: str, members: dict[str, Member]) -> tuple[str | None, bool]:
        roster = self._roster(course)
        roster.save(members)
        accounts = AccountStore(self.state.accounts_db)
        passwords = {}
        for username in members if not self.platform.site.auth.external else []:
            password = accounts.create(username)
            if password is not None:
                passwords[username] = password
        handout = self._handout(course, passwords)
        return handout, self.sync_hub()

    def _writable(self, course: str) -> None:
        self._roster(course)
        if from_identity_provider(self.platform, course):
            groups = self.platform.courses[course].identity_groups
            raise ClasshubError(
                f"enrolment in {course} comes from the identity provider's groups "
                f"(students: {', '.join(groups.students) or '-'}; instructors: "
                f"{', '.join(groups.instructors) or '-'})",
                "change membership there; it applies at each person's next login")

    def add(self, course: str, member: Member):
        self._writable(course)
        with self.state.lock():
            members = self._roster(course).members()
            members[member.username] = member
            return self._apply(course, members)

    def remove(self, course: str, username: str):
        self._writable(course)
        with self.state.lock():
            members = self._roster(course).members()
            if username not in members:
                raise ClasshubError(f"{username} is not in the roster of {course}")
            del members[username]
            result = self._apply(course, members)
        self._stop_if_running_course(username, course)
        return result

    def import_file(self, course: str, path, remove_missing: bool = False):
        self._writable(course)
        incoming = read_export(path)
        with self.state.lock():
            members, changes = merge(self._roster(course).members(), incoming, remove_missing)
            handout, synced = self._apply(course, members)
        for username in changes.removed:
            self._stop_if_running_course(username, course)
        return changes, handout, synced

    def sync_hub(self) -> bool:
        """Make the running hub's users and groups match the rosters; False if it is down."""
        api = HubAPI.for_platform(self.platform)
        if not api.reachable():
            return False
        groups = wanted_groups(self.platform, self.state)
        graders = {GRADER_ACCOUNT.format(course=course) for course in self.platform.courses}
        for username in sorted({u for members in groups.values() for u in members} | graders):
            api.ensure_user(username)
        existing = api.groups()
        for name, members in groups.items():
            api.set_group(name, members, existing)
        return True

    def _stop_if_running_course(self, username: str, course: str) -> None:
        """A student removed from a course loses it at once, including a server running it."""
        api = HubAPI.for_platform(self.platform)
        if not api.reachable():
            return
        user = api.user(username)
        server = (user or {}).get("servers", {}).get("")
        if server and server.get("user_options", {}).get("course") == course:
            api.stop_server(username)


__all__ = ["Changes", "Enrolment", "Member", "wanted_groups"]
