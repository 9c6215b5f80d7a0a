"""nbgrader's instructor commands, each run in a throwaway container of the course image.

The container runs as uid 1000 with no network, no capabilities and bounded memory and
processes; it sees the course's gradebook directory and exchange, nothing else of the host.
"""

from __future__ import annotations

from classhub import engine as engines
from classhub.config.model import Platform
from classhub.coursework.layout import COURSE_DIR_IN_CONTAINER, CourseSpace
from classhub.errors import ClasshubError


def run_nbgrader(platform: Platform, course: str, args: list[str], timeout_s: int = 1800,
                 command: list[str] | None = None, env: dict[str, str] | None = None) -> str:
    """Run `nbgrader ARGS` (or `command`) for the course; return its output or raise with it."""
    space = CourseSpace.of(platform, course).ensure()
    profile = platform.profile(course)
    engine = engines.client()
    argv = command or ["nbgrader", *args]
    container = engine.containers.run(
        profile.image,
        ["timeout", "--signal=KILL", str(timeout_s), *argv],
        detach=True,
        user="1000:1000",
        working_dir=COURSE_DIR_IN_CONTAINER,
        volumes=space.grader_volumes(),
        environment={"CLASSHUB_ROLE": "grader", "HOME": COURSE_DIR_IN_CONTAINER,
                     "CLASSHUB_COURSE": course, **(env or {})},
        network_mode="none",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        mem_limit=profile.mem_limit,
        nano_cpus=int(profile.cpu_limit * 1e9),
        pids_limit=profile.pids_limit,
        shm_size=profile.shm_size,
        labels={"org.classhub.step": f"{course}:{argv[1] if len(argv) > 1 else argv[0]}"},
    )
    try:  # `timeout` in the container ends the step; wait() has a margin over it
        status = container.wait(timeout=timeout_s + 60)
        output = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    if status.get("StatusCode") != 0:
        tail = "\n".join(output.splitlines()[-30:])
        raise ClasshubError(f"`{' '.join(argv)}` failed for {course} "
                            f"(exit {status.get('StatusCode')}):\n{tail}")
    return output
