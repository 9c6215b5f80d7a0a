"""The spawner: one container per student, derived from the course they chose and nothing else.

A spawn request carries only `{"course": <id>}`. The spawner checks that the user is enrolled in
that course (hub groups `nbgrader-<course>` / `formgrade-<course>`, which classhub derives from the
rosters) and takes the image, limits, home and GPU binding from the course's profile, so a REST
spawn with a forged image, limit or course is refused.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import ClassVar

import docker.errors
from dockerspawner import DockerSpawner
from tornado import web
from traitlets import Dict, List, Unicode, default

from classhub.audit import record
from classhub.config.model import USERNAME, CourseProfile, SiteGpu
from classhub.coursework.layout import (
    DATASETS_IN_CONTAINER,
    STUDENTS_README_IN_CONTAINER,
    CourseSpace,
)
from classhub.engine import COURSE_LABEL, INSTANCE_LABEL, USER_LABEL
from classhub.errors import ClasshubError
from classhub.gpu import binding, inventory
from classhub.gpu.allocator import Allocation, NoGpu, Request
from classhub.gpu.nvml import NvmlUnavailable
from classhub.gpu.pool import GpuPool
from classhub.hub import spawn_form
from classhub.state import StateDir

STUDENT_GROUP = "nbgrader-{course}"
INSTRUCTOR_GROUP = "formgrade-{course}"
GRADER_ACCOUNT = "grader-{course}"  # runs the course's formgrader; nobody logs in as it
GRADER_SERVICE = "classhub-grader"  # the hub service that autogrades and exports grades


class SpawnRefused(web.HTTPError):
    """A spawn that cannot go on: the page and the API show the reason, in French."""

    def __init__(self, message: str, status: int = 503):
        super().__init__(status, message)
        self.jupyterhub_message = message


class GpuRefused(SpawnRefused):
    """No GPU for this spawn."""


def engine_refusal(error: docker.errors.APIError, profile: CourseProfile) -> SpawnRefused:
    """What a student reads when the engine refuses their container, instead of a bare 500."""
    if isinstance(error, docker.errors.ImageNotFound) or "No such image" in str(error):
        return SpawnRefused(
            f"L'image du cours « {profile.title} » ({profile.image}) n'est pas sur ce poste : "
            "votre serveur ne peut pas démarrer. Prévenez l'équipe informatique (la commande "
            "`classhub images build` la construit).")
    return SpawnRefused(
        "Le moteur de conteneurs a refusé de démarrer votre serveur "
        f"({error.explanation or error}). Réessayez dans un instant ; si cela recommence, "
        "prévenez l'équipe informatique.")


SERVER_TOKEN_SCOPES = ["users:activity!user", "access:servers!server", "read:users:groups!user"]


def server_token_scopes(spawner) -> list[str]:
    """What a server's own token may do (`Spawner.server_token_scopes`). It may read its user's
    groups: nbgrader's JupyterHub auth plugin finds the courses there. Only a formgrader
    server's may call the grading service: an instructor may download grades in a browser, but
    code running in their own lab server (a student's notebook they try, say) may not."""
    graded = any(spawner.user.name == GRADER_ACCOUNT.format(course=c) for c in spawner.courses)
    return SERVER_TOKEN_SCOPES + ([f"access:services!service={GRADER_SERVICE}"] if graded else [])


def enrolled_courses(group_names: set[str], course_ids) -> list[str]:
    """The courses whose student or instructor group holds the user, in a stable order."""
    return [
        course
        for course in sorted(course_ids)
        if STUDENT_GROUP.format(course=course) in group_names
        or INSTRUCTOR_GROUP.format(course=course) in group_names
    ]


class CourseSpawner(DockerSpawner):
    courses = Dict(
        config=True,
        help="Course profiles by course id (CourseProfile fields), from the validated site.",
    )
    state_dir = Unicode(config=True, help="The site's state directory (homes live there).")
    grader_url = Unicode(config=True, help="The grading service, as a course's formgrader "
                                           "server reaches it.")
    gpu = Dict(config=True, help="The site's `gpu` section (SiteGpu fields): this node's GPUs, "
                                 "where they are listed, and the runtime that binds them.")
    security_opt = List(
        ["no-new-privileges"], config=True, help="Docker security options of every container."
    )

    @default("options_form")
    def _default_options_form(self):
        return self._render_options_form

    @default("options_from_form")
    def _default_options_from_form(self):
        return spawn_form.options_from_form

    def _profiles(self) -> dict[str, CourseProfile]:
        return {cid: CourseProfile(**p) for cid, p in self.courses.items()}

    def _my_courses(self) -> list[str]:
        groups = {group.name for group in self.user.groups}
        return enrolled_courses(groups, self.courses)

    def _graded_course(self) -> str | None:
        """The course whose formgrader this account runs, if it is a grader account."""
        for course in self.courses:
            if self.user.name == GRADER_ACCOUNT.format(course=course):
                return course
        return None

    def _render_options_form(self, spawner) -> str:
        profiles = self._profiles()
        graded = self._graded_course()
        if graded:
            return spawn_form.grader_form(profiles[graded])
        groups = {group.name for group in self.user.groups}
        taught = [c for c in sorted(self.courses) if INSTRUCTOR_GROUP.format(course=c) in groups]
        root = self.hub.base_url.removesuffix("hub/")
        return (spawn_form.course_choice(self._my_courses(), profiles)
                + spawn_form.teaching(taught, profiles, root, GRADER_ACCOUNT,
                                      GRADER_SERVICE))

    def _chosen_profile(self) -> CourseProfile:
        options = dict(self.user_options or {})
        unexpected = sorted(set(options) - {"course"})
        if unexpected:
            raise SpawnRefused("Seul le cours se choisit au démarrage ; refusé : "
                               f"{', '.join(unexpected)}.", 400)
        course_id = options.get("course")
        graded = self._graded_course()
        if graded:
            if course_id not in (None, graded):
                raise SpawnRefused(f"Ce serveur est le correcteur du cours {graded}, et de lui "
                                   "seul.", 403)
            return self._profiles()[graded]
        mine = self._my_courses()
        if not course_id:
            if len(mine) != 1:
                raise SpawnRefused("Vous n'êtes inscrit(e) à aucun cours : il n'y a pas de "
                                   "serveur à démarrer. Demandez à votre enseignant de vous "
                                   "inscrire." if not mine else
                                   "Choisissez le cours de votre serveur.", 400)
            course_id = mine[0]
        if course_id not in mine:
            raise SpawnRefused(f"Vous n'êtes pas inscrit(e) au cours « {course_id} ».", 403)
        return self._profiles()[course_id]

    def _home(self) -> Path:
        if not USERNAME.match(self.user.name):
            raise web.HTTPError(400, f"Username {self.user.name!r} cannot own a home folder.")
        return StateDir(Path(self.state_dir)).home(self.user.name)

    def _volumes(self, profile: CourseProfile) -> dict[str, dict]:
        """The home, each enrolled course's exchange as this student sees it, the datasets, the
        course's page for students (LISEZMOI.md).

        A grader account gets the course's gradebook folder as its home and the whole exchange.
        """
        state = StateDir(Path(self.state_dir))
        if self._graded_course():
            volumes = CourseSpace(state, profile.id).grader_volumes()
        else:
            volumes = {str(self._home()): {"bind": "/home/jovyan", "mode": "rw"}}
            for course_id in self._my_courses():
                volumes.update(CourseSpace(state, course_id).student_volumes(self.user.name))
            # checked now: a file deleted since the hub started would come back as a folder
            if profile.students_readme and Path(profile.students_readme).is_file():
                volumes[profile.students_readme] = {"bind": STUDENTS_README_IN_CONTAINER,
                                                    "mode": "ro"}
        volumes.update({path: {"bind": f"{DATASETS_IN_CONTAINER}/{name}", "mode": "ro"}
                        for name, path in profile.datasets.items()})
        return volumes

    _gpu_pools: ClassVar[dict[tuple, GpuPool]] = {}  # one per hub and site, for all users

    def _gpu_pool(self) -> GpuPool:
        """One pool per hub and site (spawns in progress are remembered there). An inventory
        that fell back to the config is read again at the next spawn: the driver may not have
        been ready when the hub started."""
        key = (self.state_dir, self.network_name)
        pool = CourseSpawner._gpu_pools.get(key)
        if pool is None or not pool.inventory.settled:
            found = inventory.read(SiteGpu(**self.gpu))
            self.log.info("GPU inventory (%s): %s%s", found.source,
                          ", ".join(str(d.key) for d in found.devices) or "none",
                          f" ({found.note})" if found.note else "")
            if pool is None:
                label = f"{INSTANCE_LABEL}={self.network_name}"
                engine = self.client  # DockerSpawner's API client, shared by every spawner
                pool = GpuPool(found, StateDir(Path(self.state_dir)),
                               lambda: engine.containers(all=True, filters={"label": label}))
                CourseSpawner._gpu_pools[key] = pool
            else:
                pool.use_inventory(found)
        return pool

    def _acquire_gpu(self, request: Request) -> Allocation:
        return self._gpu_pool().acquire(request, datetime.now(timezone.utc))

    async def _allocate_gpu(self, profile: CourseProfile) -> Allocation | None:
        """The GPU (or share, or slice) this server gets, or a refusal that says why.
        Formgrader servers never take one."""
        if profile.gpu_policy == "none" or self._graded_course():
            return None
        request = Request(self.user.name, profile.id, profile.gpu_policy,
                          profile.students_per_gpu)
        try:
            # The engine, NVML and the reservations file are read: not on the hub's loop.
            return await asyncio.get_running_loop().run_in_executor(
                self.executor, self._acquire_gpu, request)
        except NoGpu as refusal:
            self.log.warning("No GPU for %s in %s: %s", self.user.name, profile.id, refusal)
            raise GpuRefused(refusal.message()) from None
        except (ClasshubError, NvmlUnavailable) as error:  # NVML, or the reservations file
            self.log.error("GPU table: %s", error)
            raise GpuRefused("Les GPU de ce poste ne peuvent pas être attribués pour le moment "
                             "(erreur signalée dans le journal du hub) ; le TP ne peut pas "
                             "démarrer. Prévenez l'équipe informatique.") from None

    def _apply(self, profile: CourseProfile, allocation: Allocation | None = None) -> None:
        if profile.image not in self._get_allowed_images():
            raise web.HTTPError(500, f"Image {profile.image} is not among the course images.")
        self.image = profile.image
        self.mem_limit = profile.mem_limit
        self.cpu_limit = profile.cpu_limit
        self.volumes = self._volumes(profile)
        self.extra_host_config = {
            "pids_limit": profile.pids_limit,
            "shm_size": profile.shm_size,
            "cap_drop": ["ALL"],
            "security_opt": list(self.security_opt),
            **binding.host_config(allocation, SiteGpu(**self.gpu).runtime),
        }
        self.extra_create_kwargs = {
            "labels": {
                INSTANCE_LABEL: self.network_name,
                USER_LABEL: self.user.name,
                COURSE_LABEL: profile.id,
                **(binding.labels(allocation) if allocation else {}),
            }
        }
        role = "grader" if self._graded_course() else "student"
        # A formgrader server opens on the formgrader, in its own page.
        self.default_url = "/formgrader" if role == "grader" else "/lab"
        env = {"CLASSHUB_COURSE": profile.id, "CLASSHUB_ROLE": role}
        if role == "grader":
            env["CLASSHUB_GRADER_URL"] = self.grader_url
        env.update(binding.environment(allocation))
        # The spawner outlives a server: a previous spawn's GPU settings must not linger.
        kept = {k: v for k, v in self.environment.items() if k not in binding.ENV_KEYS}
        self.environment = {**kept, **env}

    async def start(self):
        profile = self._chosen_profile()
        allocation = await self._allocate_gpu(profile)
        try:
            self._apply(profile, allocation)
            self.log.info("Starting %s for course %s from %s%s", self.user.name, profile.id,
                          profile.image, f" on GPU {allocation.device} ({allocation.share})"
                          if allocation else "")
            try:
                started = await super().start()
            except docker.errors.APIError as error:
                self.log.error("The engine refused %s's server for %s: %s", self.user.name,
                               profile.id, error)
                raise engine_refusal(error, profile) from None
        finally:
            if allocation:
                self._gpu_pool().settle(self.user.name)
        record(self.state_dir, self.user.name, "server.start", course=profile.id,
               image=profile.image, datasets=dict(sorted(profile.dataset_classes.items())),
               mem_limit=profile.mem_limit, gpu=profile.gpu_policy,
               **({"gpu_device": str(allocation.device), "gpu_share": str(allocation.share)}
                  if allocation else {}))
        return started

    async def stop(self, now=False):
        await super().stop(now=now)
        course = (self.user_options or {}).get("course", "")
        record(self.state_dir, self.user.name, "server.stop", course=course)
