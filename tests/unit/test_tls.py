"""HTTPS settings: the room's CA and certificate, the model's rules, the hub's cookies and HSTS."""

from __future__ import annotations

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from traitlets.config import Config

from classhub import tls
from classhub.config import load_platform
from classhub.errors import ConfigError
from classhub.hub.config import apply_all
from classhub.state import StateDir


def _site(site_file, **changes):
    data = yaml.safe_load(site_file.read_text())
    for key, value in changes.items():
        data.setdefault(key, {}).update(value)
    site_file.write_text(yaml.safe_dump(data))
    return site_file


def test_tls_init_makes_a_ca_and_a_server_certificate_for_the_names(tmp_path):
    state = StateDir(tmp_path / "state").ensure()
    made = tls.init(state, "salle", ["jupyter.salle.local", "10.20.0.5"])
    assert made.key.stat().st_mode & 0o777 == 0o600
    assert (tls.folder(state) / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    chain = x509.load_pem_x509_certificates(made.certificate.read_bytes())
    server, ca = chain
    ca_file = x509.load_pem_x509_certificate(made.ca.read_bytes())
    assert ca == ca_file
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["jupyter.salle.local"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["10.20.0.5"]
    ca.public_key().verify(server.signature, server.tbs_certificate_bytes,
                           ec.ECDSA(server.signature_hash_algorithm))
    again = tls.init(state, "salle", ["autre.salle.local"])  # renew: same CA
    assert x509.load_pem_x509_certificate(again.ca.read_bytes()) == ca_file


def test_https_and_tls_go_together(site_file):
    import pytest

    _site(site_file, hub={"bind_url": "https://0.0.0.0:443"})
    with pytest.raises(ConfigError, match="tls.enabled"):
        load_platform(site_file)
    _site(site_file, hub={"bind_url": "http://0.0.0.0:8000"}, tls={"enabled": True})
    with pytest.raises(ConfigError, match="tls.enabled"):
        load_platform(site_file)
    _site(site_file, hub={"bind_url": "https://0.0.0.0:443"},
          tls={"enabled": True, "certificate": "/etc/ssl/room.pem"})
    with pytest.raises(ConfigError, match="tls.certificate and tls.key"):
        load_platform(site_file)


def test_cleartext_on_the_network_is_flagged(site_file):
    assert not load_platform(site_file).site.cleartext_exposed()  # 127.0.0.1
    _site(site_file, hub={"bind_url": "http://0.0.0.0:8000"})
    assert load_platform(site_file).site.cleartext_exposed()


def test_hub_sends_secure_cookies_and_hsts_with_tls(site_file):
    _site(site_file, hub={"bind_url": "https://127.0.0.1:8443"}, tls={"enabled": True})
    c = Config()
    apply_all(c, load_platform(site_file), gateway="172.30.0.1")
    assert c.JupyterHub.tornado_settings["cookie_options"] == {"secure": True}
    assert c.JupyterHub.tornado_settings["headers"]["Strict-Transport-Security"].startswith(
        "max-age=31536000")
    assert callable(c.JupyterHub.tornado_settings["log_function"])



def test_listening_on_every_address_without_tls_is_flagged(site_file):
    _site(site_file, hub={"bind_url": "http://127.0.0.1:8000", "listen_address": "0.0.0.0"})
    assert load_platform(site_file).site.cleartext_exposed()
    _site(site_file, hub={"bind_url": "https://room.chu.example", "listen_address": "0.0.0.0"},
          tls={"enabled": True})
    assert not load_platform(site_file).site.cleartext_exposed()


def test_a_given_certificate_is_checked_against_the_system_trust_store(site_file, tmp_path):
    state = StateDir(tmp_path / "state").ensure()
    _site(site_file, hub={"bind_url": "https://room.chu.example"},
          tls={"enabled": True, "certificate": "/etc/classhub/c.pem", "key": "/etc/classhub/k.pem"})
    trusted = tls.trust(load_platform(site_file).site, state)
    assert trusted == (str(tls.SYSTEM_TRUST) if tls.SYSTEM_TRUST.is_file() else True)
    made = tls.init(state, "salle", ["room.chu.example"])  # the room's CA instead
    data = yaml.safe_load(site_file.read_text())
    data["tls"] = {"enabled": True}
    site_file.write_text(yaml.safe_dump(data))
    assert tls.trust(load_platform(site_file).site, state) == str(made.ca)
