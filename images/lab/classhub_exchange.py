"""classhub's nbgrader exchange: identity from the folder, time from the platform.

Each student container gets, per course, only its own inbound and feedback folders
(bind mounts of `<exchange>/<course>/inbound/<student>` and `.../feedback/<student>`), so
nbgrader's stock submit, list, fetch and fetch_feedback work unchanged on the student side.
The instructor side reads the whole exchange, and these two classes replace nbgrader's:

- PlatformCollect: the student is the folder a submission sits in, never the name it carries
  or `--student`; the submission time is the newest change time (ctime) of anything in it, which
  the kernel sets and no process in a container can set back; `timestamp.txt` written by the
  student is ignored and replaced. Symlinks, devices, FIFOs and sockets reject the submission
  (nbgrader's own copy follows links), and the copy itself never follows a link.
- PlatformReleaseFeedback: writes each student's feedback into their own feedback folder.
- PlatformSubmit: all or nothing. nbgrader's submit is written under a hidden name and renamed
  once complete; if the disk (or quota) fills up on the way, the partial copy is removed and
  the student is told, in French, that this submission was not saved and the earlier ones are
  intact. Collect never looks at hidden names.

Used through nbgrader's ExchangeFactory (`c.ExchangeFactory.collect`, `.release_feedback`,
`.submit`).
"""

from __future__ import annotations

import datetime as dt
import errno
import glob
import os
import re
import shutil
import stat

from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.exchange.default.release_feedback import ExchangeReleaseFeedback
from nbgrader.exchange.default.submit import ExchangeSubmit
from nbgrader.utils import notebook_hash

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_FILES = 500
MAX_BYTES = 200 * 2**20


def unsafe_entry(path: str) -> str | None:
    """Why a submission folder must not be collected, or None when it is plain files and folders."""
    count, size = 0, 0
    for top, dirs, files in os.walk(path, followlinks=False):
        for name in dirs + files:
            full = os.path.join(top, name)
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                return f"symbolic link {os.path.relpath(full, path)}"
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                return f"special file {os.path.relpath(full, path)}"
            count += 1
            size += os.lstat(full).st_size
    if count > MAX_FILES:
        return f"{count} files (at most {MAX_FILES})"
    if size > MAX_BYTES:
        return f"{size} bytes (at most {MAX_BYTES})"
    return None


def platform_time(path: str) -> dt.datetime:
    """The newest change time of the folder and everything in it, in UTC (naive, as nbgrader)."""
    newest = os.lstat(path).st_ctime
    for top, dirs, files in os.walk(path, followlinks=False):
        for name in dirs + files:
            newest = max(newest, os.lstat(os.path.join(top, name)).st_ctime)
    return dt.datetime.fromtimestamp(newest, dt.timezone.utc).replace(tzinfo=None)


def _copy_regular_file(src: str, dst: str, *, follow_symlinks: bool = True) -> str:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
    fd = os.open(src, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"not a regular file: {src}")
        with os.fdopen(fd, "rb", closefd=False) as source, open(dst, "wb") as target:
            shutil.copyfileobj(source, target)
    finally:
        os.close(fd)
    return dst


class PlatformCollect(ExchangeCollect):
    def init_src(self):
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        self.course_path = os.path.join(self.root, self.coursedir.course_id)
        self.inbound_path = os.path.join(self.course_path, "inbound")
        if not os.path.isdir(self.inbound_path):
            self.fail(f"Course not found: {self.inbound_path}")
        assignment = self.coursedir.assignment_id
        wanted = self.coursedir.student_id if self.coursedir.student_id not in ("", "*") else None
        self.rejected = []
        latest = {}
        for student in sorted(os.listdir(self.inbound_path)):
            folder = os.path.join(self.inbound_path, student)
            if not USERNAME.match(student) or os.path.islink(folder) or not os.path.isdir(folder):
                continue
            if wanted and student != wanted:
                continue
            for entry in sorted(os.listdir(folder)):
                if entry.startswith("."):  # a submission still being written (PlatformSubmit)
                    continue
                parts = entry.split("+")
                if len(parts) < 3 or parts[1] != assignment:
                    continue
                path = os.path.join(folder, entry)
                if os.path.islink(path) or not os.path.isdir(path):
                    self._reject(student, entry, "not a folder")
                    continue
                problem = unsafe_entry(path)
                if problem:
                    self._reject(student, entry, problem)
                    continue
                record = {"username": student, "filename": os.path.join(student, entry),
                          "timestamp": platform_time(path)}
                if student not in latest or record["timestamp"] > latest[student]["timestamp"]:
                    latest[student] = record
        self.src_records = [latest[s] for s in sorted(latest)]

    def _reject(self, student: str, entry: str, reason: str) -> None:
        self.rejected.append((student, entry, reason))
        self.log.warning("Rejected submission %s of %s: %s", entry, student, reason)

    def do_copy(self, src, dest):
        shutil.copytree(src, dest, symlinks=True, copy_function=_copy_regular_file,
                        ignore=shutil.ignore_patterns("timestamp.txt", *self.coursedir.ignore))
        problem = unsafe_entry(dest)
        if problem:  # changed between the check and the copy: keep nothing of it
            shutil.rmtree(dest)
            raise RuntimeError(f"submission changed while collected: {problem}")

    def copy_files(self):
        stamps = {r["username"]: r["timestamp"] for r in self.src_records}
        super().copy_files()
        for student, when in stamps.items():
            dest = self.coursedir.format_path(
                self.coursedir.submitted_directory, student, self.coursedir.assignment_id)
            if os.path.isdir(dest):
                with open(os.path.join(dest, "timestamp.txt"), "w") as handle:
                    handle.write(when.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))


class PlatformReleaseFeedback(ExchangeReleaseFeedback):
    def copy_files(self):
        html_files = glob.glob(os.path.join(self.src_path, "*.html"))
        pattern = re.escape(os.path.sep).join([
            self.coursedir.format_path(self.coursedir.feedback_directory, "(?P<student_id>.*)",
                                       self.coursedir.assignment_id, escape=True),
            "(?P<notebook_id>.*).html",
        ])
        for html_file in html_files:
            match = re.match(pattern, html_file)
            if match is None:
                continue
            student, notebook = match.group("student_id"), match.group("notebook_id")
            if not USERNAME.match(student):
                continue
            folder = os.path.dirname(html_file)
            with open(os.path.join(folder, "submission_secret.txt")) as handle:
                secret = handle.read()
            dest_dir = os.path.join(self.outbound_feedback_path, student)
            os.makedirs(dest_dir, exist_ok=True)
            checksum = notebook_hash(secret=secret, notebook_id=notebook)
            tmp = os.path.join(dest_dir, f"{checksum}-tmp.html")
            shutil.copy(html_file, tmp)
            shutil.move(tmp, os.path.join(dest_dir, f"{checksum}.html"))
            self.log.info("Feedback released to %s for %s (%s)", dest_dir, student, notebook)


NO_SPACE = ("Rendu NON enregistré : plus de place sur le disque de la salle. Vos rendus "
            "précédents sont intacts. Prévenez votre enseignant(e), puis réessayez.")


def _out_of_space(error: OSError) -> bool:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(error, shutil.Error) and error.args and isinstance(error.args[0], list):
        # copytree gathers each file's error as text
        marks = (f"[Errno {errno.ENOSPC}]", f"[Errno {errno.EDQUOT}]")
        return any(mark in str(item) for item in error.args[0] for mark in marks)
    return False


class PlatformSubmit(ExchangeSubmit):
    PARTIAL = ".partial-"

    def _partials(self, name: str) -> list[str]:
        cache = name.rsplit("+", 1)[0] if self.add_random_string else name
        return [os.path.join(self.inbound_path, name), os.path.join(self.cache_path, cache)]

    def copy_files(self):
        final = self.assignment_filename
        self.assignment_filename = self.PARTIAL + final
        try:
            super().copy_files()
        except OSError as error:
            for path in self._partials(self.assignment_filename):
                shutil.rmtree(path, ignore_errors=True)
            if _out_of_space(error):
                self.fail(NO_SPACE)
            raise
        finally:
            partial, self.assignment_filename = self.assignment_filename, final
        for source, target in zip(self._partials(partial), self._partials(final), strict=True):
            if os.path.exists(source):
                os.rename(source, target)
