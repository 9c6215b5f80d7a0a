"""Integration fixtures: real images, a real hub and proxy on free ports, real student containers.

Images are built once per run (and reused across runs while their recipe is unchanged); each test
module gets its own hub instance with its state in a temporary folder and its own instance name,
so nothing it does can meet `make up`'s platform or another module's.
"""

from __future__ import annotations

import ast
import csv
import json
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import docker
import pytest
import requests
import websocket
import yaml

from classhub import firewall, processes
from classhub.config import load_platform
from classhub.engine import INSTANCE_LABEL
from classhub.enrolment import Enrolment, Member
from classhub.hubapi import HubAPI
from classhub.images import build
from classhub.platform import down, up
from classhub.state import StateDir
from tests.conftest import REPO, write_site


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def default_bridge_gateway() -> str:
    """The host's address on Docker's default bridge (docker0). The engine reports it in the
    network's IPAM config only when it was set explicitly; otherwise it is the bridge
    interface's own address."""
    bridge = docker.from_env().networks.get("bridge").attrs
    configured = [c["Gateway"] for c in bridge["IPAM"]["Config"] or [] if c.get("Gateway")]
    if configured:
        return configured[0].split("/")[0]
    name = (bridge.get("Options") or {}).get("com.docker.network.bridge.name", "docker0")
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", name],
                           capture_output=True, text=True, check=True).stdout.split()
    return shown[shown.index("inet") + 1].split("/")[0]


def copy_courses(folder: Path, **demo_changes) -> Path:
    """The repository's courses in `folder/courses`, with keys of the demo course changed."""
    shutil.copytree(REPO / "courses", folder / "courses")
    path = folder / "courses" / "demo" / "course.yml"
    spec = yaml.safe_load(path.read_text())
    spec.update(demo_changes)
    path.write_text(yaml.safe_dump(spec))
    return path.parent


def _add_second_course(folder: Path) -> None:
    other = folder / "courses" / "autre"
    other.mkdir(parents=True, exist_ok=True)
    (other / "course.yml").write_text(yaml.safe_dump(
        {"title": "Un autre cours", "image": "lab", "resources": {"mem_limit": "1G"}}))


def _remove_stale_test_networks() -> None:
    """Networks left by an interrupted earlier run use up Docker's address pools; their
    firewall chains go with them."""
    engine = docker.from_env()
    for network in engine.networks.list(filters={"label": INSTANCE_LABEL}):
        network.reload()
        if network.name.startswith(("cht", "bench")) and not network.attrs.get("Containers"):
            network.remove()
    listing = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        parts = line.split()
        if parts[:1] == ["-N"] and parts[1].startswith(("CLASSHUB-cht", "CLASSHUB-bench")):
            firewall.remove(SimpleNamespace(name=parts[1].removeprefix("CLASSHUB-")))


@pytest.fixture(scope="session")
def built_images(tmp_path_factory):
    _remove_stale_test_networks()
    folder = tmp_path_factory.mktemp("images-site")
    platform = load_platform(write_site(folder))
    lines: list[str] = []
    build(platform, say=lines.append)
    return platform


@dataclass
class RunningHub:
    platform: object
    folder: Path

    @property
    def url(self) -> str:
        return self.platform.site.hub.bind_url

    @property
    def state(self) -> StateDir:
        return StateDir(self.platform.site.state_dir)

    @property
    def api(self) -> HubAPI:
        return HubAPI.for_platform(self.platform)

    def enrol(self, course: str, username: str, role: str = "student") -> str | None:
        """Enrol someone; returns their initial password when the enrolment created one."""
        handout, synced = Enrolment(self.platform).add(course, Member(username, role=role))
        assert synced
        if handout is None:
            return None
        with open(handout, newline="") as handle:
            return {r["username"]: r["initial_password"] for r in csv.DictReader(handle)}[username]

    def spawn(self, username: str, options: dict) -> requests.Response:
        return self.api.session.post(f"{self.api.base}/users/{username}/server", json=options,
                                     timeout=60)

    def wait_ready(self, username: str, timeout_s: float = 240) -> dict:
        deadline = time.monotonic() + timeout_s
        seen = False
        while time.monotonic() < deadline:
            server = (self.api.user(username) or {}).get("servers", {}).get("")
            if server and server.get("ready"):
                return server
            if seen and server is None:
                raise AssertionError(f"{username}'s spawn failed; hub log:\n"
                                     + processes.hub(self.state).log_tail(40))
            seen = seen or server is not None
            time.sleep(0.5)
        raise AssertionError(f"{username}'s server was not ready within {timeout_s}s")

    def wait_stopped(self, username: str, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not (self.api.user(username) or {}).get("servers"):
                return
            time.sleep(0.5)
        raise AssertionError(f"{username}'s server still runs after {timeout_s}s")

    def user_token(self, username: str, scopes: list[str] | None = None) -> str:
        scopes = scopes or [f"access:servers!user={username}"]
        reply = self.api.request("POST", f"/users/{username}/tokens",
                                 json={"expires_in": 3600, "note": "integration test",
                                       "scopes": scopes})
        return reply["token"]

    def run_code(self, username: str, token: str, code: str, timeout_s: float = 180) -> str:
        """What `code` wrote, run in the user's kernel."""
        return run_in_kernel(self.url, username, token, code, timeout_s).output

    def run_for_result(self, username: str, token: str, code: str,
                       timeout_s: float = 180) -> KernelRun:
        """Run `code`, which leaves a JSON-able value in `result`, in the user's kernel."""
        return run_in_kernel(self.url, username, token, code, timeout_s, with_result=True)

    def login(self, username: str, password: str) -> requests.Response:
        session = requests.Session()
        session.get(f"{self.url}/hub/login", timeout=10)
        return session.post(
            f"{self.url}/hub/login",
            data={"username": username, "password": password,
                  "_xsrf": session.cookies.get("_xsrf")},
            allow_redirects=False, timeout=30,
        ), session


@dataclass
class KernelRun:
    output: str  # what the code and its child processes wrote (stdout and stderr, interleaved)
    result: object  # the code's `result` variable, through JSON, when it was asked for


RESULT_EXPRESSION = "__import__('json').dumps(result)"


def run_in_kernel(base_url: str, username: str, token: str, code: str, timeout_s: float,
                  with_result: bool = False) -> KernelRun:
    """Start a kernel in the user's server through the proxy, run `code`, return what it wrote
    and, `with_result`, the value the code left in `result`. That value comes back in the
    execute reply (a user expression), apart from the output streams, where a child process's
    late log line may land anywhere."""
    headers = {"Authorization": f"token {token}"}
    server = f"{base_url}/user/{username}"
    kernel = requests.post(f"{server}/api/kernels", headers=headers, json={"name": "python3"},
                           timeout=60)
    assert kernel.status_code == 201, kernel.text
    kernel_id = kernel.json()["id"]
    ws = websocket.create_connection(
        f"{server.replace('http', 'ws', 1)}/api/kernels/{kernel_id}/channels",
        header=[f"Authorization: token {token}"], timeout=timeout_s,
    )
    msg_id = uuid.uuid4().hex
    expressions = {"result": RESULT_EXPRESSION} if with_result else {}
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "username": username, "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": expressions, "allow_stdin": False,
                    "stop_on_error": True},
    }))
    out, errors, reply, idle = [], [], None, False
    deadline = time.monotonic() + timeout_s
    try:
        # The reply (shell channel) and the idle status (iopub) travel apart: wait for both.
        while (reply is None or not idle) and time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                errors.append("\n".join(msg["content"]["traceback"]))
            elif kind == "execute_reply":
                reply = msg["content"]
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
    finally:
        ws.close()
        requests.delete(f"{server}/api/kernels/{kernel_id}", headers=headers, timeout=30)
    output = "".join(out)
    assert not errors, errors
    assert reply is not None and idle, f"no reply from the kernel within {timeout_s}s: {output}"
    if not with_result:
        return KernelRun(output, None)
    value = reply["user_expressions"]["result"]
    assert value["status"] == "ok", (value, output)
    return KernelRun(output, json.loads(ast.literal_eval(value["data"]["text/plain"])))


def start_hub(folder: Path, auth: dict | None = None, site: dict | None = None,
              **hub_settings) -> RunningHub:
    """A hub of its own; `site` adds top-level sections of the site config (e.g. `gpu`)."""
    site_file = write_site(
        folder,
        name=f"cht{secrets.token_hex(3)}",
        hub={"bind_url": f"http://127.0.0.1:{free_port()}", "api_port": free_port(),
             "proxy_api_port": free_port(), "grader_port": free_port(), **hub_settings},
        **({"auth": auth} if auth else {}),
        **(site or {}),
    )
    _add_second_course(folder)
    platform = load_platform(site_file)
    up(platform)
    return RunningHub(platform, folder)


def stop_hub(hub: RunningHub) -> None:
    down(hub.platform)


@pytest.fixture(scope="module")
def hub(built_images, tmp_path_factory):
    running = start_hub(tmp_path_factory.mktemp("hub"), idle_timeout_s=0)
    yield running
    stop_hub(running)
    assert not processes.hub(running.state).running(), "hub still running after classhub down"


def parallel(func, items):
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(func, items))


