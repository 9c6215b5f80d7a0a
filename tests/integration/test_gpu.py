"""GPU allocation end to end: a real hub spawns real containers with the NVIDIA binding.

No machine that runs these tests has an NVIDIA GPU, so two things stand in, and only these:
- the engine's runtime named `nvidia` is plain runc (`tests/gpu/standin-runtime` registers it;
  `make test` runs it first):
  each container really starts with `runtime=nvidia`, `NVIDIA_VISIBLE_DEVICES=<uuid>` and the
  labels classhub gave it, and these tests read them back; it does not see a GPU;
- NVML is the fake inventory named by CLASSHUB_FAKE_NVML (classhub.gpu.nvml's one seam): three
  GPUs and one in MIG mode with two slices, with memory in use and the PIDs that compute.
What runs on a real GPU is checked by `tests/gpu/check.sh`.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import time
from fractions import Fraction

import docker
import pytest
import requests

from classhub import processes
from classhub.cli import main as classhub
from classhub.engine import INSTANCE_LABEL, network_name
from classhub.gpu.allocator import Allocation
from classhub.gpu.binding import labels as gpu_labels
from classhub.gpu.devices import DeviceKey
from classhub.gpu.nvml import FAKE_NVML_ENV
from classhub.platform import up
from tests.integration.conftest import copy_courses, start_hub, stop_hub

FAKE_GPUS = [
    {"uuid": "GPU-aaaa-0001", "name": "NVIDIA H200", "memory_mib": 143771, "used_mib": 2048},
    {"uuid": "GPU-bbbb-0002", "name": "NVIDIA H200", "memory_mib": 143771, "used_mib": 0},
    {"uuid": "GPU-cccc-0003", "name": "NVIDIA H200", "memory_mib": 143771, "used_mib": 4096},
    {"uuid": "GPU-mmmm-0004", "name": "NVIDIA H200", "memory_mib": 143771,
     "mig": [{"uuid": "MIG-1111", "name": "1g.18gb", "memory_mib": 16384},
             {"uuid": "MIG-2222", "name": "1g.18gb", "memory_mib": 16384}]},
]
COURSES = {  # course -> its gpu section
    "partage": {"policy": "shared", "students_per_gpu": 2},
    "tranches": {"policy": "mig"},
}


def write_fake_nvml(path, busy_pids=()) -> None:
    path.write_text(json.dumps({"gpus": FAKE_GPUS, "busy_pids": list(busy_pids)}))


@pytest.fixture(scope="module")
def fake_nvml(tmp_path_factory):
    runtimes = docker.from_env().info()["Runtimes"]
    if "nvidia" not in runtimes:
        pytest.skip("the engine has no runtime named nvidia: run tests/gpu/standin-runtime "
                    "(`make test` does)")
    if runtimes["nvidia"].get("path") != "runc":
        pytest.skip("this engine has a real NVIDIA runtime: run tests/gpu/check.sh instead")
    path = tmp_path_factory.mktemp("nvml") / "fake-nvml.json"
    write_fake_nvml(path)
    before = os.environ.get(FAKE_NVML_ENV)
    os.environ[FAKE_NVML_ENV] = str(path)  # the hub, its services and the CLI read it
    yield path
    if before is None:
        os.environ.pop(FAKE_NVML_ENV, None)
    else:
        os.environ[FAKE_NVML_ENV] = before


def gpu_hub(folder, **gpu_settings):
    copy_courses(folder, gpu={"policy": "exclusive"})
    for course, gpu in COURSES.items():
        (folder / "courses" / course).mkdir()
        (folder / "courses" / course / "course.yml").write_text(json.dumps(
            {"title": f"Cours {course}", "image": "lab", "gpu": gpu,
             "resources": {"mem_limit": "1G"}}))
    return start_hub(folder, idle_timeout_s=0,
                     site={"gpu": {"node": "ws-test", **gpu_settings}})


@pytest.fixture(scope="module")
def hub(built_images, fake_nvml, tmp_path_factory):
    running = gpu_hub(tmp_path_factory.mktemp("gpu"), idle_release_after_s=0)
    for course, people in {"demo": ["ana", "ben", "chloe"], "partage": ["dan", "eve", "fay"],
                           "tranches": ["gus"]}.items():
        for person in people:
            running.enrol(course, person)
    yield running
    stop_hub(running)


def container(hub, user):
    found = docker.from_env().containers.list(
        filters={"label": f"org.classhub.user={user}",
                 "name": f"{hub.platform.site.name}-{user}"})
    assert len(found) == 1, f"{user} has {len(found)} containers"
    return found[0]


def binding(hub, user) -> dict:
    """What the engine says this user's container was given."""
    c = container(hub, user)
    env = dict(line.split("=", 1) for line in c.attrs["Config"]["Env"])
    return {"runtime": c.attrs["HostConfig"]["Runtime"],
            "visible": env.get("NVIDIA_VISIBLE_DEVICES"),
            "fraction": env.get("CLASSHUB_GPU_MEMORY_FRACTION"),
            "labels": {k.removeprefix("org.classhub.gpu."): v for k, v in c.labels.items()
                       if k.startswith("org.classhub.gpu.")}}


def spawn_ready(hub, user, course):
    reply = hub.spawn(user, {"course": course})
    assert reply.status_code in (201, 202), reply.text
    hub.wait_ready(user)


def test_exclusive_students_get_different_whole_gpus_most_free_memory_first(hub):
    spawn_ready(hub, "ana", "demo")
    spawn_ready(hub, "ben", "demo")
    ana, ben = binding(hub, "ana"), binding(hub, "ben")
    # all GPUs empty: the one with the most free memory first (NVML says GPU-bbbb uses none)
    assert ana["visible"] == "GPU-bbbb-0002" and ben["visible"] == "GPU-aaaa-0001"
    for given in (ana, ben):
        assert given["runtime"] == "nvidia"
        assert given["fraction"] is None
        assert given["labels"]["share"] == "1" and given["labels"]["policy"] == "exclusive"
        assert given["labels"]["node"] == "ws-test"
        assert given["labels"]["uuid"] == given["visible"]


def test_shared_students_share_a_gpu_each_capped_to_their_part(hub):
    spawn_ready(hub, "dan", "partage")
    spawn_ready(hub, "eve", "partage")
    dan, eve = binding(hub, "dan"), binding(hub, "eve")
    assert dan["visible"] == eve["visible"] == "GPU-cccc-0003"  # the only GPU left
    assert dan["fraction"] == eve["fraction"] == "0.475"  # half, less room for CUDA contexts
    assert dan["labels"]["share"] == "1/2" and dan["runtime"] == "nvidia"
    # The cap waits for the student's code: no torch at kernel start, then queued in
    # PyTorch's own lazy CUDA initialisation when torch.cuda is imported.
    found = hub.run_for_result("dan", hub.user_token("dan"), (
        "import os, sys\n"
        "result = {'torch_at_start': 'torch' in sys.modules}\n"
        "import torch\n"
        "result['queued_caps'] = [getattr(call, 'classhub_fraction', None)\n"
        "                         for call, _ in torch.cuda._queued_calls\n"
        "                         if hasattr(call, 'classhub_fraction')]\n"
        "result['home_hook'] = any('gpu_share' in p for p in os.listdir('.'))\n")).result
    assert found == {"torch_at_start": False, "queued_caps": [0.475], "home_hook": False}


def test_a_mig_course_gets_a_slice(hub):
    spawn_ready(hub, "gus", "tranches")
    gus = binding(hub, "gus")
    assert gus["visible"] == "MIG-1111" and gus["labels"]["policy"] == "mig"
    assert gus["labels"]["share"] == "1" and gus["runtime"] == "nvidia"


def test_no_gpu_left_the_student_is_told_who_holds_them_and_gets_no_container(hub):
    reply = hub.spawn("chloe", {"course": "demo"})
    assert reply.status_code == 503, reply.text
    message = reply.json()["message"]
    for holder in ("ana (cours demo, GPU-bbbb-0002)", "ben (cours demo, GPU-aaaa-0001)",
                   "dan (cours partage, GPU-cccc-0003, part 1/2)"):
        assert holder in message
    assert "Aucun GPU libre pour le cours « demo »" in message and "Que faire" in message
    assert not docker.from_env().containers.list(
        all=True, filters={"name": f"{hub.platform.site.name}-chloe"})
    assert hub.spawn("fay", {"course": "partage"}).status_code == 503  # GPU-cccc is full


def test_status_shows_every_gpu_its_holders_and_memory(hub, capsys):
    assert classhub(["--site", str(hub.platform.site_file), "status", "--json"]) == 0
    gpus = {d["uuid"]: d for d in json.loads(capsys.readouterr().out)["gpus"]["devices"]}
    assert set(gpus) == {"GPU-aaaa-0001", "GPU-bbbb-0002", "GPU-cccc-0003", "MIG-1111",
                         "MIG-2222"}
    assert [h["user"] for h in gpus["GPU-cccc-0003"]["holders"]] == ["dan", "eve"]
    assert gpus["GPU-cccc-0003"]["memory_used_mib"] == 4096
    assert gpus["MIG-2222"]["holders"] == [] and gpus["MIG-2222"]["mig_of"] == "GPU-mmmm-0004"
    assert classhub(["--site", str(hub.platform.site_file), "status"]) == 0
    text = capsys.readouterr().out
    assert "ws-test/GPU-bbbb-0002 NVIDIA H200  0/143771 MiB  ana [demo, 1]" in text
    assert "dan [partage, 1/2], eve [partage, 1/2]" in text


def test_after_a_hub_restart_the_table_is_rebuilt_from_the_containers(hub):
    assert processes.hub(hub.state).stop()
    up(hub.platform)
    assert hub.spawn("chloe", {"course": "demo"}).status_code == 503  # still all held
    hub.api.stop_server("ben")  # a stopped server frees its GPU
    spawn_ready(hub, "chloe", "demo")
    assert binding(hub, "chloe")["visible"] == "GPU-aaaa-0001"
    starts = [json.loads(line) for line in
              (hub.state.root / "audit" / "audit.jsonl").read_text().splitlines()]
    chloe = [e for e in starts if e["action"] == "server.start" and e["actor"] == "chloe"]
    assert chloe[-1]["details"]["gpu_device"] == "ws-test/GPU-aaaa-0001"


def test_a_reserved_gpu_goes_to_its_course_only_until_released(hub, capsys):
    site = ["--site", str(hub.platform.site_file)]
    hub.api.stop_server("chloe")
    assert classhub([*site, "gpu", "reserve", "partage", "--until", "+2h",
                      "--note", "TP du jeudi"]) == 0
    made = capsys.readouterr().out
    assert "ws-test/GPU-aaaa-0001 for partage" in made  # the free GPU, not a held one
    reservation = made.split()[1].rstrip(":")
    refused = hub.spawn("chloe", {"course": "demo"})
    assert refused.status_code == 503
    assert "Réservés pour le cours partage jusqu'au" in refused.json()["message"]
    spawn_ready(hub, "fay", "partage")  # the course the GPU is reserved for gets it
    assert binding(hub, "fay")["visible"] == "GPU-aaaa-0001"
    assert classhub([*site, "gpu", "list"]) == 0
    assert f"reserved {reservation} for partage" in capsys.readouterr().out
    assert classhub([*site, "gpu", "release", "--reservation", reservation]) == 0
    assert f"reservation {reservation} of partage cancelled" in capsys.readouterr().out
    assert classhub([*site, "gpu", "list"]) == 0
    assert reservation not in capsys.readouterr().out
    assert classhub([*site, "gpu", "release", "--user", "fay"]) == 0
    hub.wait_stopped("fay")
    spawn_ready(hub, "chloe", "demo")  # reservation gone, GPU free again


SUPERVISION = "/services/classhub-supervision/"


def supervision_page(session, hub) -> tuple[str, str]:
    """The page as the admin's browser gets it (through the hub's OAuth redirects the first
    time), unescaped, and its form token."""
    reply = session.get(f"{hub.url}{SUPERVISION}", timeout=60)
    assert reply.status_code == 200, reply.text
    return html.unescape(reply.text), re.search(r'name="_xsrf" value="([^"]+)"', reply.text)[1]


def press(session, hub, button: str, field: dict) -> str:
    """A button of the page: the form posts, then the page comes back with what was done."""
    _, xsrf = supervision_page(session, hub)
    reply = session.post(f"{hub.url}{SUPERVISION}{button}", data={**field, "_xsrf": xsrf},
                         allow_redirects=False, timeout=120)
    assert reply.status_code == 303, reply.text
    text, _ = supervision_page(session, hub)
    return re.search(r'role="status"><strong>[^<]*</strong> ([^<]*)</div>', text)[1]


def test_the_admins_supervision_page_stops_servers_and_frees_gpus(hub):
    password = (hub.state.secrets / "initial-password-admin").read_text().strip()
    reply, admin = hub.login("admin", password)
    assert reply.status_code == 302, reply.text
    assert f'href="{SUPERVISION}"' in admin.get(f"{hub.url}/hub/home", timeout=30).text
    text, _ = supervision_page(admin, hub)
    assert '<html lang="fr">' in text
    assert '<th scope="row">gus</th><td>tranches</td>' in text
    assert "<code>MIG-1111</code>, GPU entier" in text
    assert "dan (cours partage, part 1/2)" in text and "eve (cours partage, part 1/2)" in text

    assert press(admin, hub, "stop", {"user": "gus"}) == "Serveur de gus (cours tranches) arrêté."
    assert not hub.api.user("gus")["servers"]

    # A container left on GPU-cccc whose server the hub does not know (an orphan)
    site = hub.platform.site
    orphan = docker.from_env().containers.create(
        hub.platform.profile("partage").image, "sleep 600", name=f"{site.name}-zoe",
        labels={INSTANCE_LABEL: network_name(site), **gpu_labels(Allocation(
            "zoe", "partage", DeviceKey("ws-test", "GPU-cccc-0003"), Fraction(1, 2),
            "shared"))})
    try:
        assert "zoe (cours partage, part 1/2)" in supervision_page(admin, hub)[0]
        assert press(admin, hub, "release", {"gpu": "GPU-cccc-0003"}) == (
            "GPU GPU-cccc-0003 libéré : serveur(s) arrêté(s) : dan, eve ; "
            "conteneur(s) orphelin(s) supprimé(s) : zoe.")
        assert not hub.api.user("dan")["servers"] and not hub.api.user("eve")["servers"]
        with pytest.raises(docker.errors.NotFound):
            orphan.reload()
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            orphan.remove(force=True)
    entries = [json.loads(line) for line in
               (hub.state.root / "audit" / "audit.jsonl").read_text().splitlines()]
    assert [(e["action"], e["course"], e["target"]) for e in entries
            if e["actor"] == "admin" and e["action"].startswith("supervision.")] == [
        ("supervision.stop_server", "tranches", "gus"),
        ("supervision.release_gpu", "partage", "dan"),
        ("supervision.release_gpu", "partage", "eve"),
        ("supervision.release_gpu", "partage", "zoe")]

    # A student neither sees it in the menu nor opens it, from the browser or with a token
    password = hub.enrol("demo", "hugo")
    _, student = hub.login("hugo", password)
    assert SUPERVISION not in student.get(f"{hub.url}/hub/home", timeout=30).text
    assert student.get(f"{hub.url}{SUPERVISION}", timeout=30).status_code == 403
    reply = requests.get(f"{hub.url}{SUPERVISION}", timeout=30,
                         headers={"Authorization": f"token {hub.user_token('hugo')}"})
    assert reply.status_code == 403
    assert "réservée aux administrateurs du hub" in html.unescape(reply.text)


@pytest.fixture(scope="module")
def culling_hub(built_images, fake_nvml, tmp_path_factory):
    running = gpu_hub(tmp_path_factory.mktemp("gpu-culler"), idle_release_after_s=6,
                      idle_grace_s=3, check_every_s=1)
    for person in ("iris", "jade"):
        running.enrol("partage", person)
    yield running
    stop_hub(running)


def idle_releases(hub) -> list[dict]:
    audit = hub.state.root / "audit" / "audit.jsonl"
    lines = audit.read_text().splitlines() if audit.exists() else []
    return [json.loads(line) for line in lines if '"gpu.idle-release"' in line]


def test_the_gpu_idle_culler_stops_servers_that_do_not_compute(culling_hub, fake_nvml):
    spawn_ready(culling_hub, "iris", "partage")
    # iris's processes compute (NVML reports the PID of her container's first process)
    write_fake_nvml(fake_nvml, busy_pids=[container(culling_hub, "iris").attrs["State"]["Pid"]])
    spawn_ready(culling_hub, "jade", "partage")
    started = time.monotonic()
    culling_hub.wait_stopped("jade", timeout_s=90)
    assert time.monotonic() - started >= 2  # freed on the culler's schedule, not at once
    assert culling_hub.api.user("iris")["servers"][""]["ready"]
    # The culler writes its audit entry once the hub has answered its DELETE, which may be
    # a moment after the hub already reports the server stopped.
    released = []
    deadline = time.monotonic() + 10
    while not released and time.monotonic() < deadline:
        time.sleep(0.2)
        released = idle_releases(culling_hub)
    # iris took the GPU with the most free memory; jade the least loaded one after it
    assert [(e["target"], e["details"]["gpu"]) for e in released] == [("jade", "GPU-aaaa-0001")]
