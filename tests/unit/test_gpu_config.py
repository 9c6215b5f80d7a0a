"""GPU settings: policies, the node's GPUs, where they are listed, and what the hub is told."""

from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from traitlets.config import Config

from classhub.config import load_platform
from classhub.errors import ClasshubError, ConfigError
from classhub.gpu import binding, inventory
from classhub.gpu.allocator import GpuTable, Request
from classhub.gpu.culler import Holder, IdleWatch, container_of, gpu_holders
from classhub.gpu.devices import Device
from classhub.gpu.nvml import FAKE_NVML_ENV, FakeNvml
from classhub.hub.config import GPU_CULLER, apply_all

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)
H200 = {"uuid": "GPU-5e0c1a2b-0000", "name": "NVIDIA H200", "memory_mib": 143771}


def _course(site_file: Path, **changes) -> Path:
    course = site_file.parent / "courses" / "demo" / "course.yml"
    data = yaml.safe_load(course.read_text())
    data.update(changes)
    course.write_text(yaml.safe_dump(data))
    return course


def _site(site_file: Path, **changes) -> None:
    data = yaml.safe_load(site_file.read_text())
    data.update(changes)
    site_file.write_text(yaml.safe_dump(data))


def _problems(site_file) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_platform(site_file)
    return caught.value.problems


def test_a_shared_course_says_how_many_students_share_a_gpu(site_file):
    course = _course(site_file, gpu={"policy": "shared"})
    (problem,) = _problems(site_file)
    assert problem.startswith(f"{course}: gpu: ") and "students_per_gpu" in problem
    _course(site_file, gpu={"policy": "shared", "students_per_gpu": 4})
    profile = load_platform(site_file).profile("demo")
    assert (profile.gpu_policy, profile.students_per_gpu) == ("shared", 4)


def test_students_per_gpu_goes_with_the_shared_policy_only(site_file):
    _course(site_file, gpu={"policy": "exclusive", "students_per_gpu": 2})
    assert "students_per_gpu is given exactly when policy is shared" in _problems(site_file)[0]


def test_an_unknown_policy_is_named(site_file):
    course = _course(site_file, gpu={"policy": "half"})
    (problem,) = _problems(site_file)
    assert problem.startswith(f"{course}: gpu.policy: ") and "'mig'" in problem


def test_courses_without_a_gpu_section_take_the_site_default(site_file):
    _site(site_file, gpu={"policy": "shared", "students_per_gpu": 3})
    course = site_file.parent / "courses" / "demo" / "course.yml"
    data = yaml.safe_load(course.read_text())
    data.pop("gpu")
    course.write_text(yaml.safe_dump(data))
    profile = load_platform(site_file).profile("demo")
    assert (profile.gpu_policy, profile.students_per_gpu) == ("shared", 3)


def test_configured_gpus_are_checked_and_keyed_by_node_and_uuid(site_file):
    _site(site_file, gpu={"inventory": "config", "node": "ws1", "devices": [
        H200, {"uuid": "GPU-m", "mig": [{"uuid": "MIG-a", "name": "1g.18gb"},
                                        {"uuid": "MIG-b"}]}]})
    found = inventory.read(load_platform(site_file).site.gpu)
    assert found.source == "config"
    assert [(str(d.key), d.parent) for d in found.devices] == [
        ("ws1/GPU-5e0c1a2b-0000", None), ("ws1/MIG-a", "GPU-m"), ("ws1/MIG-b", "GPU-m")]
    _site(site_file, gpu={"devices": [H200, H200]})
    assert _problems(site_file) == [f"{site_file}: gpu.devices: listed twice: GPU-5e0c1a2b-0000"]
    _site(site_file, gpu={"devices": [{"uuid": "0"}]})
    assert _problems(site_file)[0].startswith(f"{site_file}: gpu.devices.0.uuid: ")


def test_without_nvml_auto_falls_back_to_the_config_and_nvml_fails_loudly(site_file,
                                                                          monkeypatch):
    monkeypatch.setenv(FAKE_NVML_ENV, str(site_file.parent / "missing.json"))
    _site(site_file, gpu={"devices": [H200]})
    found = inventory.read(load_platform(site_file).site.gpu)
    assert found.source == "config" and "missing.json" in found.note
    _site(site_file, gpu={"inventory": "nvml"})
    with pytest.raises(ClasshubError, match="gpu.inventory is nvml but"):
        inventory.read(load_platform(site_file).site.gpu)


def test_the_gpu_culler_runs_only_where_a_course_uses_a_gpu(site_file):
    def services(site_file):
        c = Config()
        apply_all(c, load_platform(site_file), gateway="172.30.0.1")
        return {s["name"]: s for s in c.JupyterHub.services}, c

    found, c = services(site_file)
    assert GPU_CULLER not in found
    assert c.CourseSpawner.gpu["runtime"] == "nvidia"
    _course(site_file, gpu={"policy": "exclusive"})
    found, c = services(site_file)
    assert found[GPU_CULLER]["command"][-1] == "classhub.gpu.culler"
    role = next(r for r in c.JupyterHub.load_roles if r["name"] == GPU_CULLER)
    assert set(role["scopes"]) == {"list:users", "read:servers", "delete:servers"}
    _site(site_file, gpu={"idle_release_after_s": 0})
    assert GPU_CULLER not in services(site_file)[0]


def test_a_process_is_mapped_to_its_container_in_both_cgroup_layouts(tmp_path):
    cid = "ab" * 32
    layouts = {
        101: f"12:memory:/docker/{cid}\n11:pids:/docker/{cid}\n",  # cgroup v1
        102: f"0::/system.slice/docker-{cid}.scope\n",  # cgroup v2, systemd driver
        103: "0::/user.slice/user-0.slice/session-1.scope\n",  # not in a container
    }
    for pid, text in layouts.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cgroup").write_text(text)
    assert container_of(101, tmp_path) == cid
    assert container_of(102, tmp_path) == cid
    assert container_of(103, tmp_path) is None
    assert container_of(999, tmp_path) is None  # the process is gone


def test_idle_means_no_computing_for_the_set_time_after_the_grace_period():
    watch = IdleWatch(idle_after_s=600, grace_s=300, watching_since_s=1000)
    new = Holder("c-new", "ana", "m2", "GPU-a", started_s=1100)
    old = Holder("c-old", "ben", "m2", "GPU-b", started_s=0)  # started before the culler
    assert watch.observe([new, old], busy=set(), now_s=1500) == []
    assert watch.observe([new, old], busy={"c-new"}, now_s=1600) == [old]  # 600 s since 1000
    assert watch.observe([new, old], busy=set(), now_s=2199) == [old]
    assert watch.observe([new, old], busy=set(), now_s=2200) == [new, old]  # 600 s since 1600
    quick = IdleWatch(idle_after_s=10, grace_s=300, watching_since_s=0)
    assert quick.observe([new], busy=set(), now_s=1399) == []  # still in its grace period
    assert quick.observe([new], busy=set(), now_s=1400) == [new]


def test_check_warns_when_a_course_wants_a_gpu_the_node_does_not_have(site_file, capsys,
                                                                      monkeypatch):
    from classhub.cli import main

    monkeypatch.setenv(FAKE_NVML_ENV, str(site_file.parent / "missing.json"))
    _site(site_file, gpu={"devices": [H200]})
    _course(site_file, gpu={"policy": "mig"})
    assert main(["--site", str(site_file), "check"]) == 0
    out, err = capsys.readouterr()
    assert "GPUs (config): 1 whole, 0 MIG slice(s)" in out
    assert "course demo wants gpu.policy mig but this node has no MIG slice" in err
    _course(site_file, gpu={"policy": "exclusive"})
    assert main(["--site", str(site_file), "check"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_the_culler_sees_gpu_holders_only_and_never_judges_what_nvml_cannot_measure(tmp_path):
    devices = [Device("ws1", "GPU-a"), Device("ws1", "MIG-a1", parent="GPU-m")]
    table = GpuTable(devices)
    ana = table.allocate(Request("ana", "m2", "exclusive"), T0)
    gus = table.allocate(Request("gus", "tp", "mig"), T0)
    listing = [
        {"Id": "c1", "State": "running", "Created": 100, "Labels": binding.labels(ana)},
        {"Id": "c2", "State": "running", "Created": 100, "Labels": binding.labels(gus)},
        {"Id": "c3", "State": "running", "Created": 100, "Labels": {"org.classhub.user": "x"}},
        {"Id": "c4", "State": "exited", "Created": 100, "Labels": binding.labels(ana)},
    ]
    holders = gpu_holders(listing)
    assert [(h.container_id, h.user, h.uuid) for h in holders] == [
        ("c1", "ana", "GPU-a"), ("c2", "gus", "MIG-a1")]
    fake = tmp_path / "nvml.json"
    fake.write_text('{"gpus": [{"uuid": "GPU-a"}, {"uuid": "GPU-m", "mig": [{"uuid": "MIG-a1"}]}],'
                    ' "busy_pids": [7]}')
    activity = FakeNvml(fake).activity(0)
    assert activity.measured == {"GPU-a"} and activity.busy_pids == {7}
