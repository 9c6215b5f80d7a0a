"""The hub's configuration, applied from the validated platform one concern at a time.

`jupyterhub_config.py` calls `apply_all`; each `apply_*` only sets traits on `c`, so each can be
tested on a bare `traitlets.config.Config()`.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import requests

from classhub.config.model import Platform
from classhub.engine import network_name
from classhub.errors import ClasshubError
from classhub.gpu import nvml
from classhub.hub.spawner import (
    GRADER_ACCOUNT,
    GRADER_SERVICE,
    INSTRUCTOR_GROUP,
    STUDENT_GROUP,
    server_token_scopes,
)
from classhub.hubapi import SERVICE_NAME, TOKEN_SECRET
from classhub.roster import Roster
from classhub.state import StateDir

TEMPLATES = Path(__file__).parent / "templates"
PROXY_TOKEN_SECRET = "proxy_token"


def apply_state(c, platform: Platform, state: StateDir) -> None:
    c.JupyterHub.db_url = f"sqlite:///{state.hub_db}"
    c.JupyterHub.cookie_secret = bytes.fromhex(state.secret("cookie_secret"))
    # No JupyterHub.pid_file: classhub writes the hub's pid file itself (processes.Process), in
    # one rename; JupyterHub rewriting the same file at start-up let a reader see it empty, and
    # take a starting hub for a stopped one.


def apply_network(c, platform: Platform, gateway: str) -> None:
    hub = platform.site.hub
    c.JupyterHub.bind_url = hub.bind_url
    # The API listens on the students' bridge only: containers and the host reach it there.
    c.JupyterHub.hub_bind_url = f"http://{gateway}:{hub.api_port}"
    c.JupyterHub.hub_connect_url = f"http://{gateway}:{hub.api_port}"


def apply_proxy(c, platform: Platform, state: StateDir) -> None:
    # classhub runs the proxy itself, so that a hub restart keeps every route and server.
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.auth_token = state.secret(PROXY_TOKEN_SECRET)
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{platform.site.hub.proxy_api_port}"
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = False


def discover(oidc) -> dict:
    """The provider's endpoints, from its discovery document (read when the hub starts)."""
    url = f"{oidc.issuer}/.well-known/openid-configuration"
    try:
        reply = requests.get(url, timeout=10, verify=str(oidc.ca_file) if oidc.ca_file else True)
        reply.raise_for_status()
        return reply.json()
    except (requests.RequestException, ValueError) as error:
        raise ClasshubError(f"the identity provider does not answer at {url}: {error}",
                            "check auth.oidc.issuer and that this machine reaches it") from None


def apply_oidc(c, platform: Platform, state: StateDir) -> None:
    from classhub.hub.identity import NOT_ENROLLED

    oidc = platform.site.auth.oidc
    endpoints = discover(oidc)
    c.JupyterHub.authenticator_class = "classhub.hub.identity.ClasshubOIDCAuthenticator"
    a = c.ClasshubOIDCAuthenticator
    a.authorize_url = endpoints["authorization_endpoint"]
    a.token_url = endpoints["token_endpoint"]
    a.userdata_url = endpoints["userinfo_endpoint"]
    a.client_id = oidc.client_id
    a.client_secret = (oidc.client_secret.get_secret_value() if oidc.client_secret
                       else state.secret("oidc_client_secret"))
    a.oauth_callback_url = f"{platform.site.hub.bind_url}/hub/oauth_callback"
    a.scope = list(oidc.scopes)
    a.username_claim = oidc.username_claim
    a.groups_claim = oidc.groups_claim
    a.login_service = "l'établissement"
    a.manage_groups = True
    a.custom_403_message = NOT_ENROLLED
    _course_groups(a, platform, state)
    if oidc.ca_file:
        a.http_request_kwargs = {"ca_certs": str(oidc.ca_file)}


def _course_groups(a, platform: Platform, state: StateDir) -> None:
    a.state_dir = str(state.root)
    a.course_groups = {course_id: course.identity_groups.model_dump()
                       for course_id, course in platform.courses.items()
                       if course.identity_groups.any()}
    a.roster_courses = {course_id: True for course_id, course in platform.courses.items()
                        if not course.identity_groups.any()}


def apply_ldap(c, platform: Platform, state: StateDir) -> None:
    ldap = platform.site.auth.ldap
    c.JupyterHub.authenticator_class = "classhub.hub.identity.ClasshubLDAPAuthenticator"
    a = c.ClasshubLDAPAuthenticator
    a.server_address = ldap.server_address
    if ldap.server_port:
        a.server_port = ldap.server_port
    a.tls_strategy = ldap.tls_strategy
    a.bind_dn_template = list(ldap.bind_dn_template)
    a.valid_username_regex = ldap.username_pattern
    a.group_search_filter = ldap.group_search_filter
    _course_groups(a, platform, state)
    groups = sorted({g for course in platform.courses.values()
                     for g in course.identity_groups.students + course.identity_groups.instructors})
    a.allowed_groups = groups  # ldapauthenticator then reports membership of each


def apply_auth(c, platform: Platform, state: StateDir) -> None:
    auth = platform.site.auth
    c.Authenticator.admin_users = set(auth.admin_users)
    if auth.kind == "oidc":
        apply_oidc(c, platform, state)
        return
    if auth.kind == "ldap":
        apply_ldap(c, platform, state)
        return
    if auth.kind == "shared-password":
        c.JupyterHub.authenticator_class = "shared-password"
        c.SharedPasswordAuthenticator.user_password = auth.shared_password.get_secret_value()
        c.Authenticator.allow_all = True
        return
    c.JupyterHub.authenticator_class = "classhub.hub.auth.LocalPasswordAuthenticator"
    c.LocalPasswordAuthenticator.accounts_db = str(state.accounts_db)
    c.LocalPasswordAuthenticator.failed_logins_before_delay = auth.failed_logins_before_delay
    c.LocalPasswordAuthenticator.failed_login_delay_s = auth.failed_login_delay_s
    c.LocalPasswordAuthenticator.minimum_password_length = auth.minimum_password_length


def apply_groups(c, platform: Platform, state: StateDir) -> None:
    """Groups as the rosters say at start-up; classhub keeps them in step while the hub runs.
    With OIDC the authenticator sets each person's groups at login (rosters included)."""
    if platform.site.auth.external:
        return
    groups = {}
    for course in sorted(platform.courses):
        roster = Roster(state.rosters, course)
        groups[STUDENT_GROUP.format(course=course)] = {"users": roster.students()}
        groups[INSTRUCTOR_GROUP.format(course=course)] = {"users": roster.instructors()}
    c.JupyterHub.load_groups = groups


GPU_CULLER = "classhub-gpu-culler"
SUPERVISION_SERVICE = "classhub-supervision"


def site_uses_gpus(platform: Platform) -> bool:
    return bool(platform.gpu_courses())


def grader_service_url(platform: Platform, gateway: str) -> str:
    return f"http://{gateway}:{platform.site.hub.grader_port}"


def supervision_service_url() -> str:
    """A free port on loopback, taken when the hub starts: only the proxy, on this host, calls
    the page (no container reaches loopback, so the firewall needs no rule for it), and a
    port of its own needs no site key nor a fixed number that something else may hold."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def apply_spawner(c, platform: Platform, state: StateDir, gateway: str) -> None:
    site = platform.site
    profiles = platform.profiles()
    c.JupyterHub.spawner_class = "classhub.hub.spawner.CourseSpawner"
    c.CourseSpawner.courses = {cid: p.model_dump() for cid, p in profiles.items()}
    c.CourseSpawner.state_dir = str(state.root)
    c.CourseSpawner.gpu = site.gpu.model_dump(mode="json")
    c.DockerSpawner.allowed_images = {p.image: p.image for p in profiles.values()}
    c.DockerSpawner.network_name = network_name(site)
    c.DockerSpawner.use_internal_ip = True
    c.DockerSpawner.prefix = site.name
    c.DockerSpawner.remove = True
    c.DockerSpawner.pull_policy = "never"  # images are built here; there is no registry
    c.DockerSpawner.debug = False
    c.Spawner.start_timeout = site.hub.start_timeout_s
    c.Spawner.http_timeout = site.hub.http_timeout_s
    c.Spawner.default_url = "/lab"
    # Each server's token: its user's groups for nbgrader; the grading service for a course's
    # formgrader server only (the service checks the caller's course too).
    c.Spawner.server_token_scopes = server_token_scopes
    c.CourseSpawner.grader_url = (f"{grader_service_url(platform, gateway)}"
                                  f"/services/{GRADER_SERVICE}/")


def apply_limits(c, platform: Platform) -> None:
    hub = platform.site.hub
    c.JupyterHub.concurrent_spawn_limit = hub.concurrent_spawn_limit
    c.JupyterHub.active_server_limit = hub.active_server_limit


def apply_services(c, platform: Platform, state: StateDir, gateway: str) -> None:
    hub = platform.site.hub
    services = [
        {"name": SERVICE_NAME, "api_token": state.secret(TOKEN_SECRET)},
        {   # the formgrader's autograde button: the same sandboxed grader as `classhub grade`
            "name": GRADER_SERVICE,
            "url": grader_service_url(platform, gateway),
            "command": [sys.executable, "-m", "classhub.hub.grader_service"],
            "environment": {"CLASSHUB_SITE": str(platform.site_file)},
            "display": False,
            "oauth_no_confirm": True,  # instructors download grades there: classhub's own
        },
        {   # the admins' page: running servers, the GPUs, buttons to stop and free them
            "name": SUPERVISION_SERVICE,
            "url": supervision_service_url(),
            "command": [sys.executable, "-m", "classhub.hub.supervision"],
            "environment": {"CLASSHUB_SITE": str(platform.site_file),
                            **nvml.seam_environment()},
            "display": True,  # in the Services menu of those who may open it: the admins
            "oauth_no_confirm": True,
        },
    ]
    roles = [
        {
            "name": "classhub-admin",
            "description": "classhub's CLI on this machine: enrolment, status, shutdown",
            "scopes": ["admin:users", "admin:groups", "admin:servers", "read:hub",
                       "access:servers", "tokens"],
            "services": [SERVICE_NAME],
        },
        {   # No user role grants access:services to it: the hub's admin role alone has
            # access:services (JupyterHub's `user` role, `self`, has none).
            "name": SUPERVISION_SERVICE,
            "description": "The admins' supervision page lists servers and stops them",
            "scopes": ["list:users", "read:servers", "delete:servers"],
            "services": [SUPERVISION_SERVICE],
        },
    ]
    if hub.idle_timeout_s:
        services.append(
            {
                "name": "idle-culler",
                "command": [
                    sys.executable, "-m", "jupyterhub_idle_culler",
                    f"--timeout={hub.idle_timeout_s}", f"--cull-every={hub.cull_every_s}",
                ],
                # lets `classhub up` find it if a crashed hub left it running
                "environment": {"CLASSHUB_SITE": str(platform.site_file)},
            }
        )
        roles.append(
            {
                "name": "idle-culler",
                "scopes": ["list:users", "read:users:activity", "read:servers",
                           "delete:servers"],
                "services": ["idle-culler"],
            }
        )
    if site_uses_gpus(platform) and platform.site.gpu.idle_release_after_s:
        services.append(
            {
                "name": GPU_CULLER,
                "command": [sys.executable, "-m", "classhub.gpu.culler"],
                "environment": {"CLASSHUB_SITE": str(platform.site_file),
                                **nvml.seam_environment()},
            }
        )
        roles.append(
            {
                "name": GPU_CULLER,
                "description": "Stops servers that hold a GPU nobody computes on",
                "scopes": ["list:users", "read:servers", "delete:servers"],
                "services": [GPU_CULLER],
            }
        )
    for course in sorted(platform.courses):
        # A course's instructors start, stop and open its formgrader server, and download its
        # grades from the grading service (which checks the course), and nothing else.
        grader = GRADER_ACCOUNT.format(course=course)
        roles.append(
            {
                "name": f"formgrader-{course}",
                "description": f"Instructors of {course} use its formgrader",
                "scopes": [f"servers!user={grader}", f"access:servers!user={grader}",
                           f"read:users!user={grader}",
                           f"access:services!service={GRADER_SERVICE}"],
                "groups": [INSTRUCTOR_GROUP.format(course=course)],
            }
        )
    # A server token never has more than its owner: the grader accounts may call the service.
    roles.append({
        "name": "classhub-graders",
        "description": "Each course's formgrader server may ask the grading service to autograde",
        "scopes": [f"access:services!service={GRADER_SERVICE}"],
        "users": [GRADER_ACCOUNT.format(course=course) for course in sorted(platform.courses)],
    })
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles


def apply_web(c, platform: Platform, state: StateDir) -> None:
    """Logins, refused logins and state-changing requests go to the audit trail; with TLS,
    cookies are Secure and pages carry HSTS."""
    from classhub.hub.audit_hooks import make_log_function

    settings = {"log_function": make_log_function(str(state.root))}
    tls = platform.site.tls
    if tls.enabled:
        settings["cookie_options"] = {"secure": True}
        settings["headers"] = {"Strict-Transport-Security":
                               f"max-age={tls.hsts_max_age_s}; includeSubDomains"}
    c.JupyterHub.tornado_settings = settings


def apply_pages(c) -> None:
    c.JupyterHub.template_paths = [str(TEMPLATES)]


def apply_all(c, platform: Platform, gateway: str) -> None:
    state = StateDir(platform.site.state_dir).ensure()
    apply_state(c, platform, state)
    apply_network(c, platform, gateway)
    apply_proxy(c, platform, state)
    apply_auth(c, platform, state)
    apply_groups(c, platform, state)
    apply_spawner(c, platform, state, gateway)
    apply_limits(c, platform)
    apply_services(c, platform, state, gateway)
    apply_web(c, platform, state)
    apply_pages(c)
