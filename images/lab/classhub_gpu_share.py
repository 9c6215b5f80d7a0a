"""The memory cap of a shared GPU: with CLASSHUB_GPU_MEMORY_FRACTION set (the spawner sets it for a
`shared` course), PyTorch's caching allocator is limited to that fraction of the GPU's memory.

Loaded at every interpreter start by classhub_gpu_share.pth, installed in the image's
environment, not in the student's home. It costs nothing at start: it does not import torch; it
waits for `torch.cuda` to be imported and then queues the cap with PyTorch's own lazy-call queue,
so the cap is applied when the student's code first touches CUDA (initialising CUDA at every
kernel start would cost memory and seconds). A soft cap: it binds PyTorch's allocator only, and
code that calls torch.cuda.set_per_process_memory_fraction itself can change it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys

ENV = "CLASSHUB_GPU_MEMORY_FRACTION"


def _fraction() -> float | None:
    try:
        value = float(os.environ.get(ENV, ""))
    except ValueError:
        return None
    return value if 0 < value <= 1 else None


def cap(cuda_module, fraction: float) -> None:
    """Queue the cap on every visible device, to run inside PyTorch's CUDA initialisation."""

    def apply_cap():
        for device in range(cuda_module.device_count()):
            cuda_module.set_per_process_memory_fraction(fraction, device)

    apply_cap.classhub_fraction = fraction  # lets a test see what was queued
    cuda_module._lazy_call(apply_cap)


class _WhenTorchCudaLoads(importlib.abc.MetaPathFinder):
    def __init__(self, fraction: float):
        self.fraction = fraction

    def find_spec(self, fullname, path, target=None):
        if fullname != "torch.cuda":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module
        fraction = self.fraction

        def exec_module(module):
            load(module)
            cap(module, fraction)

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    fraction = _fraction()
    if fraction is not None and fraction < 1 and "torch.cuda" not in sys.modules:
        sys.meta_path.insert(0, _WhenTorchCudaLoads(fraction))


install()
