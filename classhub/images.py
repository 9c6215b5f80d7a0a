"""Building the base and course images on this machine, with no registry.

The base image is a Debian bookworm root filesystem made by mmdebstrap and `docker import`ed;
course images build FROM it. Each image carries the hash of its recipe in a label and is rebuilt
only when that hash changes (recipe files, mirror, CA certificates, wheelhouse, torch variant).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from docker.errors import NotFound

from classhub import engine as engines
from classhub.config.model import Images, Platform, image_tag
from classhub.errors import ClasshubError

RECIPE_LABEL = "org.classhub.recipe"
SUITE = "bookworm"
BASE_BUILD = "mmdebstrap-minbase-1"  # bump when build_base() changes what it makes
Say = Callable[[str], None]


def _digest(*parts: bytes) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(len(part).to_bytes(8, "big"))
        sha.update(part)
    return sha.hexdigest()[:16]


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def _folder_bytes(folder: Path) -> list[bytes]:
    parts = []
    for path in _files(folder):
        parts += [str(path.relative_to(folder)).encode(), path.read_bytes()]
    return parts


def ca_certificates(images: Images) -> list[Path]:
    folder = images.extra_ca_certificates
    return sorted(folder.glob("*.crt")) if folder.is_dir() else []


def wheels(images: Images) -> list[Path]:
    return sorted(images.wheelhouse.glob("*.whl")) if images.wheelhouse else []


@dataclass(frozen=True)
class Recipe:
    name: str
    folder: Path
    digest: str

    @property
    def tag(self) -> str:
        return image_tag(self.name)

    @property
    def pinned_tag(self) -> str:
        return f"classhub/{self.name}:{self.digest}"


def base_recipe(platform: Platform) -> Recipe:
    images = platform.site.images
    folder = platform.site.images_dir / "base"
    certs = [p.read_bytes() for p in ca_certificates(images)]
    digest = _digest(BASE_BUILD.encode(), SUITE.encode(), images.debian_mirror.encode(),
                     *_folder_bytes(folder), *certs)
    return Recipe("base", folder, digest)


def course_recipe(platform: Platform, name: str, base: Recipe) -> Recipe:
    images = platform.site.images
    folder = platform.site.images_dir / name
    wheel_ids = [f"{w.name}:{w.stat().st_size}".encode() for w in wheels(images)]
    digest = _digest(base.digest.encode(), images.torch.encode(), *_folder_bytes(folder),
                     *wheel_ids)
    return Recipe(name, folder, digest)


def _current(engine, recipe: Recipe) -> bool:
    try:
        image = engine.images.get(recipe.tag)
    except NotFound:
        return False
    return (image.labels or {}).get(RECIPE_LABEL) == recipe.digest


def _stream(argv: list[str], say: Say, prefix: str, env: dict | None = None) -> None:
    say(f"[{prefix}] $ {' '.join(argv[:3])} ...")
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})}, text=True, bufsize=1)
    tail: list[str] = []
    for line in process.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-30:]
        say(f"[{prefix}] {line}")
    if process.wait() != 0:
        raise ClasshubError(f"building {prefix} failed (exit {process.returncode}):\n"
                            + "\n".join(tail))


def build_base(platform: Platform, engine, say: Say) -> Recipe:
    recipe = base_recipe(platform)
    if _current(engine, recipe):
        say(f"[base] {recipe.tag} is current ({recipe.digest})")
        return recipe
    if not shutil.which("mmdebstrap"):
        raise ClasshubError("mmdebstrap is not installed", "apt-get install mmdebstrap")
    images = platform.site.images
    packages = [
        line.strip() for line in (recipe.folder / "packages.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    with tempfile.TemporaryDirectory(prefix="classhub-base-") as tmp:
        certs = Path(tmp) / "certs"
        certs.mkdir()
        for cert in ca_certificates(images):
            shutil.copy(cert, certs / cert.name)
        rootfs = Path(tmp) / "rootfs.tar"
        _stream(
            [
                "mmdebstrap", "--variant=minbase", f"--include={','.join(packages)}",
                "--aptopt=Acquire::Retries \"3\"",
                f"--customize-hook=sync-in {certs} /usr/local/share/ca-certificates",
                f"--customize-hook=upload {recipe.folder / 'setup.sh'} /tmp/setup.sh",
                '--customize-hook=chroot "$1" sh /tmp/setup.sh',
                SUITE, str(rootfs), images.debian_mirror,
            ],
            say, "base",
        )
        say(f"[base] docker import -> {recipe.pinned_tag}")
        changes = [
            f"LABEL {RECIPE_LABEL}={recipe.digest}",
            "ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            'CMD ["/bin/bash"]',
        ]
        engine.api.import_image_from_file(
            str(rootfs), repository="classhub/base", tag=recipe.digest, changes=changes
        )
    engine.images.get(recipe.pinned_tag).tag("classhub/base", "latest")
    return recipe


def _builder_env() -> dict[str, str]:
    """BuildKit where the CLI can drive it, the classic builder otherwise.

    Debian's docker.io CLI (20.10) has BuildKit built in; newer CLIs need the buildx plugin.
    """
    if os.environ.get("DOCKER_BUILDKIT"):
        return {}
    buildx = subprocess.run(["docker", "buildx", "version"], capture_output=True)
    if buildx.returncode == 0:
        return {"DOCKER_BUILDKIT": "1"}
    version = subprocess.run(["docker", "version", "--format", "{{.Client.Version}}"],
                             capture_output=True, text=True).stdout.strip()
    major = int(version.split(".")[0]) if version[:1].isdigit() else 0
    return {"DOCKER_BUILDKIT": "1" if 0 < major < 23 else "0"}


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _check_torch_source(platform: Platform) -> None:
    images = platform.site.images
    if images.torch == "cpu" and not any("+cpu" in w.name for w in wheels(images)
                                         if w.name.startswith("torch-")):
        raise ClasshubError(
            "images.torch is cpu, but no CPU build of torch is in the wheelhouse"
            + (f" ({images.wheelhouse})" if images.wheelhouse else " (none is set)"),
            "pip download --no-deps torch==2.13.0+cpu -d WHEELHOUSE and set images.wheelhouse, "
            "or set images.torch: cuda",
        )


def build_course_image(platform: Platform, engine, name: str, base: Recipe, say: Say) -> Recipe:
    recipe = course_recipe(platform, name, base)
    if _current(engine, recipe):
        say(f"[{name}] {recipe.tag} is current ({recipe.digest})")
        return recipe
    _check_torch_source(platform)
    with tempfile.TemporaryDirectory(prefix=f"classhub-{name}-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(recipe.folder, context)
        wheelhouse = context / "wheelhouse"
        wheelhouse.mkdir(exist_ok=True)
        (wheelhouse / "README").write_text("Wheels pip may install from (--find-links).\n")
        for wheel in wheels(platform.site.images):
            _link_or_copy(wheel, wheelhouse / wheel.name)
        env = _builder_env()
        argv = [
            "docker", "build", "--pull=false", "--force-rm",
            "--build-arg", f"BASE_IMAGE={base.pinned_tag}",
            "--build-arg", f"TORCH_VARIANT={platform.site.images.torch}",
            "--label", f"{RECIPE_LABEL}={recipe.digest}",
            "-t", recipe.pinned_tag, "-t", recipe.tag, str(context),
        ]
        if env.get("DOCKER_BUILDKIT") == "1":
            argv[2:2] = ["--progress=plain"]
        say(f"[{name}] building with {'BuildKit' if env.get('DOCKER_BUILDKIT') == '1' else 'the classic builder'}")
        _stream(argv, say, name, env)
    return recipe


def build(platform: Platform, courses: list[str] | None = None, say: Say = print) -> list[Recipe]:
    """Build the base image and the images of the given courses (all when None)."""
    if courses:
        unknown = sorted(set(courses) - set(platform.courses))
        if unknown:
            raise ClasshubError(f"no course {', '.join(unknown)}",
                                f"courses: {', '.join(sorted(platform.courses))}")
        names = sorted({platform.courses[c].image for c in courses})
    else:
        names = platform.course_images()
    engine = engines.client()
    base = build_base(platform, engine, say)
    return [base] + [build_course_image(platform, engine, n, base, say) for n in names]


def default_say(line: str) -> None:
    print(line, flush=True, file=sys.stdout)
