"""Where a course's assignments live on the host, and what each container sees of them.

    <state>/gradebooks/<course>/            nbgrader course directory: source/, release/,
                                            submitted/, autograded/, feedback/, gradebook.db
    <state>/exchange/<course>/outbound/     released assignments
    <state>/exchange/<course>/inbound/<u>/  each student's submissions, only theirs
    <state>/exchange/<course>/feedback/<u>/ each student's feedback, only theirs

Everything is owned by uid 1000, the user of every container; students are kept apart by what
is mounted into their container, not by file permissions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from classhub.state import STUDENT_UID, StateDir

EXCHANGE_IN_CONTAINER = "/srv/nbgrader/exchange"
COURSE_DIR_IN_CONTAINER = "/home/jovyan"
DATASETS_IN_CONTAINER = "/srv/datasets"
# The course's LISEZMOI.md in a student's container; the image links it into ~/<course>/.
STUDENTS_README_IN_CONTAINER = "/srv/course/LISEZMOI.md"


def _owned_dir(path: Path, mode: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    if os.geteuid() == 0:
        os.chown(path, STUDENT_UID, STUDENT_UID)
    return path


@dataclass(frozen=True)
class CourseSpace:
    state: StateDir
    course: str

    @property
    def gradebook_dir(self) -> Path:
        return self.state.root / "gradebooks" / self.course

    @property
    def exchange(self) -> Path:
        return self.state.root / "exchange" / self.course

    @property
    def outbound(self) -> Path:
        return self.exchange / "outbound"

    def inbound(self, username: str) -> Path:
        return self.exchange / "inbound" / username

    def feedback(self, username: str) -> Path:
        return self.exchange / "feedback" / username

    @classmethod
    def of(cls, platform, course: str) -> CourseSpace:
        """The course's space in the platform's state directory."""
        return cls(StateDir(platform.site.state_dir), course)

    def ensure(self) -> CourseSpace:
        for folder in (self.state.root / "gradebooks", self.state.root / "exchange"):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _owned_dir(self.gradebook_dir, 0o700)
        _owned_dir(self.exchange, 0o755)
        _owned_dir(self.outbound, 0o755)
        _owned_dir(self.exchange / "inbound", 0o755)
        _owned_dir(self.exchange / "feedback", 0o755)
        return self

    def student_volumes(self, username: str) -> dict[str, dict]:
        """A student's view: released assignments read-only, their own inbound and feedback."""
        self.ensure()
        root = f"{EXCHANGE_IN_CONTAINER}/{self.course}"
        return {
            str(self.outbound): {"bind": f"{root}/outbound", "mode": "ro"},
            str(_owned_dir(self.inbound(username), 0o700)): {"bind": f"{root}/inbound",
                                                              "mode": "rw"},
            str(_owned_dir(self.feedback(username), 0o700)): {"bind": f"{root}/feedback",
                                                               "mode": "ro"},
        }

    def grader_volumes(self) -> dict[str, dict]:
        """The course's grading side: the gradebook directory and the whole exchange."""
        self.ensure()
        return {
            str(self.gradebook_dir): {"bind": COURSE_DIR_IN_CONTAINER, "mode": "rw"},
            str(self.exchange): {"bind": f"{EXCHANGE_IN_CONTAINER}/{self.course}", "mode": "rw"},
        }
