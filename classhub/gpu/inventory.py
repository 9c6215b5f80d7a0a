"""This node's GPUs, as the site config says to list them: NVML, the config, or NVML if present."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from classhub.config.model import SiteGpu
from classhub.errors import ClasshubError
from classhub.gpu import nvml
from classhub.gpu.devices import Device


def node_name(gpu: SiteGpu) -> str:
    return gpu.node or socket.gethostname()


def configured(gpu: SiteGpu) -> list[Device]:
    node = node_name(gpu)
    devices = []
    for d in gpu.devices:
        if d.mig:
            devices.extend(Device(node, s.uuid, s.name, s.memory_mib, parent=d.uuid)
                           for s in d.mig)
        else:
            devices.append(Device(node, d.uuid, d.name, d.memory_mib))
    return devices


@dataclass
class Inventory:
    devices: list[Device]
    source: str  # "nvml", "config" or "none"
    driver: nvml.Nvml | None  # where memory and per-process use can be read
    note: str = ""  # why NVML was not used, when `auto` fell back to the config

    @property
    def settled(self) -> bool:
        """Worth keeping for the hub's lifetime: NVML answered, or the config was asked for.
        A fallback is read again next time (the driver may not have been ready at boot)."""
        return not self.note

    def memory_used_mib(self) -> dict[str, int]:
        if self.driver is None:
            return {}
        try:
            return self.driver.memory_used_mib()
        except nvml.NvmlUnavailable:
            return {}


def read(gpu: SiteGpu) -> Inventory:
    """The node's GPUs. `nvml` fails loudly without the driver; `auto` falls back to the
    config's `devices` and says why."""
    node = node_name(gpu)
    if gpu.inventory == "config":
        return Inventory(configured(gpu), "config", None)
    try:
        driver = nvml.source()
        return Inventory(driver.devices(node), "nvml", driver)
    except nvml.NvmlUnavailable as error:
        if gpu.inventory == "nvml":
            raise ClasshubError(f"gpu.inventory is nvml but {error}",
                                "install the NVIDIA driver, or list the GPUs under gpu.devices "
                                "with gpu.inventory: config") from None
        devices = configured(gpu)
        return Inventory(devices, "config" if devices else "none", None, note=str(error))
