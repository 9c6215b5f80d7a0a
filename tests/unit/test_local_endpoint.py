"""The node reaches its own proxy on the address it listens on, while TLS still checks the
public name (split DNS: the public name may not resolve on the node itself)."""

from __future__ import annotations

import http.server
import ssl
import threading

import pytest
import requests

from classhub import tls
from classhub.config.model import Site
from classhub.hubapi import local_endpoint, local_session
from classhub.state import StateDir


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def https_server(tmp_path):
    """A real HTTPS server on 127.0.0.1 with a certificate for room.chu.example only."""
    made = tls.init(StateDir(tmp_path / "state").ensure(), "salle", ["room.chu.example"])
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(made.certificate, made.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], made.ca
    server.shutdown()


def _site(bind_url, listen=None):
    return Site.model_validate({"hub": {"bind_url": bind_url, "listen_address": listen},
                                "tls": {"enabled": bind_url.startswith("https")}})


def test_without_listen_address_the_public_url_is_used():
    assert local_endpoint(_site("https://room.chu.example")) == ("https://room.chu.example", None)


def test_loopback_is_asked_and_the_certificate_checked_against_the_public_name(https_server):
    port, ca = https_server
    base, session = local_session(_site(f"https://room.chu.example:{port}", "0.0.0.0"))
    assert base == f"https://127.0.0.1:{port}"
    assert session.get(base + "/hub/health", verify=str(ca), timeout=5).text == "ok"


def test_a_certificate_for_another_name_is_refused(https_server):
    port, ca = https_server
    base, session = local_session(_site(f"https://other.chu.example:{port}", "0.0.0.0"))
    with pytest.raises(requests.exceptions.SSLError):
        session.get(base + "/hub/health", verify=str(ca), timeout=5)


def test_ipv6_listen_addresses_are_bracketed():
    assert local_endpoint(_site("http://room.chu.example", "::"))[0] == "http://[::1]:80"
    assert local_endpoint(_site("http://room.chu.example:8000", "fd00::5"))[0] == \
        "http://[fd00::5]:8000"
