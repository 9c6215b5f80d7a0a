"""Logins through a real OpenID Connect provider, by the real redirect flow.

The provider is `oidc-provider-mock` (authlib), run as its own process on a free port; its users
carry a `preferred_username` and a `groups` claim. The demo course takes its students from the
provider group `m2-etudiants`. Each person goes: hub login -> provider's authorisation page ->
(the person picks their identity there) -> back to the hub's callback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import urljoin

import pytest
import requests

from classhub.errors import ClasshubError
from tests.integration.conftest import copy_courses, free_port, start_hub, stop_hub

USERS = {
    "alice-sub": {"preferred_username": "alice", "groups": ["m2-etudiants"],
                  "email": "alice@chu.example"},
    "prof-sub": {"preferred_username": "prof", "groups": ["m2-enseignants"]},
    "mallory-sub": {"preferred_username": "mallory", "groups": ["autre-service"]},
    "ghost-sub": {"email": "ghost@chu.example", "groups": ["m2-etudiants"]},  # no username
}


@pytest.fixture(scope="module")
def provider():
    port = free_port()
    env = {**os.environ, "AUTHLIB_INSECURE_TRANSPORT": "1"}  # plain HTTP on loopback only
    process = subprocess.Popen([sys.executable, "-m", "oidc_provider_mock", "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{url}/.well-known/openid-configuration", timeout=2).ok:
                break
        except requests.ConnectionError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, \
            process.stderr.read().decode()
        time.sleep(0.3)
    for sub, claims in USERS.items():
        assert requests.put(f"{url}/users/{sub}", json=claims, timeout=10).status_code == 204
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def hub(built_images, provider, tmp_path_factory):
    folder = tmp_path_factory.mktemp("oidc")
    copy_courses(folder, identity_groups={"students": ["m2-etudiants"],
                                          "instructors": ["m2-enseignants"]})
    running = start_hub(folder, idle_timeout_s=0, auth={
        "kind": "oidc", "admin_users": ["admin"],
        "oidc": {"issuer": provider, "client_id": "classhub", "client_secret": "s3cret-client",
                 "scopes": ["openid", "profile", "email"]}})
    yield running
    stop_hub(running)


def _login(hub, provider: str, sub: str) -> tuple[requests.Response, requests.Session]:
    """The browser's way: hub -> provider's page -> pick the identity -> hub's callback."""
    session = requests.Session()
    start = session.get(f"{hub.url}/hub/oauth_login", allow_redirects=False, timeout=30)
    assert start.status_code == 302, start.text
    authorize = start.headers["Location"]
    assert authorize.startswith(provider)
    page = session.get(authorize, timeout=30)
    assert page.status_code == 200 and 'name="sub"' in page.text
    back = session.post(authorize, data={"sub": sub}, allow_redirects=False, timeout=30)
    assert back.status_code == 302, back.text
    callback = back.headers["Location"]
    assert callback.startswith(f"{hub.url}/hub/oauth_callback")
    return session.get(callback, allow_redirects=False, timeout=60), session


def test_an_enrolled_student_gets_in_and_sees_her_course(hub, provider):
    reply, session = _login(hub, provider, "alice-sub")
    assert reply.status_code == 302, reply.text
    assert "nbgrader-demo" in hub.api.user("alice")["groups"]
    spawn = session.get(urljoin(hub.url, "/hub/spawn"), timeout=30)
    assert spawn.status_code == 200
    text = spawn.content.decode("utf-8")  # the page declares UTF-8 in a <meta> tag only
    assert hub.platform.courses["demo"].title in text
    assert hub.platform.courses["m2-ia-sante"].title not in text


def test_an_instructor_group_maps_to_the_formgrader_group(hub, provider):
    reply, _ = _login(hub, provider, "prof-sub")
    assert reply.status_code == 302
    assert "formgrade-demo" in hub.api.user("prof")["groups"]


def test_an_outsider_gets_a_403_page(hub, provider):
    reply, _ = _login(hub, provider, "mallory-sub")
    assert reply.status_code == 403
    assert "aucun cours" in reply.text
    assert hub.api.user("mallory") is None or not hub.api.user("mallory").get("groups")


def test_a_missing_username_claim_is_a_clear_403_not_a_500(hub, provider):
    reply, _ = _login(hub, provider, "ghost-sub")
    assert reply.status_code == 403, reply.status_code
    assert "preferred_username" in reply.text


def test_roster_verbs_refuse_for_a_course_enrolled_by_the_provider(hub):
    from classhub.enrolment import Enrolment, Member

    with pytest.raises(ClasshubError, match="identity provider"):
        Enrolment(hub.platform).add("demo", Member("bob"))


def test_logins_are_in_the_audit_trail(hub, provider):
    from classhub.audit import AuditLog

    _login(hub, provider, "alice-sub")
    _login(hub, provider, "mallory-sub")
    entries = list(AuditLog(hub.state).entries(action="login"))
    assert any(e["action"] == "login" and e["actor"] == "alice" for e in entries)
    assert any(e["action"] == "login.failed" and e["details"].get("via") == "oauth"
               for e in entries)
