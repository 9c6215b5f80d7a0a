"""Red team: from inside a real student's kernel, every way out of the box fails.

Two students of a course with a dataset spawn through the hub; alice's kernel (the student's own
vector: her code, her server's environment and token) runs probes. Every probe targets this
machine: the host's addresses (the students' gateway, Docker's default bridge, the host's own
address) on a port the test listens on, bob's server, a server on another Docker network (what
any address beyond the host would need: forwarding out of the students' network), the hub. The
hub's API must answer (the probe works); everything else must not. One test takes the host
firewall away and shows the same probe then reaches the host: the firewall is what stops it.
"""

from __future__ import annotations

import socket
import textwrap

import docker
import pytest

from classhub import firewall
from classhub.engine import network_name
from tests.integration.conftest import copy_courses, default_bridge_gateway, start_hub, stop_hub

PROBES = textwrap.dedent('''
    import json, os, socket, urllib.request, urllib.error
    def tcp(host, port):
        try:
            socket.create_connection((host, port), timeout=3).close()
            return "open"
        except OSError as error:
            return "blocked: " + type(error).__name__
    def api(method, path, body=None):
        request = urllib.request.Request(
            os.environ["JUPYTERHUB_API_URL"] + path, method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"],
                     "Content-Type": "application/json"})
        try:
            return urllib.request.urlopen(request, timeout=10).status
        except urllib.error.HTTPError as error:
            return error.code
    def write(path):
        try:
            open(path, "w").write("x")
            return "written"
        except OSError as error:
            return "refused: " + type(error).__name__
    status = dict(l.split(":\\t") for l in open("/proc/self/status").read().splitlines()
                  if ":\\t" in l)
    result = {
        "hub_api": tcp(GATEWAY, API_PORT),
        "host_port_via_gateway": tcp(GATEWAY, HOST_PORT),
        "host_port_via_docker0": tcp(DOCKER0, HOST_PORT),
        "host_port_via_host_address": tcp(HOST_ADDRESS, HOST_PORT),
        "host_ssh": tcp(GATEWAY, 22),
        "proxy_api": tcp(GATEWAY, PROXY_API_PORT),
        "other_student_server": tcp(BOB, 8888),
        "container_on_another_network": tcp(OUTSIDER, 8765),
        "docker_socket": os.path.exists("/var/run/docker.sock"),
        "other_home": os.path.exists(BOB_HOME),
        "homes_visible": sorted(os.listdir("/home")),
        "admin_list_users": api("GET", "/users"),
        "admin_other_user": api("GET", "/users/BOBNAME"),
        "spawn_other_image": api("POST", "/users/ALICENAME/server",
                                 {"image": "classhub/base:latest"}),
        "dataset_write": write("/srv/datasets/essai/planted.csv"),
        "dataset_read": open("/srv/datasets/essai/patients.csv").read().startswith("id,"),
        "cap_eff": status["CapEff"].strip(),
        "no_new_privs": status["NoNewPrivs"].strip(),
    }
''')


def _host_address() -> str:
    """This machine's own address on its main interface (no packet leaves: connect() on UDP)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))
        return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


@pytest.fixture(scope="module")
def room(built_images, tmp_path_factory):
    folder = tmp_path_factory.mktemp("isolation")
    course = copy_courses(folder, datasets=[{"name": "essai", "path": "data",
                                             "classification": "pseudonymised"}])
    (course / "data").mkdir()
    (course / "data" / "patients.csv").write_text("id,age\n1,64\n")
    hub = start_hub(folder, idle_timeout_s=0)
    listener = socket.create_server(("0.0.0.0", 0), backlog=64)
    # A server on Docker's default network: reaching it would need traffic forwarded out of
    # the students' network, the way to any other private or public address.
    outsider = docker.from_env().containers.run(
        "classhub/lab:latest", ["python", "-m", "http.server", "8765"], detach=True,
        name=f"{hub.platform.site.name}-outsider", network="bridge", remove=True)
    try:
        for student in ("alice", "bob"):
            hub.enrol("demo", student)
            assert hub.spawn(student, {"course": "demo"}).status_code in (201, 202)
        for student in ("alice", "bob"):
            hub.wait_ready(student)
        yield hub, listener.getsockname()[1]
    finally:
        listener.close()
        outsider.remove(force=True)
        stop_hub(hub)


def _probe(hub, port: int) -> dict:
    engine = docker.from_env()
    network = engine.networks.get(network_name(hub.platform.site))
    gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
    bob = engine.containers.list(filters={"label": "org.classhub.user=bob"})[0]
    bob_ip = bob.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    docker0 = default_bridge_gateway()
    outsider = engine.containers.get(f"{hub.platform.site.name}-outsider")
    outsider_ip = outsider.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    site = hub.platform.site
    code = PROBES
    for name, value in (  # longest names first: some contain others
            ("PROXY_API_PORT", str(site.hub.proxy_api_port)), ("API_PORT", str(site.hub.api_port)),
            ("HOST_PORT", str(port)), ("HOST_ADDRESS", repr(_host_address())),
            ("GATEWAY", repr(gateway)), ("DOCKER0", repr(docker0)),
            ("BOB_HOME", repr(str(hub.state.homes / "bob"))), ("BOBNAME", "bob"),
            ("ALICENAME", "alice"), ("BOB", repr(bob_ip)), ("OUTSIDER", repr(outsider_ip))):
        code = code.replace(name, value)
    return hub.run_for_result("alice", hub.user_token("alice"), code).result


def test_nothing_but_the_hub_is_reachable_from_a_student_kernel(room):
    hub, port = room
    found = _probe(hub, port)
    assert found["hub_api"] == "open"  # the probe itself works
    for key in ("host_port_via_gateway", "host_port_via_docker0", "host_port_via_host_address",
                "host_ssh", "proxy_api", "other_student_server", "container_on_another_network"):
        assert found[key].startswith("blocked"), (key, found[key])
    assert found["docker_socket"] is False
    assert found["other_home"] is False and found["homes_visible"] == ["jovyan"]
    assert found["admin_list_users"] == 403 and found["admin_other_user"] in (403, 404)
    assert found["spawn_other_image"] == 403
    assert found["dataset_write"].startswith("refused") and found["dataset_read"] is True
    assert found["cap_eff"] == "0000000000000000" and found["no_new_privs"] == "1"


def test_the_firewall_is_what_keeps_the_host_out_of_reach(room):
    hub, port = room
    site = hub.platform.site
    rules = firewall.active_rules(site)
    assert rules[-1].endswith("-j DROP") and any(f"--dport {site.hub.api_port}" in r
                                                 for r in rules)
    engine = docker.from_env()
    network = engine.networks.get(network_name(site))
    gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
    firewall.remove(site)
    try:
        assert _probe(hub, port)["host_port_via_gateway"] == "open"
    finally:
        firewall.apply(site, network, gateway)
    assert _probe(hub, port)["host_port_via_gateway"].startswith("blocked")
