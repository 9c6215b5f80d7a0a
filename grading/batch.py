"""Grade every submission of an assignment in an nbgrader course directory, in parallel.

    <course>/submitted/<student>/<assignment>/   what nbgrader collected (read, never changed)
    <course>/autograded/<student>/<assignment>/  replaced whole, once a submission is graded
    <course>/gradebook.db                        scores, written by nbgrader's code on the host
    <course>/.classhub-grading/                  the grader's own state (0700):
        lock                                     one grading run per course at a time
        graded/<assignment>/<student>.json       written last: this submission is done
        runs/<run>/                              staging copies and sandbox jobs of a run
        reports/<assignment>-<run>.json          what each run did

Host-side work (nbgrader's checks, scoring, gradebook writes) runs one submission at a time
under a lock; only the sandboxes run side by side. A submission counts as graded once its
marker is written, after its gradebook rows and its autograded folder: a crash or Ctrl-C
leaves the others as they were, and the next run grades what has no marker (or a marker for
other files: a resubmission). `force` regrades everything.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import filelock
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config, PyFileConfigLoader

from classhub.errors import ClasshubError
from classhub.state import chown_tree
from grading.converter import NotebookRun, SandboxedAutograde, SubmissionContext
from grading.intake import digest, take_in
from grading.progress import Progress
from grading.sandbox import LABEL, Limits, Sandbox, SandboxUnavailable, remove_sandboxes

# Worst first: a submission's status is the worst of what happened to it.
STATUSES = ["error", "memory-limit", "notebook-timeout", "kernel-died", "execution-failed",
            "tampered", "invalid-notebook", "missing-notebook", "cell-timeout", "late", "ok"]


@dataclass
class GradingJob:
    """What to grade, where and how; built from the site's course or from command-line flags."""

    course_dir: Path
    assignment: str
    image: str
    limits: Limits
    jobs: int = 1
    force: bool = False
    students: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, dict] = field(default_factory=dict)


@dataclass
class SubmissionResult:
    student: str
    status: str
    score: float = 0.0  # after the late penalty
    raw_score: float = 0.0
    max_score: float = 0.0
    late_penalty: float = 0.0
    seconds_late: float = 0.0
    needs_manual_grade: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    notebooks: list[dict] = field(default_factory=list)
    grades: dict[str, dict[str, float | None]] = field(default_factory=dict)


@dataclass
class RunReport:
    course_dir: str
    assignment: str
    run: str
    started: str
    finished: str = ""
    seconds: float = 0.0
    jobs: int = 1
    interrupted: bool = False
    skipped: list[str] = field(default_factory=list)
    results: list[SubmissionResult] = field(default_factory=list)
    path: str = ""

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for result in self.results:
            counts[result.status] = counts.get(result.status, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: STATUSES.index(kv[0])))

    def by_student(self) -> dict[str, SubmissionResult]:
        return {r.student: r for r in self.results}


def quiet_nbgrader() -> None:
    """For a command line: nbgrader's per-cell warnings (what it restored, lateness) are in the
    report's notes already, and its SQLAlchemy warnings say nothing to an instructor."""
    import logging
    import warnings

    from sqlalchemy.exc import SAWarning

    logging.getLogger("traitlets").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=SAWarning)


def refused_by_nbgrader(error: BaseException) -> bool:
    """Whether nbgrader's checks rejected the notebook's content (the student's doing), as
    opposed to a failure of the grader or the host, which must never cost a student points."""
    if isinstance(error, (OSError, SandboxUnavailable, TypeError, AttributeError, ImportError)):
        return False
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and any(
        part in frames[-1].filename
        for part in ("/nbgrader/preprocessors/", "/nbgrader/nbgraderformat/", "/nbformat/"))


def _config(course_dir: Path) -> Config:
    """The course's nbgrader_config.py (the instructor's file, as nbgrader itself loads it)."""
    config = Config()
    if (course_dir / "nbgrader_config.py").exists():
        config.merge(PyFileConfigLoader("nbgrader_config.py", path=str(course_dir)).load_config())
    return config


def cell_timeout_from_config(course_dir: Path) -> int | None:
    config = _config(course_dir)
    for section in ("Execute", "ExecutePreprocessor"):
        if "timeout" in config.get(section, {}):
            return int(config[section]["timeout"])
    return None


class Grader:
    def __init__(self, job: GradingJob):
        self.job = job
        self.course_dir = Path(job.course_dir).resolve()
        self.state = self.course_dir / ".classhub-grading"
        self.run_id = dt.datetime.now().strftime("%Y%m%dT%H%M%S-") + secrets.token_hex(3)
        self.run_dir = self.state / "runs" / self.run_id
        self.rel_run = self.run_dir.relative_to(self.course_dir).as_posix()
        self.markers = self.state / "graded" / job.assignment
        self.host_lock = threading.Lock()
        self.config = _config(self.course_dir)  # read once: nbgrader copies are made from it
        stat = self.course_dir.stat()
        self.owner = (stat.st_uid, stat.st_gid)
        course_label = hashlib.sha256(str(self.course_dir).encode()).hexdigest()[:12]
        self.course_labels = {LABEL: "1", f"{LABEL}.course": course_label}
        self.sandbox = Sandbox(job.image, job.limits, self.run_dir / "jobs", env=job.env,
                               volumes=job.volumes,
                               labels={**self.course_labels, f"{LABEL}.run": self.run_id})

    # -- what to grade -------------------------------------------------------------------

    def _coursedir(self, student: str = "*") -> tuple[Config, CourseDirectory]:
        config = copy.deepcopy(self.config)
        config.CourseDirectory.root = str(self.course_dir)
        config.CourseDirectory.assignment_id = self.job.assignment
        config.CourseDirectory.student_id = student
        config.CourseDirectory.submitted_directory = f"{self.rel_run}/submitted"
        config.CourseDirectory.autograded_directory = f"{self.rel_run}/autograded"
        config.OverwriteCells.add_missing_cells = True  # a deleted test comes back and runs
        return config, CourseDirectory(config=config)

    def known_notebooks(self) -> dict[str, dict[str, tuple[str, str]]]:
        """The assignment's notebooks in the gradebook, each with its locked cells."""
        _, coursedir = self._coursedir()
        db = self.course_dir / "gradebook.db"
        if not db.exists():
            raise ClasshubError(f"{self.course_dir}: no gradebook.db",
                                "this is not an nbgrader course directory, or nothing was "
                                "released from it yet")
        with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
            try:
                known = {n.name: {c.name: (c.checksum, c.cell_type)
                                  for c in n.source_cells if c.locked}
                         for n in gb.find_assignment(self.job.assignment).notebooks}
            except MissingEntry:
                known = ", ".join(a.name for a in gb.assignments) or "none"
                raise ClasshubError(f"{self.course_dir}: the gradebook has no assignment "
                                    f"{self.job.assignment!r}", f"assignments: {known}") from None
        if not known:
            raise ClasshubError(f"{self.job.assignment}: no notebooks in the gradebook",
                                "run `nbgrader generate_assignment` for it first")
        return known

    def submissions(self) -> dict[str, Path]:
        submitted = self.course_dir / "submitted"
        found = {p.parent.name: p for p in submitted.glob(f"*/{self.job.assignment}")
                 if p.is_dir() and not p.is_symlink()}
        if self.job.students is not None:
            missing = sorted(set(self.job.students) - set(found))
            if missing:
                raise ClasshubError(f"no submission of {self.job.assignment} from "
                                    f"{', '.join(missing)}", f"looked in {submitted}")
            found = {s: found[s] for s in self.job.students}
        return dict(sorted(found.items()))

    def _marker(self, student: str) -> Path:
        return self.markers / f"{student}.json"

    def needs_grading(self, student: str, folder: Path) -> bool:
        if self.job.force:
            return True
        try:
            marker = json.loads(self._marker(student).read_text())
        except (OSError, ValueError):
            return True
        return marker.get("digest") != digest(folder)

    # -- one submission ------------------------------------------------------------------

    def grade_one(self, student: str, folder: Path, known: dict) -> SubmissionResult:
        started = time.monotonic()
        with self.host_lock:
            try:
                result = self._grade_one(student, folder, known)
            except SandboxUnavailable as error:
                result = SubmissionResult(student, "error", notes=[str(error)])
            except Exception as error:  # noqa: BLE001 - the grader's own failure: not graded
                result = SubmissionResult(student, "error",
                                          notes=[f"grader failure: {type(error).__name__}: "
                                                 f"{str(error)[:500]}"])
            result.seconds = round(time.monotonic() - started, 2)
            if result.status != "error":
                self._write_marker(student, folder, result)
        return result

    def _grade_one(self, student: str, folder: Path, known: dict) -> SubmissionResult:
        self._marker(student).unlink(missing_ok=True)
        staging = self.run_dir / "submitted" / student / self.job.assignment
        intake = take_in(folder, staging, known)
        result = SubmissionResult(student, "ok", notes=list(intake.notes))
        runs: list[NotebookRun] = []
        while intake.notebooks:
            config, coursedir = self._coursedir(student)
            context = SubmissionContext(self.sandbox, self.host_lock)
            converter = SandboxedAutograde(context, coursedir=coursedir, config=config)
            converter.force = True
            try:
                converter.grade(self.job.assignment, student)
            except Exception as error:
                if not refused_by_nbgrader(error):
                    raise
                name = context.current if context.current in intake.notebooks else \
                    intake.notebooks[0]
                intake.invalid[name] = f"nbgrader could not grade it: {str(error)[:300]}"
                intake.notebooks.remove(name)
                (staging / f"{name}.ipynb").unlink(missing_ok=True)
                continue
            runs = context.runs
            break
        self._zero(student, staging, intake)
        self._publish(student)
        self._read_scores(student, result)
        result.notebooks = [asdict(run) for run in runs]
        for name in intake.missing:
            result.notes.append(f"{name}: no such notebook in the submission (scored 0)")
        for name, reason in intake.invalid.items():
            result.notes.append(f"{name}: {reason} (scored 0)")
        for run in runs:
            if run.end != "complete":
                result.notes.append(f"{run.name}: {run.reason}; {run.not_run} cell(s) not run")
            if run.timed_out_cells:
                result.notes.append(f"{run.name}: {run.timed_out_cells} cell(s) ran out of time")
            if run.hidden_errors:
                result.notes.append(f"{run.name}: {run.hidden_errors} error(s) hidden from the "
                                    "display were counted")
        result.status = self._status(runs, intake, result)
        return result

    def _status(self, runs, intake, result) -> str:
        found = {"ok"}
        for run in runs:
            found.add({"complete": "ok", "notebook-timeout": "notebook-timeout",
                       "kernel-died": "kernel-died", "memory-limit": "memory-limit"}
                      .get(run.end, "execution-failed"))
            if run.hidden_errors:
                found.add("tampered")
            if run.timed_out_cells:
                found.add("cell-timeout")
        if intake.invalid:
            found.add("invalid-notebook")
        if intake.missing:
            found.add("missing-notebook")
        if result.seconds_late > 0:
            found.add("late")
        return min(found, key=STATUSES.index)

    def _zero(self, student: str, staging: Path, intake) -> None:
        """Notebooks nbgrader never saw (all missing or unreadable) score zero, as it does."""
        if intake.notebooks:
            return  # nbgrader's own autograde zeroed the missing ones
        _, coursedir = self._coursedir(student)
        timestamp = coursedir.get_existing_timestamp(str(staging))
        with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
            gb.update_or_create_student(student)
            kwargs = {"timestamp": timestamp} if timestamp else {}
            submission = gb.update_or_create_submission(self.job.assignment, student, **kwargs)
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    grade.auto_score = 0
                    grade.needs_manual_grade = False
            gb.db.commit()

    def _publish(self, student: str) -> None:
        """Swap the new autograded folder in, owned like the course directory."""
        new = self.run_dir / "autograded" / student / self.job.assignment
        final = self.course_dir / "autograded" / student / self.job.assignment
        final.parent.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            for path in (final.parent.parent, final.parent):
                os.chown(path, *self.owner)
        old = None
        if final.exists():
            old = self.run_dir / "replaced" / student
            old.parent.mkdir(parents=True, exist_ok=True)
            final.rename(old)
        if new.exists():
            chown_tree(new, *self.owner)
            new.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def _read_scores(self, student: str, result: SubmissionResult) -> None:
        _, coursedir = self._coursedir(student)
        with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
            submission = gb.find_submission(self.job.assignment, student)
            result.raw_score = float(submission.score)
            result.max_score = float(submission.max_score)
            result.late_penalty = float(submission.late_submission_penalty or 0)
            result.score = max(result.raw_score - result.late_penalty, 0.0)
            result.seconds_late = float(submission.total_seconds_late or 0)
            result.needs_manual_grade = bool(submission.needs_manual_grade)
            result.grades = {nb.name: {g.name: g.score for g in nb.grades}
                             for nb in submission.notebooks}
        if result.seconds_late > 0:
            result.notes.append(f"late by {dt.timedelta(seconds=int(result.seconds_late))}: "
                                f"penalty {result.late_penalty:g}")

    def _write_marker(self, student: str, folder: Path, result: SubmissionResult) -> None:
        self.markers.mkdir(parents=True, exist_ok=True)
        marker = self._marker(student)
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps({"digest": digest(folder), "run": self.run_id,
                                   "status": result.status, "score": result.score}))
        tmp.replace(marker)

    # -- the batch -----------------------------------------------------------------------

    def run(self, progress: Progress | None = None) -> RunReport:
        self.state.mkdir(mode=0o700, exist_ok=True)
        lock = filelock.FileLock(str(self.state / "lock"), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise ClasshubError(f"{self.course_dir}: another grading run is busy with this "
                                "course", "wait for it to end, or stop it (Ctrl-C)") from None
        try:
            return self._run(progress)
        finally:
            lock.release()

    def _run(self, progress: Progress | None) -> RunReport:
        self.sandbox.check_image()
        # What a crashed run left: its sandboxes and its staging folder.
        remove_sandboxes(self.sandbox.engine, self.course_labels)
        shutil.rmtree(self.state / "runs", ignore_errors=True)
        self.run_dir.mkdir(parents=True)
        (self.run_dir / "jobs").mkdir()
        known = self.known_notebooks()
        report = RunReport(str(self.course_dir), self.job.assignment, self.run_id,
                           started=dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                           jobs=self.job.jobs)
        todo = {}
        for student, folder in self.submissions().items():
            if self.needs_grading(student, folder):
                todo[student] = folder
            else:
                report.skipped.append(student)
        progress = progress or Progress(len(todo))
        started = time.monotonic()
        pool = ThreadPoolExecutor(max_workers=max(1, self.job.jobs),
                                  thread_name_prefix="grade")
        futures = [pool.submit(self.grade_one, s, f, known) for s, f in todo.items()]
        try:
            for future in as_completed(futures):
                result = future.result()
                report.results.append(result)
                progress.update(result)
        except KeyboardInterrupt:
            report.interrupted = True
            self.sandbox.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            for future in futures:
                if future.done() and not future.cancelled() and future.exception() is None:
                    if future.result() not in report.results:
                        report.results.append(future.result())
        finally:
            pool.shutdown(wait=True)
            progress.close()
            shutil.rmtree(self.run_dir, ignore_errors=True)
        report.results.sort(key=lambda r: r.student)
        report.seconds = round(time.monotonic() - started, 2)
        report.finished = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        self._save(report)
        return report

    def _save(self, report: RunReport) -> None:
        folder = self.state / "reports"
        folder.mkdir(mode=0o700, exist_ok=True)
        path = folder / f"{self.job.assignment}-{self.run_id}.json"
        report.path = str(path)
        data = asdict(report)
        data["counts"] = report.counts()
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False))
        path.chmod(0o600)


def grade(job: GradingJob, progress: Progress | None = None) -> RunReport:
    return Grader(job).run(progress)
