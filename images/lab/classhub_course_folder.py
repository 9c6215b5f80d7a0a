"""Server extension of student servers: the course's page (LISEZMOI.md) and its datasets in the
file browser, as links in `~/<course>/` (the folder nbgrader fetches the course's assignments
into). The home is shared by all of a student's courses while the mounts are the current
course's, so links another course's server left in its own folder are taken away.
"""

from __future__ import annotations

import os
from pathlib import Path

README = Path("/srv/course/LISEZMOI.md")  # classhub.coursework.layout.STUDENTS_README_IN_CONTAINER
DATASETS = Path("/srv/datasets")  # classhub.coursework.layout.DATASETS_IN_CONTAINER
LINKS = {"LISEZMOI.md": README, "datasets": DATASETS}


def _is_link_to(path: Path, target: Path) -> bool:
    return path.is_symlink() and Path(os.readlink(path)) == target


def lay_out(home: Path, course: str, links: dict[str, Path] = LINKS) -> list[Path]:
    """Link the current course's page and datasets into ~/<course>/; returns the links made."""
    for other in home.iterdir() if home.is_dir() else ():
        if other.name != course and other.is_dir() and not other.is_symlink():
            for name, target in links.items():
                if _is_link_to(other / name, target):
                    (other / name).unlink()
    made = []
    folder = home / course
    for name, target in links.items():
        link = folder / name
        present = target.is_file() or (target.is_dir() and any(target.iterdir()))
        if not present:
            if _is_link_to(link, target):
                link.unlink()
            continue
        if _is_link_to(link, target):
            continue
        if link.exists() or link.is_symlink():
            continue  # the student's own file of that name is theirs: left alone
        folder.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
        made.append(link)
    return made


def _jupyter_server_extension_points():
    return [{"module": "classhub_course_folder"}]


def _load_jupyter_server_extension(server_app):
    course = os.environ.get("CLASSHUB_COURSE", "")
    if not course or os.environ.get("CLASSHUB_ROLE", "student") != "student":
        return
    try:
        made = lay_out(Path(server_app.root_dir), course)
    except OSError as error:  # a full or read-only home must not stop the server
        server_app.log.warning("classhub: course folder links not made: %s", error)
        return
    for link in made:
        server_app.log.info("classhub: %s -> %s", link, os.readlink(link))
