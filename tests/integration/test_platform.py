"""The platform on one workstation, for real: hub, proxy, engine, student containers."""

from __future__ import annotations

import socket

import docker
import pytest
import requests

from classhub import processes
from classhub.engine import network_name, student_containers
from classhub.platform import down, up

from tests.integration.conftest import parallel, start_hub

STUDENTS = ["alice", "bruno", "chloe"]

CHECK_STACK = """
import io, torch, sklearn, matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, ax = plt.subplots()
ax.plot([0, 1, 2], [0, 1, 4])
buffer = io.BytesIO()
fig.savefig(buffer, format="png")
png = buffer.getvalue()
shm = __import__("os").statvfs("/dev/shm")
result = {"torch": torch.__version__, "sklearn": sklearn.__version__,
          "png": png[:4] == b"\\x89PNG" and len(png) > 1000, "shm": shm.f_blocks * shm.f_frsize}
"""


@pytest.fixture(scope="module")
def students(hub):
    passwords = {name: hub.enrol("demo", name) for name in STUDENTS}
    responses = parallel(lambda name: hub.spawn(name, {"course": "demo"}), STUDENTS)
    assert [r.status_code for r in responses] == [202] * 3 or all(
        r.status_code in (201, 202) for r in responses), [r.text for r in responses]
    parallel(hub.wait_ready, STUDENTS)
    return passwords


def test_three_students_spawn_at_once_and_run_torch_sklearn_and_a_figure(hub, students):
    def run(name):
        return hub.run_for_result(name, hub.user_token(name), CHECK_STACK).result

    for name, found in zip(STUDENTS, parallel(run, STUDENTS), strict=True):
        assert found["torch"].split("+")[0] == "2.13.0" and found["png"] is True, (name, found)
        assert found["shm"] >= 1 << 30, f"/dev/shm is only {found['shm']} bytes"


def test_each_container_has_its_course_limits_and_no_privileges(hub, students):
    engine = docker.from_env()
    containers = {c.labels["org.classhub.user"]: c
                  for c in student_containers(engine, hub.platform.site)}
    assert set(containers) == set(STUDENTS)
    for container in containers.values():
        host = container.attrs["HostConfig"]
        assert container.labels["org.classhub.course"] == "demo"
        assert container.attrs["Config"]["Image"] == "classhub/lab:latest"
        assert host["Memory"] == 2 * 2**30
        assert host["CpuQuota"] == 100_000 and host["CpuPeriod"] == 100_000
        assert host["PidsLimit"] == 512
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges" in host["SecurityOpt"]
        assert host["NetworkMode"] == network_name(hub.platform.site)
        assert not any("docker.sock" in b for b in host.get("Binds") or [])
        assert "NVIDIA_VISIBLE_DEVICES=void" in container.attrs["Config"]["Env"]
        assert container.attrs["Config"]["User"] in ("1000", "jovyan")


def test_status_lists_each_running_student_with_course_and_image(hub, students):
    from classhub.platform import status

    report = status(hub.platform)
    assert report["hub"] == "running" and report["proxy"] == "running"
    servers = {s["user"]: s for s in report["servers"]}
    assert set(servers) == set(STUDENTS)
    assert {s["course"] for s in servers.values()} == {"demo"}
    assert all(s["mem_limit_bytes"] == 2 * 2**30 and s["memory_bytes"] for s in servers.values())


def test_a_file_in_the_home_survives_the_removal_of_the_container(hub, students):
    name = "chloe"
    token = hub.user_token(name)
    hub.run_code(name, token, "open('/home/jovyan/notes.txt', 'w').write('tumeurs: 42')")
    hub.api.stop_server(name)
    engine = docker.from_env()
    assert not [c for c in student_containers(engine, hub.platform.site, all_states=True)
                if c.labels["org.classhub.user"] == name], "the container was not removed"
    assert hub.spawn(name, {"course": "demo"}).status_code in (201, 202)
    hub.wait_ready(name)
    output = hub.run_code(name, hub.user_token(name), "print(open('/home/jovyan/notes.txt').read())")
    assert output.strip() == "tumeurs: 42"


def test_a_forged_image_is_refused(hub):
    hub.enrol("demo", "eve")
    reply = hub.spawn("eve", {"course": "demo", "image": "classhub/base:latest"})
    assert reply.status_code == 400, reply.text
    assert reply.json()["message"] == "Seul le cours se choisit au démarrage ; refusé : image."
    assert not hub.api.user("eve")["servers"]


def test_a_course_the_student_is_not_enrolled_in_is_refused(hub):
    hub.enrol("demo", "eve")
    reply = hub.spawn("eve", {"course": "autre"})
    assert reply.status_code == 403, reply.text
    assert reply.json()["message"] == "Vous n'êtes pas inscrit(e) au cours « autre »."
    reply = hub.spawn("eve", {"course": "no-such-course"})
    assert reply.status_code == 403, reply.text


def test_a_removed_student_loses_the_course_at_once(hub):
    from classhub.enrolment import Enrolment

    hub.enrol("demo", "dylan")
    assert hub.spawn("dylan", {"course": "demo"}).status_code in (201, 202)
    hub.wait_ready("dylan")
    Enrolment(hub.platform).remove("demo", "dylan")
    assert "dylan" not in hub.api.groups()["nbgrader-demo"]
    assert not hub.api.user("dylan")["servers"], "the running server was not stopped"
    reply = hub.spawn("dylan", {"course": "demo"})
    assert reply.status_code == 403, reply.text


def test_a_student_password_opens_only_that_students_account(hub, students):
    good, session = hub.login("alice", students["alice"])
    assert good.status_code == 302, good.text
    home = session.get(f"{hub.url}/hub/home", timeout=10)
    assert home.status_code == 200 and "alice" in home.text
    wrong, _ = hub.login("bruno", students["alice"])
    assert wrong.status_code == 403
    unknown, _ = hub.login("alice", students["bruno"])
    assert unknown.status_code == 403


def test_a_student_changes_their_password(hub):
    password = hub.enrol("demo", "fanny")
    _, session = hub.login("fanny", password)
    page = session.post(
        f"{hub.url}/hub/change-password",
        data={"current_password": password, "new_password": "une-phrase-longue",
              "new_password_again": "une-phrase-longue", "_xsrf": session.cookies.get("_xsrf")},
        timeout=30,
    )
    assert page.status_code == 200 and "Mot de passe modifié" in page.text
    assert hub.login("fanny", password)[0].status_code == 403
    assert hub.login("fanny", "une-phrase-longue")[0].status_code == 302


def test_the_spawn_page_offers_only_the_students_courses(hub, students):
    hub.api.stop_server("bruno")  # the spawn form shows only while no server runs
    _, session = hub.login("bruno", students["bruno"])
    page = session.get(f"{hub.url}/hub/spawn", timeout=30)
    assert page.status_code == 200
    text = page.content.decode("utf-8")  # the hub's pages declare UTF-8 in a <meta> tag
    assert "Découverte de la plateforme" in text
    assert "Un autre cours" not in text
    assert hub.spawn("bruno", {"course": "demo"}).status_code in (201, 202)
    hub.wait_ready("bruno")


def test_a_hub_restart_leaves_student_servers_running_and_reachable(hub, students):
    name = "alice"
    token = hub.user_token(name)
    status_url = f"{hub.url}/user/{name}/api/status"
    headers = {"Authorization": f"token {token}"}
    # A student already working: the server has checked their token with the hub once.
    assert requests.get(status_url, headers=headers, timeout=30).status_code == 200
    before = hub.api.user(name)["servers"][""]
    assert processes.hub(hub.state).stop()
    reply = requests.get(status_url, headers=headers, timeout=30)
    assert reply.status_code == 200, "the server is unreachable while the hub is down"
    up(hub.platform)
    after = hub.api.user(name)["servers"][""]
    assert after["ready"] and after["started"] == before["started"]
    assert "alive" in hub.run_code(name, token, "print('alive')")


def test_classhub_down_leaves_no_container_proxy_or_port(built_images, tmp_path_factory):
    other = start_hub(tmp_path_factory.mktemp("down"), idle_timeout_s=0)
    other.enrol("demo", "gaelle")
    assert other.spawn("gaelle", {"course": "demo"}).status_code in (201, 202)
    other.wait_ready("gaelle")
    site = other.platform.site
    pids = [processes.hub(other.state).pid(), processes.proxy(other.state).pid()]
    down(other.platform)
    engine = docker.from_env()
    assert student_containers(engine, site, all_states=True) == []
    assert not engine.networks.list(names=[network_name(site)])
    for pid in pids:
        assert not _alive(pid), f"process {pid} survived"
    for port in (int(site.hub.bind_url.rsplit(":", 1)[1]), site.hub.proxy_api_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still bound"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
