"""The validated model of a classhub site: the site config and the courses it serves.

Everything downstream (hub config, spawner, CLI, image builds) reads this model and nothing
else; every default lives here, and the config reference in docs/ is generated from it.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

COURSE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MEMORY = re.compile(r"^[1-9][0-9]*[kmgKMG]?$")


class Strict(BaseModel):
    """A config section: unknown keys are errors, values are checked, never coerced loosely."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_memory(value: str) -> str:
    if not MEMORY.match(value):
        raise ValueError(f"{value!r} is not a size like 512M or 4G")
    return value.upper()


Memory = Annotated[str, Field(description="A size such as `512M` or `4G`.")]


class Resources(Strict):
    """Limits of one student container. Courses may override each key."""

    mem_limit: Memory = Field("4G", description="Memory limit of a student container.")
    cpu_limit: float = Field(2.0, gt=0, le=256, description="CPUs a student container may use.")
    pids_limit: int = Field(
        512, ge=64, le=65536, description="Processes and threads a student container may run."
    )
    shm_size: Memory = Field(
        "1G", description="Size of `/dev/shm`: PyTorch DataLoader workers share tensors there."
    )

    _mem = field_validator("mem_limit", "shm_size")(_check_memory)


class ResourceOverrides(Strict):
    """A course's changes to the site's resource defaults; keys left out keep the default."""

    mem_limit: Memory | None = None
    cpu_limit: float | None = Field(None, gt=0, le=256)
    pids_limit: int | None = Field(None, ge=64, le=65536)
    shm_size: Memory | None = None

    @field_validator("mem_limit", "shm_size")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        return None if value is None else _check_memory(value)


class Gpu(Strict):
    """Which GPU a student container gets (a course's policy; the site's `gpu` is the default)."""

    policy: Literal["none", "exclusive", "shared", "mig"] = Field(
        "none",
        description="`none`: CPU only, the container sees no GPU even where the NVIDIA runtime "
        "is the engine's default. `exclusive`: one whole GPU per student. `shared`: up to "
        "`students_per_gpu` students per GPU, each capped to that share of its memory (a soft "
        "cap, applied by PyTorch). `mig`: one MIG slice per student.",
    )
    students_per_gpu: int | None = Field(
        None, ge=2, le=64,
        description="With `policy: shared` (and only then): how many students share one GPU.",
    )

    @model_validator(mode="after")
    def _share_count(self):
        if (self.policy == "shared") != (self.students_per_gpu is not None):
            raise ValueError("students_per_gpu is given exactly when policy is shared "
                             f"(policy {self.policy}, students_per_gpu {self.students_per_gpu})")
        return self


class MigSlice(Strict):
    """One MIG slice of a GPU, as `nvidia-smi -L` lists it."""

    uuid: str = Field(pattern=r"^MIG-[0-9A-Za-z-]+$", description="The slice's UUID (`MIG-...`).")
    name: str = Field("MIG", description="Its profile, e.g. `1g.18gb`.")
    memory_mib: int | None = Field(None, gt=0, description="Its memory in MiB.")


class GpuDevice(Strict):
    """One GPU of this node, for machines where NVML cannot be read (`gpu.inventory: config`)."""

    uuid: str = Field(pattern=r"^GPU-[0-9A-Za-z-]+$", description="The GPU's UUID (`GPU-...`).")
    name: str = Field("GPU", description="Its model, e.g. `NVIDIA H200`.")
    memory_mib: int | None = Field(None, gt=0, description="Its memory in MiB.")
    mig: list[MigSlice] = Field(
        default_factory=list,
        description="Its MIG slices when MIG is enabled; the GPU is then given out by slice only.")


class SiteGpu(Gpu):
    """The default GPU policy of courses, this node's GPUs, and when held GPUs are freed."""

    inventory: Literal["auto", "nvml", "config"] = Field(
        "auto",
        description="Where the GPUs are listed: `nvml` (the NVIDIA driver's library), `config` "
        "(`devices` below), `auto` (NVML where the driver is installed, else `devices`).",
    )
    node: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$",
        description="This node's name in the GPU table (GPUs are keyed by node and UUID); the "
                    "host name when left out.")
    devices: list[GpuDevice] = Field(
        default_factory=list, description="This node's GPUs where NVML cannot be read.")
    runtime: str = Field(
        "nvidia", pattern=r"^[A-Za-z0-9_.-]+$",
        description="The Docker runtime that gives a container the GPU named in "
                    "NVIDIA_VISIBLE_DEVICES (the NVIDIA container toolkit's).")
    idle_release_after_s: int = Field(
        1800, ge=0,
        description="A GPU that none of a server's processes used for this long is freed by "
                    "stopping the server (0: never).")
    idle_grace_s: int = Field(
        600, ge=0, description="A server is never freed this soon after it started.")
    check_every_s: int = Field(
        60, ge=1, description="How often the GPU-idle culler looks at NVML's per-process use.")

    @field_validator("devices")
    @classmethod
    def _unique_uuids(cls, value: list[GpuDevice]) -> list[GpuDevice]:
        uuids = [d.uuid for d in value] + [s.uuid for d in value for s in d.mig]
        duplicates = sorted({u for u in uuids if uuids.count(u) > 1})
        if duplicates:
            raise ValueError(f"listed twice: {', '.join(duplicates)}")
        return value

    def course_default(self) -> Gpu:
        return Gpu(policy=self.policy, students_per_gpu=self.students_per_gpu)


class Hub(Strict):
    """Where the hub listens and how it copes with a whole class arriving at once."""

    bind_url: str = Field(
        "http://127.0.0.1:8000", description="Public URL of the proxy that people open."
    )
    listen_address: str | None = Field(
        None, description="Address the proxy listens on; default: `bind_url`'s host. `0.0.0.0` "
                          "on a workstation people reach by its name (the name stays in "
                          "`bind_url`, and in the certificate).",
    )
    api_port: int = Field(
        8081, ge=1, le=65535,
        description="Port of the hub's API, bound on the student network's gateway address only.",
    )
    proxy_api_port: int = Field(
        8001, ge=1, le=65535, description="Port of the proxy's REST API, on 127.0.0.1."
    )
    grader_port: int = Field(
        8082, ge=1, le=65535,
        description="Port of the grading service (the formgrader's autograde button), bound on "
                    "the student network's gateway address only, like the hub's API.",
    )
    start_timeout_s: int = Field(
        300, ge=10, description="How long a student server may take to start."
    )
    http_timeout_s: int = Field(
        120, ge=10, description="How long a started server may take to answer HTTP."
    )
    concurrent_spawn_limit: int = Field(
        40, ge=1, description="Spawns in flight at once; raise it with the class size."
    )
    active_server_limit: int = Field(
        0, ge=0, description="Running servers at most (0: no limit)."
    )
    idle_timeout_s: int = Field(
        3600, ge=0, description="Stop a server idle this long (0 turns the culler off)."
    )
    cull_every_s: int = Field(300, ge=1, description="How often the culler looks for idle servers.")

    @field_validator("bind_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+(:\d+)?/?$", value):
            raise ValueError(f"{value!r} is not a URL like http://127.0.0.1:8000")
        return value.rstrip("/")


class Oidc(Strict):
    """The institution's OpenID Connect identity provider (`auth.kind: oidc`)."""

    issuer: str = Field(description="Issuer URL; its `/.well-known/openid-configuration` gives "
                                    "the endpoints.")
    client_id: str = Field(min_length=1, description="This hub's client id at the provider.")
    client_secret: SecretStr | None = Field(
        None, description="The client secret; left out, it is read from "
                          "`<state>/secrets/oidc_client_secret` (0600).")
    scopes: list[str] = Field(["openid", "profile", "email"],
                              description="Scopes asked for; add the one that releases groups "
                                          "if the provider needs it.")
    username_claim: str = Field("preferred_username",
                                description="Claim that becomes the hub username.")
    groups_claim: str = Field("groups", description="Claim listing the person's groups.")
    ca_file: Path | None = Field(None, description="CA bundle for the provider's HTTPS, if it "
                                                   "is not in the system's trust store.")

    @field_validator("issuer")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s]+$", value):
            raise ValueError(f"{value!r} is not a URL")
        return value.rstrip("/")


class Ldap(Strict):
    """The hospital's directory (`auth.kind: ldap`): it checks passwords and group membership."""

    server_address: str = Field(description="Host name or address of the LDAP server.")
    server_port: int | None = Field(None, ge=1, le=65535,
                                    description="Default: 389, or 636 with `on_connect`.")
    tls_strategy: Literal["before_bind", "on_connect", "insecure"] = Field(
        "before_bind", description="`before_bind`: StartTLS; `on_connect`: LDAPS; `insecure`: "
                                   "plain LDAP (passwords in clear: a loopback test only).")
    bind_dn_template: list[str] = Field(
        min_length=1, description="Where a username's entry is, e.g. "
                                  "`uid={username},ou=people,dc=chu,dc=example`.")
    group_search_filter: str = Field(
        "(|(member={userdn})(uniqueMember={userdn})(memberUid={uid}))",
        description="How membership of a group DN is tested.")
    username_pattern: str = Field(r"^[a-z][a-z0-9._-]{0,31}$",
                                  description="Logins must match this (no LDAP injection).")


class Auth(Strict):
    """How people log in."""

    kind: Literal["local", "shared-password", "oidc", "ldap"] = Field(
        "local",
        description="`local`: each person has their own hashed password, generated at "
        "enrolment. `oidc`: the institution's identity provider (see `oidc`); courses may take "
        "their students and instructors from its groups. `ldap`: the hospital's directory (see "
        "`ldap`), same enrolment by groups (group DNs). `shared-password`: anyone who knows "
        "one password logs in as any name; for a workshop only.",
    )
    oidc: Oidc | None = Field(None, description="With `kind: oidc`.")
    ldap: Ldap | None = Field(None, description="With `kind: ldap`.")
    shared_password: SecretStr | None = Field(
        None, description="The workshop password (with `kind: shared-password`, at least 8 chars)."
    )
    admin_users: list[str] = Field(
        ["admin"], description="Hub administrators. `admin` gets a generated password."
    )
    failed_logins_before_delay: int = Field(
        5, ge=1, description="Failed logins for one name before logins for it pause."
    )
    failed_login_delay_s: int = Field(60, ge=1, description="How long that pause lasts.")
    minimum_password_length: int = Field(10, ge=8, description="For passwords people choose.")

    @field_validator("admin_users")
    @classmethod
    def _usernames(cls, value: list[str]) -> list[str]:
        for name in value:
            if not USERNAME.match(name):
                raise ValueError(f"{name!r} is not a valid username")
        return value

    @model_validator(mode="after")
    def _oidc_pairs_with_kind(self) -> Auth:
        if (self.kind == "oidc") != (self.oidc is not None):
            raise ValueError("auth.oidc is given exactly when kind is oidc")
        if (self.kind == "ldap") != (self.ldap is not None):
            raise ValueError("auth.ldap is given exactly when kind is ldap")
        return self

    @property
    def external(self) -> bool:
        """People's identity and groups come from the institution (OIDC or LDAP)."""
        return self.kind in ("oidc", "ldap")

    @model_validator(mode="after")
    def _shared_password_pairs_with_kind(self) -> Auth:
        if self.kind == "shared-password":
            if self.shared_password is None or len(self.shared_password.get_secret_value()) < 8:
                raise ValueError("kind shared-password needs shared_password of 8 or more chars")
        elif self.shared_password is not None:
            raise ValueError("shared_password is only read with kind: shared-password")
        return self


class Images(Strict):
    """How course images are built, with no registry."""

    debian_mirror: str = Field(
        "http://deb.debian.org/debian", description="Debian mirror the base image is built from."
    )
    wheelhouse: Path | None = Field(
        None,
        description="A folder of wheels pip may install from first (`--find-links`): how a CPU "
        "build of torch, or a whole offline package set, gets into the images.",
    )
    torch: Literal["cpu", "cuda"] = Field(
        "cpu",
        description="`cpu`: torch's CPU build, which must be in the wheelhouse. `cuda`: the "
        "CUDA build (several GB), for GPU nodes.",
    )
    extra_ca_certificates: Path = Field(
        Path("/usr/local/share/ca-certificates"),
        description="Folder of extra CA certificates (`*.crt`) the images trust, as a "
        "TLS-intercepting proxy needs. A missing folder means none.",
    )


class Network(Strict):
    """The Docker network of student containers."""

    internal: bool = Field(
        True, description="No route out of the network: students have no internet egress."
    )
    host_firewall: bool = Field(
        True, description="An iptables chain lets student containers reach only the hub's API "
                          "and the grading service on this host (an internal network still "
                          "reaches the host). Turn off only where the host's own firewall "
                          "does exactly that.",
    )


class Assignment(Strict):
    """One nbgrader assignment: the folder `source/<id>/` of the course."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,59}$",
                    description="Folder name under the course's `source/`.")
    title: str = Field(min_length=1)
    due: dt.datetime = Field(description="Deadline, with its time zone (e.g. `+01:00`).")
    cell_timeout_s: int = Field(
        300, ge=1, le=86400, description="Time a single cell may run when grading."
    )
    notebook_timeout_s: int = Field(
        1800, ge=1, le=86400, description="Time a whole notebook may run when grading."
    )

    @field_validator("due")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("give the time zone, e.g. 2027-01-15T23:59:00+01:00")
        return value

    @field_validator("id")
    @classmethod
    def _source_exists(cls, value: str, info: ValidationInfo) -> str:
        course_dir = (info.context or {}).get("course_dir")
        if course_dir is not None and not (Path(course_dir) / "source" / value).is_dir():
            raise ValueError(f"no folder {Path(course_dir) / 'source' / value}")
        return value


class LatePenalty(Strict):
    """What a late submission costs, per notebook."""

    policy: Literal["none", "zero", "per-day"] = Field(
        "none",
        description="`none`: late work keeps its score; `zero`: late work scores 0; "
        "`per-day`: loses `points_per_day` for each started day late.",
    )
    points_per_day: float = Field(0, ge=0, description="With `per-day`.")

    @model_validator(mode="after")
    def _points_with_per_day(self) -> LatePenalty:
        if (self.policy == "per-day") != (self.points_per_day > 0):
            raise ValueError("points_per_day > 0 goes with policy per-day, and only with it")
        return self


class Dataset(Strict):
    """A folder of data mounted read-only in the course's containers, at `/srv/datasets/<name>`."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    path: Path = Field(description="Folder on the host, relative to the course folder.")
    classification: Literal["open", "pseudonymised"] = Field(
        description="`open`: public data (e.g. shipped in a package). `pseudonymised`: patient "
                    "data with direct identifiers removed. Identifying data has no place here.")

    @field_validator("path")
    @classmethod
    def _folder_exists(cls, value: Path, info: ValidationInfo) -> Path:
        course_dir = (info.context or {}).get("course_dir")
        if course_dir is not None:
            value = value if value.is_absolute() else (Path(course_dir) / value).resolve()
            if not value.is_dir():
                raise ValueError(f"no folder {value}")
        return value


class Retention(Strict):
    """What `classhub course archive` does once the course's work is archived."""

    delete_homes_on_archive: bool = Field(
        True, description="Delete the homes of the course's students who are in no other "
                          "course (their work is in the archive).")


class IdentityGroups(Strict):
    """Groups of the identity provider whose members are enrolled (with `auth.kind: oidc`)."""

    students: list[str] = Field(default_factory=list, description="Their members are students.")
    instructors: list[str] = Field(default_factory=list,
                                   description="Their members are instructors.")

    def any(self) -> bool:
        return bool(self.students or self.instructors)


class Course(Strict):
    """One course: `courses/<id>/course.yml`."""

    title: str = Field(min_length=1, description="Shown to students on the spawn page.")
    description: str = Field("", description="One or two sentences for the spawn page.")
    language: Literal["fr", "en"] = Field("fr", description="Language of the course material.")
    image: str = Field(description="Course image: a folder under `images/` with a Dockerfile.")
    resources: ResourceOverrides = Field(default_factory=ResourceOverrides)
    gpu: Gpu | None = Field(None, description="GPU policy; the site's `gpu` when left out.")
    datasets: list[Dataset] = Field(default_factory=list)
    assignments: list[Assignment] = Field(default_factory=list)
    late_penalty: LatePenalty = Field(default_factory=LatePenalty)
    retention: Retention = Field(default_factory=Retention)
    identity_groups: IdentityGroups = Field(
        default_factory=IdentityGroups,
        description="With `auth.kind: oidc` or `ldap`: enrolment comes from these groups (OIDC "
                    "group names, LDAP group DNs), mapped at each login; the roster verbs then "
                    "refuse for this course.")

    @field_validator("assignments", "datasets")
    @classmethod
    def _unique(cls, value: list) -> list:
        names = [item.id if isinstance(item, Assignment) else item.name for item in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"listed twice: {', '.join(duplicates)}")
        return value

    @field_validator("image")
    @classmethod
    def _image_exists(cls, value: str, info: ValidationInfo) -> str:
        images_dir = (info.context or {}).get("images_dir")
        if not re.match(r"^[a-z0-9][a-z0-9-]*$", value) or value == "base":
            raise ValueError(f"{value!r} is not a course image name")
        if images_dir is not None and not (Path(images_dir) / value / "Dockerfile").is_file():
            raise ValueError(f"no course image {value!r}: {images_dir}/{value}/Dockerfile is missing")
        return value


class Tls(Strict):
    """HTTPS, served by the proxy. Off in the embedded local mode (loopback only)."""

    enabled: bool = Field(False, description="Serve HTTPS (then `hub.bind_url` is `https://`).")
    certificate: Path | None = Field(
        None, description="PEM certificate chain; with `key`. Without both, the certificate "
                          "`classhub tls init` made for the room is used.")
    key: Path | None = Field(None, description="PEM private key of `certificate`.")
    hsts_max_age_s: int = Field(
        31536000, ge=0, description="Strict-Transport-Security max-age sent with HTTPS pages.")

    @model_validator(mode="after")
    def _pair(self):
        if (self.certificate is None) != (self.key is None):
            raise ValueError("give both tls.certificate and tls.key, or neither")
        return self


class Site(Strict):
    """The site config (`site.yaml`)."""

    name: str = Field(
        "classhub",
        pattern=r"^[a-z][a-z0-9-]{0,30}$",
        description="Instance name: prefixes containers and networks, so that two instances "
        "(a test run beside the real one) never meet.",
    )
    state_dir: Path = Field(
        Path("/var/lib/classhub"),
        description="Secrets, rosters, homes, databases and logs: personal data, outside git.",
    )
    courses_dir: Path = Field(Path("courses"), description="Folder of course folders.")
    images_dir: Path = Field(Path("images"), description="Folder of image recipes.")
    hub: Hub = Field(default_factory=Hub)
    auth: Auth = Field(default_factory=Auth)
    resources: Resources = Field(default_factory=Resources)
    gpu: SiteGpu = Field(default_factory=SiteGpu)
    images: Images = Field(default_factory=Images)
    network: Network = Field(default_factory=Network)
    tls: Tls = Field(default_factory=Tls)

    @model_validator(mode="after")
    def _https_with_tls(self):
        https = self.hub.bind_url.startswith("https://")
        if https != self.tls.enabled:
            raise ValueError("hub.bind_url is https:// exactly when tls.enabled is true "
                             f"(bind_url {self.hub.bind_url}, tls.enabled {self.tls.enabled})")
        return self

    def cleartext_exposed(self) -> bool:
        """Plain HTTP on an address other than loopback: passwords cross the network in clear."""
        hosts = {urlparse(self.hub.bind_url).hostname or "", self.hub.listen_address or ""}
        return not self.tls.enabled and bool(hosts - {"127.0.0.1", "localhost", "::1", ""})


class CourseProfile(Strict):
    """What a spawn needs of a course, defaults already merged: the spawner's only input."""

    id: str
    title: str
    description: str
    image: str
    mem_limit: str
    cpu_limit: float
    pids_limit: int
    shm_size: str
    gpu_policy: str
    students_per_gpu: int | None = None  # with gpu_policy shared
    datasets: dict[str, str] = {}  # name -> host folder, mounted read-only
    dataset_classes: dict[str, str] = {}  # name -> open | pseudonymised
    students_readme: str | None = None  # host path of the course's LISEZMOI.md, if it has one


STUDENTS_README = "LISEZMOI.md"  # the students' page of a course; README.md is the instructors'


def _students_readme(course_folder: Path) -> str | None:
    path = course_folder / STUDENTS_README
    return str(path) if path.is_file() else None


def image_tag(image: str) -> str:
    """The local tag a built image carries; no registry is ever involved."""
    return f"classhub/{image}:latest"


class Platform(BaseModel):
    """A loaded site: its config, where it came from, and its courses by id."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    site: Site
    site_file: Path
    courses: dict[str, Course]

    def profile(self, course_id: str) -> CourseProfile:
        course = self.courses[course_id]
        gpu = course.gpu or self.site.gpu.course_default()
        limits = self.site.resources.model_copy(
            update=course.resources.model_dump(exclude_none=True)
        )
        return CourseProfile(
            id=course_id,
            title=course.title,
            description=course.description,
            image=image_tag(course.image),
            mem_limit=limits.mem_limit,
            cpu_limit=limits.cpu_limit,
            pids_limit=limits.pids_limit,
            shm_size=limits.shm_size,
            gpu_policy=gpu.policy,
            students_per_gpu=gpu.students_per_gpu,
            datasets={d.name: str(d.path) for d in course.datasets},
            dataset_classes={d.name: d.classification for d in course.datasets},
            students_readme=_students_readme(self.site.courses_dir / course_id),
        )

    def gpu_courses(self) -> dict[str, str]:
        """Courses whose policy gives a GPU, with that policy."""
        return {cid: p.gpu_policy for cid, p in self.profiles().items() if p.gpu_policy != "none"}

    def profiles(self) -> dict[str, CourseProfile]:
        return {course_id: self.profile(course_id) for course_id in sorted(self.courses)}

    def course_images(self) -> list[str]:
        """Image recipe names the courses use, each once, in a stable order."""
        return sorted({course.image for course in self.courses.values()})
