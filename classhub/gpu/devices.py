"""What a GPU is to classhub: something a student can be given, keyed by (node, UUID).

A whole GPU and a MIG slice are both devices; a slice names its GPU. Never keyed by index: the
index changes with the driver and the node, the UUID does not. Standard library only, so that the
GPU check script can import it on a machine without the project's dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class DeviceKey:
    node: str
    uuid: str

    def __str__(self) -> str:
        return f"{self.node}/{self.uuid}"


@dataclass(frozen=True)
class Device:
    node: str
    uuid: str
    name: str = "GPU"
    memory_mib: int | None = None
    parent: str | None = None  # a MIG slice: the UUID of its GPU

    @property
    def key(self) -> DeviceKey:
        return DeviceKey(self.node, self.uuid)

    @property
    def is_mig(self) -> bool:
        return self.parent is not None
