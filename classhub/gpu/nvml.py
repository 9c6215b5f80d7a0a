"""NVML, the NVIDIA driver's library: the node's GPUs, their memory, which processes use them.

`source()` is the one seam where NVML is replaced: with `CLASSHUB_FAKE_NVML=<file.json>` in the
environment, a fake inventory read from that file stands in for the driver. Only the tests set
it, because no machine that runs them has an NVIDIA GPU; everything above this module is real.
Standard library and nvidia-ml-py only (the GPU check script imports it on a bare GPU machine).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from classhub.gpu.devices import Device

FAKE_NVML_ENV = "CLASSHUB_FAKE_NVML"


class NvmlUnavailable(Exception):
    """No NVIDIA driver library on this machine (or it cannot be initialised)."""


@dataclass(frozen=True)
class Activity:
    """Which host processes computed on a GPU since a moment, and on which devices that could
    be measured at all (NVML has no per-process use on MIG slices): a holder of a device that
    was not measured is never judged idle."""

    busy_pids: frozenset[int]
    measured: frozenset[str]  # UUIDs


class Nvml(Protocol):
    def devices(self, node: str) -> list[Device]:
        """Every GPU, and every MIG slice of a GPU in MIG mode (whose GPU is then not listed
        as a device of its own: it can only be given out by slice)."""

    def memory_used_mib(self) -> dict[str, int]:
        """Memory in use by UUID (GPUs and slices)."""

    def activity(self, since_s: float) -> Activity:
        """Processes that computed on any GPU since `since_s` (epoch seconds)."""


def _wrapped(method):
    """Any NVML error (a lost GPU, no permission) becomes NvmlUnavailable, which every caller
    handles: a spawn is refused with a reason, status says so, the culler waits a round."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except self.nv.NVMLError as error:
            raise NvmlUnavailable(f"NVML: {error}") from None

    return call


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

    def _slices(self, handle) -> list | None:
        """The MIG slices of a GPU in MIG mode (maybe none yet); None when MIG is off."""
        nv = self.nv
        try:
            current, _pending = nv.nvmlDeviceGetMigMode(handle)
        except (nv.NVMLError_NotSupported, nv.NVMLError_FunctionNotFound):  # a GPU without MIG
            return None
        if current != nv.NVML_DEVICE_MIG_ENABLE:
            return None
        slices = []
        for index in range(nv.nvmlDeviceGetMaxMigDeviceCount(handle)):
            try:
                slices.append(nv.nvmlDeviceGetMigDeviceHandleByIndex(handle, index))
            except nv.NVMLError_NotFound:  # an empty position
                continue
        return slices

    def _describe(self, handle, node: str, parent: str | None = None) -> Device:
        nv = self.nv
        name = nv.nvmlDeviceGetName(handle)
        uuid = nv.nvmlDeviceGetUUID(handle)
        memory = nv.nvmlDeviceGetMemoryInfo(handle).total // 2**20
        return Device(node=node, uuid=_text(uuid), name=_text(name), memory_mib=int(memory),
                      parent=parent)

    @_wrapped
    def devices(self, node: str) -> list[Device]:
        found = []
        for handle in self._handles():
            gpu = self._describe(handle, node)
            slices = self._slices(handle)
            if slices is None:
                found.append(gpu)
            else:  # in MIG mode: its slices only; none at all until the admin creates some
                found.extend(self._describe(s, node, parent=gpu.uuid) for s in slices)
        return found

    @_wrapped
    def memory_used_mib(self) -> dict[str, int]:
        used = {}
        for handle in self._handles():
            for device in [handle, *(self._slices(handle) or [])]:
                used[_text(self.nv.nvmlDeviceGetUUID(device))] = (
                    self.nv.nvmlDeviceGetMemoryInfo(device).used // 2**20)
        return used

    @_wrapped
    def activity(self, since_s: float) -> Activity:
        nv = self.nv
        busy, measured = set(), set()
        for handle in self._handles():
            uuid = _text(nv.nvmlDeviceGetUUID(handle))
            try:
                samples = nv.nvmlDeviceGetProcessUtilization(handle, int(since_s * 1e6))
            except nv.NVMLError_NotFound:  # measured: no process computed since then
                measured.add(uuid)
                continue
            except nv.NVMLError:  # not supported (MIG mode) or unavailable: not measured
                continue
            measured.add(uuid)
            busy.update(s.pid for s in samples if s.smUtil > 0 or s.memUtil > 0)
        return Activity(frozenset(busy), frozenset(measured))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class FakeNvml:
    """Stands in for the driver in tests (no GPU here). The file is read at every call, so a
    test changes what NVML reports by rewriting it:

        {"gpus": [{"uuid": "GPU-...", "name": "...", "memory_mib": 81920, "used_mib": 0,
                   "mig": [{"uuid": "MIG-...", "name": "1g.10gb", "memory_mib": 9984}]}],
         "busy_pids": [1234], "unmeasured": ["GPU-..."]}

    As with the driver, MIG slices are never measured; whole GPUs are unless listed under
    "unmeasured".
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

    def activity(self, since_s: float) -> Activity:
        data = self._read()
        unmeasured = set(data.get("unmeasured", []))
        measured = {g["uuid"] for g in data.get("gpus", [])
                    if not g.get("mig") and g["uuid"] not in unmeasured}
        return Activity(frozenset(data.get("busy_pids", [])), frozenset(measured))


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
