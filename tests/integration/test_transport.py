"""HTTPS through the real proxy with the room's own CA; secrets rotated for real.

The site is switched to `tls.enabled` with a certificate from `classhub tls init`; the hub is
reached over HTTPS checked against the room's CA, pages carry HSTS, the login cookie is Secure,
and plain HTTP on that port gets nothing. Then the platform goes down, its secrets are rotated,
and the old service token no longer opens the API.
"""

from __future__ import annotations

import subprocess
import sys

import requests
import yaml

from classhub.config import load_platform
from classhub.hubapi import service_token
from tests.integration.conftest import free_port, start_hub, stop_hub


def _classhub(site_file, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "classhub.cli", "--site", str(site_file),
                           *args], capture_output=True, text=True, timeout=600)


def test_https_with_the_rooms_ca_then_rotated_secrets(built_images, tmp_path):
    hub = start_hub(tmp_path, idle_timeout_s=0)  # writes the site; started to make the state
    stop_hub(hub)
    site_file = hub.platform.site_file
    made = _classhub(site_file, "tls", "init", "--hostname", "127.0.0.1",
                     "--hostname", "localhost")
    assert made.returncode == 0, made.stderr
    port = free_port()
    data = yaml.safe_load(site_file.read_text())
    data["hub"]["bind_url"] = f"https://127.0.0.1:{port}"
    data["tls"] = {"enabled": True}
    site_file.write_text(yaml.safe_dump(data))
    hub.platform = load_platform(site_file)
    ca = str(hub.state.root / "tls" / "ca.pem")
    up = _classhub(site_file, "up")
    assert up.returncode == 0, up.stderr
    try:
        page = requests.get(f"https://127.0.0.1:{port}/hub/login", verify=ca, timeout=30)
        assert page.status_code == 200
        assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        password = hub.enrol("demo", "alice")
        session = requests.Session()  # verify= on each call: REQUESTS_CA_BUNDLE beats a
        session.get(f"https://127.0.0.1:{port}/hub/login", timeout=30, verify=ca)  # session's
        login = session.post(f"https://127.0.0.1:{port}/hub/login", timeout=30, verify=ca,
                             data={"username": "alice", "password": password,
                                   "_xsrf": session.cookies.get("_xsrf")},
                             allow_redirects=False)
        assert login.status_code == 302
        cookies = [c for c in session.cookies if c.name.startswith("jupyterhub-session")]
        assert cookies and all(c.secure for c in cookies)
        try:
            plain = requests.get(f"http://127.0.0.1:{port}/hub/login", timeout=10)
            assert plain.status_code >= 400
        except requests.exceptions.ConnectionError:
            pass  # the TLS listener drops a plain HTTP request: nothing in clear
        old_token = service_token(hub.state)
        assert _classhub(site_file, "secrets", "rotate").returncode == 2  # not while running
    finally:
        assert _classhub(site_file, "down").returncode == 0
    rotated = _classhub(site_file, "secrets", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert service_token(hub.state) != old_token
    up = _classhub(site_file, "up")
    assert up.returncode == 0, up.stderr
    try:
        api = f"https://127.0.0.1:{port}/hub/api/users"
        old = requests.get(api, headers={"Authorization": f"token {old_token}"}, verify=ca,
                           timeout=30)
        assert old.status_code == 403
        new = requests.get(api, headers={"Authorization": f"token {service_token(hub.state)}"},
                           verify=ca, timeout=30)
        assert new.status_code == 200
    finally:
        _classhub(site_file, "down")
