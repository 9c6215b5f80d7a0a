"""NVML, the NVIDIA driver's library: the node's GPUs, their memory, which processes use them.

`source()` is the one seam where NVML is replaced: with `CLASSHUB_FAKE_NVML=<file.json>` in the
environment, a fake inventory read from that file stands in for the driver. Only the tests set
it, because no machine that runs them has an NVIDIA GPU; everything above this module is real.
Standard library and nvidia-ml-py only (the GPU check script imports it on a bare GPU machine).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol

from classhub.gpu.devices import Device

FAKE_NVML_ENV = "CLASSHUB_FAKE_NVML"


class NvmlUnavailable(Exception):
    """No NVIDIA driver library on this machine (or it cannot be initialised)."""


class Nvml(Protocol):
    def devices(self, node: str) -> list[Device]:
        """Every GPU, and every MIG slice of a GPU in MIG mode (whose GPU is then not listed
        as a device of its own: it can only be given out by slice)."""

    def memory_used_mib(self) -> dict[str, int]:
        """Memory in use by UUID (GPUs and slices)."""

    def busy_pids(self, since_s: float) -> set[int]:
        """Host PIDs of processes that computed on any GPU since `since_s` (epoch seconds)."""


class DriverNvml:
    """The real thing, through nvidia-ml-py."""

    def __init__(self):
        try:
            import pynvml
        except ImportError as error:
            raise NvmlUnavailable(f"nvidia-ml-py is not installed ({error})") from None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as error:
            raise NvmlUnavailable(f"NVML cannot start: {error}") from None
        self.nv = pynvml

    def _handles(self):
        nv = self.nv
        for index in range(nv.nvmlDeviceGetCount()):
            yield nv.nvmlDeviceGetHandleByIndex(index)

    def _slices(self, handle):
        nv = self.nv
        try:
            current, _pending = nv.nvmlDeviceGetMigMode(handle)
        except nv.NVMLError:  # a GPU without MIG support
            return []
        if current != nv.NVML_DEVICE_MIG_ENABLE:
            return []
        slices = []
        for index in range(nv.nvmlDeviceGetMaxMigDeviceCount(handle)):
            try:
                slices.append(nv.nvmlDeviceGetMigDeviceHandleByIndex(handle, index))
            except nv.NVMLError:  # an empty position
                continue
        return slices

    def _describe(self, handle, node: str, parent: str | None = None) -> Device:
        nv = self.nv
        name = nv.nvmlDeviceGetName(handle)
        uuid = nv.nvmlDeviceGetUUID(handle)
        memory = nv.nvmlDeviceGetMemoryInfo(handle).total // 2**20
        return Device(node=node, uuid=_text(uuid), name=_text(name), memory_mib=int(memory),
                      parent=parent)

    def devices(self, node: str) -> list[Device]:
        found = []
        for handle in self._handles():
            gpu = self._describe(handle, node)
            slices = self._slices(handle)
            if slices:
                found.extend(self._describe(s, node, parent=gpu.uuid) for s in slices)
            else:
                found.append(gpu)
        return found

    def memory_used_mib(self) -> dict[str, int]:
        used = {}
        for handle in self._handles():
            used[_text(self.nv.nvmlDeviceGetUUID(handle))] = (
                self.nv.nvmlDeviceGetMemoryInfo(handle).used // 2**20)
            for piece in self._slices(handle):
                used[_text(self.nv.nvmlDeviceGetUUID(piece))] = (
                    self.nv.nvmlDeviceGetMemoryInfo(piece).used // 2**20)
        return used

    def busy_pids(self, since_s: float) -> set[int]:
        nv = self.nv
        busy = set()
        for handle in self._handles():
            try:
                samples = nv.nvmlDeviceGetProcessUtilization(handle, int(since_s * 1e6))
            except nv.NVMLError:  # no sample since then, or not supported (MIG)
                continue
            busy.update(s.pid for s in samples if s.smUtil > 0 or s.memUtil > 0)
        return busy


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class FakeNvml:
    """Stands in for the driver in tests (no GPU here). The file is read at every call, so a
    test changes what NVML reports by rewriting it:

        {"gpus": [{"uuid": "GPU-...", "name": "...", "memory_mib": 81920, "used_mib": 0,
                   "mig": [{"uuid": "MIG-...", "name": "1g.10gb", "memory_mib": 9984}]}],
         "busy_pids": [1234]}
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError) as error:
            raise NvmlUnavailable(f"fake NVML file {self.path}: {error}") from None

    def devices(self, node: str) -> list[Device]:
        found = []
        for gpu in self._read().get("gpus", []):
            if gpu.get("mig"):
                found.extend(Device(node, s["uuid"], s.get("name", "MIG"), s.get("memory_mib"),
                                    parent=gpu["uuid"]) for s in gpu["mig"])
            else:
                found.append(Device(node, gpu["uuid"], gpu.get("name", "GPU"),
                                    gpu.get("memory_mib")))
        return found

    def memory_used_mib(self) -> dict[str, int]:
        used = {}
        for gpu in self._read().get("gpus", []):
            used[gpu["uuid"]] = gpu.get("used_mib", 0)
            for piece in gpu.get("mig", []):
                used[piece["uuid"]] = piece.get("used_mib", 0)
        return used

    def busy_pids(self, since_s: float) -> set[int]:
        return set(self._read().get("busy_pids", []))


def source() -> Nvml:
    """NVML on this machine: the driver's, or the fake one the tests name. Raises
    NvmlUnavailable where there is neither."""
    fake = os.environ.get(FAKE_NVML_ENV)
    if fake:
        return FakeNvml(Path(fake))
    return DriverNvml()


def seam_environment() -> dict[str, str]:
    """What a hub service needs to see the same NVML as the hub (the fake one, in tests)."""
    fake = os.environ.get(FAKE_NVML_ENV)
    return {FAKE_NVML_ENV: fake} if fake else {}
