"""The GPU check's body (run through check.sh): real NVML, real CUDA, real PyTorch.

Sections, each printed with its numbers: the machine; NVML's inventory as classhub reads it
(classhub.gpu.nvml, the code the hub uses); the CNN lab's training throughput on CUDA and on CPU;
two processes under the shared-policy memory fraction (the image's classhub_gpu_share hook),
each allocating within its share and then past it; NVML's per-process view of them.
Exit status 0 when every check holds, 1 otherwise (or without a CUDA device).
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time

FRACTION = 0.25  # a `shared` course with 4 students per GPU
failures: list[str] = []


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def check(ok: bool, what: str) -> None:
    print(f"  [{'ok' if ok else 'FAILED'}] {what}", flush=True)
    if not ok:
        failures.append(what)


def scipy_stand_in() -> None:
    """The lab module smooths its synthetic images with scipy's gaussian_filter; a bare GPU
    machine may lack scipy. Then an equivalent numpy filter (same kernel, same 'reflect' edges)
    takes its place, for data generation only: the model and its training are the lab's."""
    try:
        import scipy.ndimage
        return
    except ImportError:
        pass
    import types

    import numpy as np

    def gaussian_filter(image, sigma, truncate=4.0):
        radius = int(truncate * sigma + 0.5)
        x = np.arange(-radius, radius + 1)
        kernel = np.exp(-0.5 * (x / sigma) ** 2)
        kernel /= kernel.sum()
        out = np.asarray(image, dtype=np.float64)
        for axis in range(out.ndim):
            padded = np.pad(out, [(radius, radius) if a == axis else (0, 0)
                                  for a in range(out.ndim)], mode="symmetric")
            out = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="valid"), axis,
                                      padded)
        return out

    scipy = types.ModuleType("scipy")
    ndimage = types.ModuleType("scipy.ndimage")
    ndimage.gaussian_filter = gaussian_filter
    scipy.ndimage = ndimage
    sys.modules.update({"scipy": scipy, "scipy.ndimage": ndimage})
    print("  scipy is not installed: its gaussian_filter is replaced by a numpy equivalent "
          "(image generation only)")


def machine() -> bool:
    import torch

    section("machine")
    print(f"  host {socket.gethostname()}, {platform.platform()}, Python {platform.python_version()}"
          f", {os.cpu_count()} CPUs")
    print(f"  torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"available: {torch.cuda.is_available()}")
    if torch.cuda.is_available():
        print(f"  device 0: {torch.cuda.get_device_name(0)}")
    return torch.cuda.is_available()


def inventory() -> None:
    from classhub.gpu import nvml

    section("NVML inventory (classhub.gpu.nvml, as the hub reads it)")
    try:
        driver = nvml.DriverNvml()
    except nvml.NvmlUnavailable as error:
        check(False, f"NVML: {error}")
        return
    devices = driver.devices(socket.gethostname())
    used = driver.memory_used_mib()
    for d in devices:
        kind = f"MIG slice of {d.parent}" if d.is_mig else "GPU"
        print(f"  {d.key}  {d.name}  {kind}  {used.get(d.uuid, '?')}/{d.memory_mib} MiB used")
    check(bool(devices) and all(d.uuid.startswith(("GPU-", "MIG-")) for d in devices),
          f"{len(devices)} device(s), each keyed by node and UUID")


def training(has_cuda: bool) -> None:
    import torch

    scipy_stand_in()
    import cnn_imagerie as lab

    section("CNN lab (TP 03) training throughput")
    n, epochs, batch = 4096, 2, 128
    X, y = lab.generer_fantomes(n, graine=0)
    rates = {}
    for name in (["cuda"] if has_cuda else []) + ["cpu"]:
        device = torch.device(name)
        lab.fixer_graines(0, threads=None)
        model = lab.PetitCNN()
        lab.entrainer(model, X[:batch * 2], y[:batch * 2], epoques=1, taille_lot=batch,
                      device=device)  # warm-up: CUDA context, cuDNN choices
        if name == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        losses = lab.entrainer(model, X, y, epoques=epochs, taille_lot=batch, device=device)
        if name == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        rates[name] = n * epochs / seconds
        accuracy = lab.exactitude(model, *lab.generer_fantomes(512, graine=1), device=device)
        print(f"  {name:>4}: {rates[name]:10.0f} samples/s  ({n} images x {epochs} epochs, "
              f"batch {batch}, {seconds:.2f} s; loss {losses[0]:.3f} -> {losses[-1]:.3f}, "
              f"test accuracy {accuracy:.3f})")
    if has_cuda:
        print(f"  ratio CUDA / CPU: {rates['cuda'] / rates['cpu']:.1f}x "
              f"(CPU threads: {torch.get_num_threads()})")
        check(rates["cuda"] > rates["cpu"], "training is faster on the GPU than on the CPU")


SHARE_CHILD = r"""
import json, os, sys, time
import classhub_gpu_share  # what the image's classhub_gpu_share.pth does at start
import torch
out = {"pid": os.getpid(), "initialised_before_use": torch.cuda.is_initialized()}
total = torch.cuda.get_device_properties(0).total_memory
within = torch.empty(int(total * 0.15), dtype=torch.uint8, device="cuda")  # 15% < 25%
out["within_share_gib"] = round(within.numel() / 2**30, 1)
try:
    past = torch.empty(int(total * 0.15), dtype=torch.uint8, device="cuda")  # 30% > 25%
    out["past_share"] = "allocated"
except torch.cuda.OutOfMemoryError as error:
    out["past_share"] = "refused: " + str(error).splitlines()[0][:160]
out["still_works"] = float(torch.ones(4, device="cuda").sum())
print(json.dumps(out), flush=True)
time.sleep(float(sys.argv[1]))  # hold the memory while the parent reads NVML
"""


def shared_cap(has_cuda: bool) -> None:
    section(f"two processes sharing one GPU, each capped to {FRACTION:.0%} of its memory")
    if not has_cuda:
        print("  skipped: no CUDA device")
        return
    env = {**os.environ, "CLASSHUB_GPU_MEMORY_FRACTION": str(FRACTION)}
    children = [subprocess.Popen([sys.executable, "-c", SHARE_CHILD, "8"], env=env,
                                 stdout=subprocess.PIPE, text=True) for _ in range(2)]
    reports = [json.loads(child.stdout.readline() or "{}") for child in children]
    pids = [r.get("pid") for r in reports]
    for report in reports:
        print(f"  {json.dumps(report)}")
    nvml_view()
    for child in children:
        child.wait(timeout=60)
    for report in reports:
        check(report.get("initialised_before_use") is False,
              f"pid {report.get('pid')}: CUDA not initialised before the first use")
        check(str(report.get("past_share", "")).startswith("refused"),
              f"pid {report.get('pid')}: past its share, the allocation is refused cleanly")
        check(report.get("still_works") == 4.0,
              f"pid {report.get('pid')}: still computes after the refusal")
    print(f"  (pids {pids})")


def nvml_view() -> None:
    from classhub.gpu import nvml

    try:
        driver = nvml.DriverNvml()
    except nvml.NvmlUnavailable as error:
        print(f"  NVML: {error}")
        return
    nv = driver.nv
    for handle in driver._handles():
        for proc in nv.nvmlDeviceGetComputeRunningProcesses(handle):
            used = (proc.usedGpuMemory or 0) // 2**20
            print(f"  NVML: pid {proc.pid} holds {used} MiB on {nvml._text(nv.nvmlDeviceGetUUID(handle))}")
    activity = driver.activity(time.time() - 10)
    print(f"  NVML activity in the last 10 s (what the GPU-idle culler reads): busy pids "
          f"{sorted(activity.busy_pids)}, measured devices {sorted(activity.measured)}")


def main() -> int:
    started = time.perf_counter()
    has_cuda = machine()
    inventory()
    training(has_cuda)
    shared_cap(has_cuda)
    section("summary")
    if not has_cuda:
        failures.append("no CUDA device: only the CPU part ran")
    print(f"  {len(failures)} failure(s) in {time.perf_counter() - started:.0f} s")
    for failure in failures:
        print(f"  - {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
