"""How a container gets its GPU, and how the engine remembers it.

One binding everywhere: the NVIDIA runtime with `NVIDIA_VISIBLE_DEVICES=<uuid>`, which the NVIDIA
container toolkit honours for plain containers and for Swarm services alike (services have no
device requests). The allocation is written into the container's labels, so that the hub
rebuilds its table from the engine after a restart, and `classhub status` reads it back.
"""

from __future__ import annotations

from fractions import Fraction

from classhub.gpu.allocator import Allocation
from classhub.gpu.devices import DeviceKey

PREFIX = "org.classhub.gpu."
UUID_LABEL = PREFIX + "uuid"
MEMORY_FRACTION_ENV = "CLASSHUB_GPU_MEMORY_FRACTION"  # read by the image's classhub_gpu_share
ENV_KEYS = ("NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", MEMORY_FRACTION_ENV)
# Of each share, PyTorch's allocator gets 95%: the rest is for what it does not count (each
# process's CUDA context, cuBLAS workspaces), so that N full shares still fit on the GPU.
ALLOCATOR_PART = 0.95


def labels(allocation: Allocation) -> dict[str, str]:
    return {
        PREFIX + "node": allocation.device.node,
        UUID_LABEL: allocation.device.uuid,
        PREFIX + "share": str(allocation.share),
        PREFIX + "policy": allocation.policy,
        PREFIX + "holder": allocation.holder,
        PREFIX + "course": allocation.course,
    }


def from_labels(container_labels: dict[str, str]) -> Allocation | None:
    """The allocation a container's labels record; None for a container without a GPU."""
    try:
        return Allocation(
            holder=container_labels[PREFIX + "holder"],
            course=container_labels[PREFIX + "course"],
            device=DeviceKey(container_labels[PREFIX + "node"], container_labels[UUID_LABEL]),
            share=Fraction(container_labels[PREFIX + "share"]),
            policy=container_labels[PREFIX + "policy"],
        )
    except (KeyError, ValueError, ZeroDivisionError):
        return None


def environment(allocation: Allocation | None) -> dict[str, str]:
    if allocation is None:
        # Hides every GPU even where the NVIDIA runtime is the engine's default.
        return {"NVIDIA_VISIBLE_DEVICES": "void"}
    env = {
        "NVIDIA_VISIBLE_DEVICES": allocation.device.uuid,
        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
    }
    if allocation.share < 1:
        env[MEMORY_FRACTION_ENV] = memory_fraction(allocation.share)
    return env


def memory_fraction(share: Fraction) -> str:
    return f"{float(share) * ALLOCATOR_PART:.4g}"


def host_config(allocation: Allocation | None, runtime: str) -> dict:
    return {"runtime": runtime} if allocation is not None else {}
