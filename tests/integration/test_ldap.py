"""Logins against a real LDAP directory (Debian's slapd, started by the test), with enrolment
from its groups: a member of the course's student group gets in with her directory password and
the course's hub group; an instructor group gives the formgrader group; a directory user in no
course group, a wrong password and an LDAP-injection attempt do not get in."""

from __future__ import annotations

import shutil
import subprocess
import time

import ldap3
import pytest

from tests.integration.conftest import copy_courses, free_port, start_hub, stop_hub

BASE = "dc=chu,dc=example"
ADMIN, ADMIN_PASSWORD = f"cn=admin,{BASE}", "directory-admin-secret"
STUDENTS, TEACHERS = f"cn=m2-etudiants,ou=groups,{BASE}", f"cn=m2-enseignants,ou=groups,{BASE}"
PEOPLE = {"alice": "alice-pw-2026", "prof": "prof-pw-2026", "mallory": "mallory-pw-2026"}

SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {folder}/slapd.pid
database mdb
maxsize 10485760
suffix "{base}"
rootdn "{admin}"
rootpw {password}
directory {folder}/db
"""


def _dn(uid: str) -> str:
    return f"uid={uid},ou=people,{BASE}"


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    if shutil.which("slapd") is None:
        pytest.fail("slapd is not installed (apt-get install slapd); .ci/run installs it")
    folder = tmp_path_factory.mktemp("slapd")
    (folder / "db").mkdir()
    (folder / "slapd.conf").write_text(SLAPD_CONF.format(folder=folder, base=BASE, admin=ADMIN,
                                                         password=ADMIN_PASSWORD))
    port = free_port()
    process = subprocess.Popen(["slapd", "-d", "0", "-h", f"ldap://127.0.0.1:{port}/",
                                "-f", str(folder / "slapd.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = ldap3.Server(f"ldap://127.0.0.1:{port}")
    deadline = time.monotonic() + 30
    while True:
        try:
            connection = ldap3.Connection(server, ADMIN, ADMIN_PASSWORD, auto_bind=True)
            break
        except ldap3.core.exceptions.LDAPException:
            assert process.poll() is None and time.monotonic() < deadline, \
                process.stderr.read().decode()
            time.sleep(0.2)
    assert connection.add(BASE, ["dcObject", "organization"], {"o": "CHU", "dc": "chu"})
    for unit in ("people", "groups"):
        assert connection.add(f"ou={unit},{BASE}", ["organizationalUnit"], {"ou": unit})
    for uid, password in PEOPLE.items():
        assert connection.add(_dn(uid), ["inetOrgPerson"],
                              {"uid": uid, "cn": uid, "sn": uid, "userPassword": password})
    assert connection.add(STUDENTS, ["groupOfNames"], {"cn": "m2-etudiants",
                                                       "member": [_dn("alice")]})
    assert connection.add(TEACHERS, ["groupOfNames"], {"cn": "m2-enseignants",
                                                       "member": [_dn("prof")]})
    yield port
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def hub(built_images, directory, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ldap")
    copy_courses(folder, identity_groups={"students": [STUDENTS], "instructors": [TEACHERS]})
    running = start_hub(folder, idle_timeout_s=0, auth={
        "kind": "ldap", "admin_users": ["admin"],
        "ldap": {"server_address": "127.0.0.1", "server_port": directory,
                 "tls_strategy": "insecure",  # loopback only, in this test
                 "bind_dn_template": [f"uid={{username}},ou=people,{BASE}"]}})
    yield running
    stop_hub(running)


def test_a_student_of_the_directory_group_gets_in_with_her_course(hub):
    reply, session = hub.login("alice", PEOPLE["alice"])
    assert reply.status_code == 302, reply.status_code
    assert hub.api.user("alice")["groups"] == ["nbgrader-demo"]
    spawn = session.get(f"{hub.url}/hub/spawn", timeout=30)
    assert hub.platform.courses["demo"].title in spawn.content.decode("utf-8")


def test_an_instructor_group_gives_the_formgrader_group(hub):
    reply, _ = hub.login("prof", PEOPLE["prof"])
    assert reply.status_code == 302
    assert hub.api.user("prof")["groups"] == ["formgrade-demo"]


@pytest.mark.parametrize("username, password", [
    ("mallory", PEOPLE["mallory"]),      # in the directory, in no course group
    ("alice", "not-her-password"),
    ("alice)(uid=*", "anything"),        # LDAP injection
])
def test_others_do_not_get_in(hub, username, password):
    reply, _ = hub.login(username, password)
    assert reply.status_code != 302
    assert hub.api.user("mallory") is None
