"""A small client for the hub's REST API, authenticated with classhub's own service token."""

from __future__ import annotations

import time
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter

from classhub.config.model import Platform
from classhub.errors import ClasshubError
from classhub.state import StateDir

SERVICE_NAME = "classhub"
TOKEN_SECRET = "api_token"


def service_token(state: StateDir) -> str:
    return state.secret(TOKEN_SECRET)


class _TlsNameAdapter(HTTPAdapter):
    """Connects to the address in the URL but speaks TLS to `name`: the name is sent (SNI) and
    the certificate is checked against it, as for a browser that typed the public name."""

    def __init__(self, name: str, **kwargs):
        self.name = name
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["server_hostname"] = self.name
        kwargs["assert_hostname"] = self.name
        super().init_poolmanager(*args, **kwargs)


def local_endpoint(site) -> tuple[str, HTTPAdapter | None]:
    """Where this node reaches its own proxy: the public URL, or, when the proxy listens on a
    given address (`hub.listen_address`), that address (loopback for 0.0.0.0), because the
    public name may not resolve on the node itself (split DNS). The certificate is still
    checked against the public name."""
    bind = urlparse(site.hub.bind_url)
    listen = site.hub.listen_address
    if not listen:
        return site.hub.bind_url, None
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(listen) or \
        (f"[{listen}]" if ":" in listen else listen)
    port = bind.port or (443 if bind.scheme == "https" else 80)
    base = f"{bind.scheme}://{host}:{port}"
    return base, _TlsNameAdapter(bind.hostname) if bind.scheme == "https" else None


def local_session(site) -> tuple[str, requests.Session]:
    base, adapter = local_endpoint(site)
    session = requests.Session()
    if adapter is not None:
        session.mount(base, adapter)
    return base, session


class HubAPI:
    def __init__(self, base_url: str, token: str, timeout: float = 30,
                 verify: str | bool = True, session: requests.Session | None = None):
        self.base = base_url.rstrip("/") + "/hub/api"
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"token {token}"
        self.session.verify = verify
        # requests lets REQUESTS_CA_BUNDLE override a session's CA; the room's CA is passed
        # with each request instead (psf/requests#3829).
        self.verify = verify
        self.timeout = timeout

    @classmethod
    def for_platform(cls, platform: Platform) -> HubAPI:
        from classhub import tls

        state = StateDir(platform.site.state_dir)
        verify = tls.trust(platform.site, state)
        base, session = local_session(platform.site)
        return cls(base, service_token(state), verify=verify, session=session)

    def request(self, method: str, path: str, ok=(200, 201, 202, 204), **kwargs):
        try:
            response = self.session.request(method, self.base + path, timeout=self.timeout,
                                            **{"verify": self.verify, **kwargs})
        except requests.ConnectionError as exc:
            raise ClasshubError(f"the hub does not answer at {self.base}",
                                "start it with `classhub up`") from exc
        except requests.Timeout as exc:
            raise ClasshubError(f"hub API {method} {path} gave no answer within "
                                f"{self.timeout:.0f} s", "the hub is overloaded or stuck; "
                                "journalctl -u classhub-hub (or its log) says why") from exc
        if response.status_code not in ok:
            raise ClasshubError(
                f"hub API {method} {path} answered {response.status_code}: {response.text[:300]}"
            )
        return response.json() if response.content else None

    def reachable(self) -> bool:
        try:
            return self.session.get(self.base + "/", timeout=10,
                                    verify=self.verify).status_code == 200
        except (requests.ConnectionError, requests.Timeout):
            return False

    def users(self) -> list[dict]:
        return self.request("GET", "/users", params={"limit": 10000})

    def user(self, name: str) -> dict | None:
        users = self.request("GET", f"/users/{name}", ok=(200, 404))
        return users if users and "name" in users else None

    def ensure_user(self, name: str) -> None:
        if self.user(name) is None:
            self.request("POST", f"/users/{name}", ok=(201, 409))

    def groups(self) -> dict[str, list[str]]:
        return {g["name"]: g["users"] for g in self.request("GET", "/groups")}

    def set_group(self, name: str, members: list[str], existing: dict[str, list[str]]) -> None:
        if name not in existing:
            self.request("POST", f"/groups/{name}", ok=(201, 409))
        current = set(existing.get(name, []))
        wanted = set(members)
        if wanted - current:
            self.request("POST", f"/groups/{name}/users", json={"users": sorted(wanted - current)})
        if current - wanted:
            self.request("DELETE", f"/groups/{name}/users",
                         json={"users": sorted(current - wanted)})

    def stop_server(self, name: str, wait_s: float = 120) -> None:
        self.request("DELETE", f"/users/{name}/server", ok=(202, 204, 400))
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            user = self.user(name)
            if not user or not user.get("servers"):
                return
            time.sleep(0.5)
        raise ClasshubError(f"the server of {name} did not stop within {wait_s:.0f}s")
