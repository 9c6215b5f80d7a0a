"""The hub's part of the audit trail: logins (any authenticator), refused logins, and every
state-changing request (spawns, stops, admin actions on users, groups, tokens), read from the
hub's own request log; the spawner records what each started container got."""

from __future__ import annotations

from jupyterhub.log import log_request

from classhub.audit import record

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _who(handler) -> str:
    entity = getattr(handler, "_jupyterhub_user", None)
    return getattr(entity, "name", "") or ""


def audited_request(handler, state_dir: str) -> None:
    """What happened, as the hub answered it; called after each request."""
    request, status = handler.request, handler.get_status()
    path, method = request.path, request.method
    ip = request.remote_ip
    if path.endswith("/hub/login") and method == "POST":
        name = handler.get_body_argument("username", "") if status < 500 else ""
        if status < 400:
            record(state_dir, _who(handler) or name, "login", ip=ip)
        else:
            record(state_dir, name[:100], "login.failed", ip=ip, status=status)
    elif path.endswith("/hub/oauth_callback"):
        if status < 400:
            record(state_dir, _who(handler), "login", ip=ip, via="oauth")
        else:
            record(state_dir, "", "login.failed", ip=ip, via="oauth", status=status)
    elif method in WRITES and "/hub/" in path and status < 400 \
            and not path.endswith("/activity"):  # servers' own activity reports
        target = path.split("/hub/", 1)[1]
        record(state_dir, _who(handler), f"hub.{method.lower()}", target=target, ip=ip,
               status=status)


def make_log_function(state_dir: str):
    def log_function(handler):
        log_request(handler)
        audited_request(handler, state_dir)

    return log_function
