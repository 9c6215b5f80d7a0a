"""A submission as the grader takes it in: a clean copy, readable notebooks, and what is odd.

Runs on the host before nbgrader sees anything: only regular files are copied (a symlink to
/etc/shadow or to another student's folder stays behind), sizes are bounded, and every notebook
the gradebook knows is parsed and validated; one that is not readable is left out, so that
nbgrader scores it like a missing one (zero), and the reason is kept for the report.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

FILE_LIMIT = 50 * 2**20
SUBMISSION_LIMIT = 200 * 2**20
NOTEBOOK_LIMIT = 20 * 2**20

# Code that reaches into the kernel's own machinery: never proof of cheating, worth a look.
SUSPICIOUS = re.compile(
    r"showtraceback|_showtraceback|sys\.excepthook|InteractiveShell|ipykernel|os\._exit|"
    r"\bexit\(|sys\.exit|builtins|__import__\(|ctypes|/job/|execute_reply")


@dataclass
class Intake:
    notes: list[str] = field(default_factory=list)
    invalid: dict[str, str] = field(default_factory=dict)  # notebook name -> reason
    missing: list[str] = field(default_factory=list)
    notebooks: list[str] = field(default_factory=list)  # readable, known to the gradebook


def digest(folder: Path) -> str:
    """A fingerprint of a submission's files, to tell a resubmission from a graded one."""
    sha = hashlib.sha256()
    for top, dirs, files in sorted(os.walk(folder)):
        dirs.sort()
        for name in sorted(files):
            path = Path(top) / name
            sha.update(str(path.relative_to(folder)).encode() + b"\0")
            if path.is_symlink() or not path.is_file():
                sha.update(b"<not a regular file>")
                continue
            with path.open("rb") as handle:
                for chunk in iter(lambda h=handle: h.read(2**20), b""):
                    sha.update(chunk)
    return sha.hexdigest()


def copy_submission(source: Path, target: Path, intake: Intake) -> None:
    """Regular files and folders only, within the size limits."""
    total = 0
    for top, dirs, files in os.walk(source):
        rel = Path(top).relative_to(source)
        (target / rel).mkdir(parents=True, exist_ok=True)
        for name in list(dirs):
            if (Path(top) / name).is_symlink():
                intake.notes.append(f"ignored a link: {rel / name}")
                dirs.remove(name)
        for name in sorted(files):
            path = Path(top) / name
            if path.is_symlink() or not path.is_file():
                intake.notes.append(f"ignored something not a regular file: {rel / name}")
                continue
            size = path.stat().st_size
            if size > FILE_LIMIT or total + size > SUBMISSION_LIMIT:
                intake.notes.append(f"ignored a file over the size limits: {rel / name}")
                continue
            total += size
            shutil.copyfile(path, target / rel / name)


def read_notebook(path: Path):
    """(the notebook, None), or (None, why it cannot be graded)."""
    if path.stat().st_size > NOTEBOOK_LIMIT:
        return None, f"larger than {NOTEBOOK_LIMIT // 2**20} MB"
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # noqa: BLE001 - any reason to refuse is a reason to report
        return None, f"not a valid notebook ({type(error).__name__}: {str(error)[:200]})"
    return nb, None


def compare_locked(nb, locked: dict[str, tuple[str, str]]) -> list[str]:
    """What the student changed of the instructor's locked cells (nbgrader restores them)."""
    from nbgrader.utils import compute_checksum

    found = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    deleted = sorted(set(locked) - set(found))
    retyped = sorted(g for g, (_, kind) in locked.items() if g in found
                     and found[g].cell_type != kind)
    edited = sorted(g for g, (checksum, kind) in locked.items() if g in found
                    and g not in retyped and compute_checksum(found[g]) != checksum)
    notes = []
    for what, cells in (("deleted, put back", deleted), ("type changed, restored", retyped),
                        ("edited, restored", edited)):
        if cells:
            notes.append(f"instructor cells {what}: {', '.join(cells)}")
    return notes


def take_in(submitted: Path, staging: Path, known: dict[str, dict]) -> Intake:
    """Copy `submitted` to `staging`, keeping only the notebooks that can be graded.
    `known`: each gradebook notebook's locked cells, grade_id -> (checksum, cell type)."""
    intake = Intake()
    copy_submission(submitted, staging, intake)
    extra = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*")
                   if p.is_file() and not (p.parent == staging and p.suffix == ".ipynb"
                                           and p.stem in known) and p.name != "timestamp.txt")
    if extra:
        intake.notes.append("extra files: " + ", ".join(extra[:10])
                            + (f" (+{len(extra) - 10})" if len(extra) > 10 else ""))
    for name in known:
        path = staging / f"{name}.ipynb"
        if not path.exists():
            intake.missing.append(name)
            continue
        nb, reason = read_notebook(path)
        if reason:
            intake.invalid[name] = reason
            path.unlink()
            continue
        intake.notebooks.append(name)
        try:
            intake.notes.extend(f"{name}: {note}" for note in compare_locked(nb, known[name]))
        except Exception:  # noqa: BLE001 - odd metadata: nbgrader's own checks will say
            pass
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        found = sorted(set(SUSPICIOUS.findall(code)))
        if found:
            intake.notes.append(f"{name}: code touches the kernel's machinery "
                                f"({', '.join(found)})")
    return intake
