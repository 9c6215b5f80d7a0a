"""The Docker engine, as classhub uses it: the student network and the containers it owns."""

from __future__ import annotations

import docker
from docker.errors import DockerException, NotFound

from classhub.config.model import Site
from classhub.errors import ClasshubError

INSTANCE_LABEL = "org.classhub.instance"
# Whose server a student container is, and for which course (set by the spawner).
USER_LABEL = "org.classhub.user"
COURSE_LABEL = "org.classhub.course"


def client() -> docker.DockerClient:
    try:
        engine = docker.from_env(timeout=120)
        engine.ping()
    except DockerException as exc:
        raise ClasshubError(
            f"no Docker engine answers ({exc.__class__.__name__})",
            "run `scripts/ensure-engine` (installs docker.io and starts dockerd) or start Docker",
        ) from exc
    return engine


def network_name(site: Site) -> str:
    return f"{site.name}-students"


def ensure_student_network(engine: docker.DockerClient, site: Site) -> str:
    """Create the students' bridge network once; return its gateway, where the hub API listens.

    Containers on it cannot talk to each other (ICC off) and, when `internal`, have no route out.
    """
    name = network_name(site)
    try:
        network = engine.networks.get(name)
    except NotFound:
        network = engine.networks.create(
            name,
            driver="bridge",
            internal=site.network.internal,
            options={"com.docker.network.bridge.enable_icc": "false"},
            labels={INSTANCE_LABEL: name},
        )
        network.reload()
    config = network.attrs["IPAM"]["Config"]
    if not config or not config[0].get("Gateway"):
        raise ClasshubError(f"Docker network {name} has no gateway address",
                            f"remove it (`docker network rm {name}`) and start again")
    if network.attrs.get("Internal") != site.network.internal:
        raise ClasshubError(
            f"Docker network {name} has internal={network.attrs.get('Internal')}, "
            f"the site says {site.network.internal}",
            f"stop the platform, `docker network rm {name}`, and start again",
        )
    return config[0]["Gateway"]


def instance_label(site: Site) -> str:
    """The label filter that picks this instance's student containers."""
    return f"{INSTANCE_LABEL}={network_name(site)}"


def student_containers(engine: docker.DockerClient, site: Site, all_states: bool = False):
    return engine.containers.list(all=all_states, filters={"label": instance_label(site)})


def student_container_records(engine: docker.DockerClient, site: Site, *labels: str) -> list[dict]:
    """This instance's student containers in every state, as the engine's API lists them (one
    call, no inspection per container), narrowed to those that also carry `labels`."""
    return engine.api.containers(all=True, filters={"label": [instance_label(site), *labels]})


def remove_student_network(engine: docker.DockerClient, site: Site) -> None:
    try:
        engine.networks.get(network_name(site)).remove()
    except NotFound:
        pass
