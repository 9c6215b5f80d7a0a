"""OIDC settings and the mapping of provider groups to courses, without a provider."""

from __future__ import annotations

import pytest
import yaml

from classhub.config import load_platform
from classhub.enrolment import Enrolment, Member, wanted_groups
from classhub.errors import ClasshubError, ConfigError
from classhub.hub.identity import ClasshubOIDCAuthenticator
from classhub.roster import Roster
from classhub.state import StateDir

OIDC = {"issuer": "https://idp.chu.example/realms/chu", "client_id": "classhub"}


def _oidc_site(site_file, demo_groups=True):
    data = yaml.safe_load(site_file.read_text())
    data["auth"] = {"kind": "oidc", "oidc": OIDC}
    site_file.write_text(yaml.safe_dump(data))
    if demo_groups:
        course = site_file.parent / "courses" / "demo" / "course.yml"
        spec = yaml.safe_load(course.read_text())
        spec["identity_groups"] = {"students": ["m2-etudiants"], "instructors": ["m2-profs"]}
        course.write_text(yaml.safe_dump(spec))
    return load_platform(site_file)


def test_oidc_needs_its_section_and_the_reverse(site_file):
    data = yaml.safe_load(site_file.read_text())
    data["auth"] = {"kind": "oidc"}
    site_file.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="auth.oidc"):
        load_platform(site_file)
    data["auth"] = {"kind": "local", "oidc": OIDC}
    site_file.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="auth.oidc"):
        load_platform(site_file)


def test_provider_groups_and_rosters_make_the_hub_groups(site_file):
    platform = _oidc_site(site_file)
    state = StateDir(platform.site.state_dir).ensure()
    Roster(state.rosters, "m2-ia-sante").save({"alice": Member("alice")})
    authenticator = ClasshubOIDCAuthenticator(
        state_dir=str(state.root),
        course_groups={"demo": {"students": ["m2-etudiants"], "instructors": ["m2-profs"]}},
        roster_courses={"m2-ia-sante": True})
    assert authenticator.course_hub_groups("alice", {"m2-etudiants", "autre"}) == {
        "nbgrader-demo", "nbgrader-m2-ia-sante"}
    assert authenticator.course_hub_groups("prof", {"m2-profs"}) == {"formgrade-demo"}
    assert authenticator.course_hub_groups("mallory", {"autre"}) == set()


def test_roster_verbs_refuse_for_provider_courses_only(site_file):
    platform = _oidc_site(site_file)
    enrolment = Enrolment(platform)
    with pytest.raises(ClasshubError, match="identity provider's groups"):
        enrolment.add("demo", Member("bob"))
    handout, _ = enrolment.add("m2-ia-sante", Member("bob"))
    assert handout is None  # people log in through the provider: no local password
    groups = wanted_groups(platform, enrolment.state)
    assert "nbgrader-demo" not in groups and groups["nbgrader-m2-ia-sante"] == ["bob"]
