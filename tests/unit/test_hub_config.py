"""The apply_* functions, on a bare traitlets Config: what the hub will be told."""

import re
import stat
from types import SimpleNamespace

from traitlets.config import Config

from classhub.config import load_platform
from classhub.hub.config import apply_all
from classhub.roster import Member, Roster
from classhub.state import StateDir


def _configured(site_file):
    platform = load_platform(site_file)
    c = Config()
    apply_all(c, platform, gateway="172.30.0.1")
    return c, platform


def test_hub_api_listens_on_the_student_gateway_only(site_file):
    c, _ = _configured(site_file)
    assert c.JupyterHub.hub_bind_url == "http://172.30.0.1:8081"
    assert c.JupyterHub.hub_connect_url == "http://172.30.0.1:8081"
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000"


def test_proxy_is_external_and_servers_survive_hub_restarts(site_file):
    c, _ = _configured(site_file)
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.JupyterHub.cleanup_servers is False
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:8001"
    assert len(c.ConfigurableHTTPProxy.auth_token) == 64


def test_secrets_are_generated_once_and_private(site_file):
    c1, platform = _configured(site_file)
    c2, _ = _configured(site_file)
    assert c1.JupyterHub.cookie_secret == c2.JupyterHub.cookie_secret
    secrets = StateDir(platform.site.state_dir).secrets
    for path in secrets.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700


def test_local_logins_by_default(site_file):
    c, platform = _configured(site_file)
    assert c.JupyterHub.authenticator_class == "classhub.hub.auth.LocalPasswordAuthenticator"
    assert c.LocalPasswordAuthenticator.accounts_db == str(
        StateDir(platform.site.state_dir).accounts_db)
    assert c.Authenticator.admin_users == {"admin"}
    assert "allow_all" not in c.Authenticator


def test_spawner_gets_course_profiles_and_only_course_images(site_file):
    c, _ = _configured(site_file)
    assert c.JupyterHub.spawner_class == "classhub.hub.spawner.CourseSpawner"
    assert c.DockerSpawner.allowed_images == {"classhub/lab:latest": "classhub/lab:latest"}
    assert c.CourseSpawner.courses["demo"]["mem_limit"] == "2G"
    assert c.DockerSpawner.remove is True
    assert c.DockerSpawner.network_name == "classhub-students"
    assert c.DockerSpawner.pull_policy == "never"


def test_groups_at_start_follow_the_rosters(site_file):
    platform = load_platform(site_file)
    state = StateDir(platform.site.state_dir).ensure()
    Roster(state.rosters, "demo").save({
        "ana": Member("ana"), "prof": Member("prof", role="instructor")})
    c = Config()
    apply_all(c, platform, gateway="172.30.0.1")
    assert c.JupyterHub.load_groups["nbgrader-demo"] == {"users": ["ana"]}
    assert c.JupyterHub.load_groups["formgrade-demo"] == {"users": ["prof"]}


def test_culler_runs_as_a_service_with_only_the_scopes_it_needs(site_file):
    c, _ = _configured(site_file)
    culler = next(s for s in c.JupyterHub.services if s["name"] == "idle-culler")
    assert "--timeout=3600" in culler["command"]
    role = next(r for r in c.JupyterHub.load_roles if r["name"] == "idle-culler")
    assert set(role["scopes"]) == {"list:users", "read:users:activity", "read:servers",
                                   "delete:servers"}


def test_workshop_mode_is_explicit(site_file):
    import yaml

    data = yaml.safe_load(site_file.read_text())
    data["auth"] = {"kind": "shared-password", "shared_password": "atelier-2026"}
    site_file.write_text(yaml.safe_dump(data))
    c, _ = _configured(site_file)
    assert c.JupyterHub.authenticator_class == "shared-password"
    assert c.Authenticator.allow_all is True


def test_each_course_formgrader_is_reachable_by_its_instructors_only(site_file):
    c, platform = _configured(site_file)
    role = next(r for r in c.JupyterHub.load_roles if r["name"] == "formgrader-demo")
    assert role["groups"] == ["formgrade-demo"]
    # the grading service itself checks which course's grades an instructor may download
    assert set(role["scopes"]) == {"servers!user=grader-demo", "access:servers!user=grader-demo",
                                   "read:users!user=grader-demo",
                                   "access:services!service=classhub-grader"}


def _token_scopes(c, username, platform):
    spawner = SimpleNamespace(user=SimpleNamespace(name=username), courses=platform.courses)
    return c.Spawner.server_token_scopes(spawner)


def test_server_tokens_may_read_their_own_groups_for_nbgrader(site_file):
    c, platform = _configured(site_file)
    for username in ("ana", "grader-demo"):
        assert "read:users:groups!user" in _token_scopes(c, username, platform)
        assert "access:servers!server" in _token_scopes(c, username, platform)


def test_only_a_formgrader_servers_token_may_call_the_grading_service(site_file):
    c, platform = _configured(site_file)
    grading = "access:services!service=classhub-grader"
    assert grading in _token_scopes(c, "grader-demo", platform)
    # an instructor holds the scope (grade downloads in a browser), their lab server's token not
    assert grading not in _token_scopes(c, "prof", platform)
    assert grading not in _token_scopes(c, "grader-nosuchcourse", platform)


def test_grading_service_listens_on_the_gateway_and_servers_may_call_it(site_file):
    c, platform = _configured(site_file)
    service = next(s for s in c.JupyterHub.services if s["name"] == "classhub-grader")
    port = platform.site.hub.grader_port
    assert service["url"] == f"http://172.30.0.1:{port}"
    assert service["command"][1:] == ["-m", "classhub.hub.grader_service"]
    assert service["environment"]["CLASSHUB_SITE"] == str(platform.site_file)
    role = next(r for r in c.JupyterHub.load_roles if r["name"] == "classhub-graders")
    assert role == {**role, "scopes": ["access:services!service=classhub-grader"],
                    "users": [f"grader-{c}" for c in sorted(platform.courses)]}
    assert c.CourseSpawner.grader_url == (f"http://172.30.0.1:{port}"
                                          "/services/classhub-grader/")


def test_supervision_page_is_a_menu_service_on_loopback_with_only_the_scopes_it_needs(site_file):
    c, platform = _configured(site_file)
    service = next(s for s in c.JupyterHub.services if s["name"] == "classhub-supervision")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", service["url"])  # the proxy's host only
    assert service["command"][1:] == ["-m", "classhub.hub.supervision"]
    assert service["environment"]["CLASSHUB_SITE"] == str(platform.site_file)
    assert service["display"] is True and service["oauth_no_confirm"] is True
    role = next(r for r in c.JupyterHub.load_roles if r["name"] == "classhub-supervision")
    assert role["services"] == ["classhub-supervision"]
    assert set(role["scopes"]) == {"list:users", "read:servers", "delete:servers"}


def test_only_hub_admins_may_open_the_supervision_page(site_file):
    from jupyterhub.roles import get_default_roles
    from jupyterhub.scopes import _expand_self_scope

    c, platform = _configured(site_file)
    page = {"access:services", "access:services!service=classhub-supervision"}
    # JupyterHub's own roles: every user has `self`, which opens no service; admins have all
    default = {r["name"]: r["scopes"] for r in get_default_roles()}
    assert "access:services" in default["admin"]
    assert default["user"] == ["self"] and not page & _expand_self_scope("ana")
    assert c.Authenticator.admin_users == {"admin"}
    # and no role classhub gives to people, nor their servers' tokens, opens it
    for role in c.JupyterHub.load_roles:
        if role.get("users") or role.get("groups"):
            assert not page & set(role["scopes"]), role["name"]
    for username in ("ana", "grader-demo"):
        assert not page & set(_token_scopes(c, username, platform))
