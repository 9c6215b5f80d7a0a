"""Logins through the institution's identity provider (OIDC) or directory (LDAP), with
enrolment from its groups.

oauthenticator's GenericOAuthenticator and jupyterhub-ldapauthenticator do the protocol work;
classhub adds, for both:

- At each login, the person's hub groups are computed: `nbgrader-<course>` / `formgrade-<course>`
  for every course whose `identity_groups` name one of the person's groups (OIDC: names in the
  groups claim; LDAP: group DNs the person is a member of), plus the groups their roster entries
  give (courses enrolled by roster). The hub then sets exactly those (`manage_groups`), so
  leaving a group loses the course at the next login.
- Nobody enrolled in anything (and not an admin) is refused with a 403 page that says so.
- OIDC: a provider that sends no username claim gets a 403 page naming the claim, not a 500.
"""

from __future__ import annotations

from pathlib import Path

from ldapauthenticator import LDAPAuthenticator
from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from traitlets import Bool, Dict, HasTraits, Unicode

from classhub.hub.spawner import INSTRUCTOR_GROUP, STUDENT_GROUP
from classhub.roster import Roster
from classhub.state import StateDir

NOT_ENROLLED = ("Votre compte est reconnu par l'établissement, mais vous n'êtes inscrit(e) à "
                "aucun cours de cette salle. Demandez à votre enseignant(e) de vous inscrire.")


class CourseGroups(HasTraits):
    """The mapping shared by both authenticators."""

    course_groups = Dict(
        config=True, help="course id -> {'students': [provider groups], 'instructors': [...]}")
    roster_courses = Dict(config=True, help="course ids enrolled by roster -> True")
    state_dir = Unicode(config=True)

    def course_hub_groups(self, username: str, provider_groups: set[str]) -> set[str]:
        found = set()
        for course, spec in self.course_groups.items():
            if provider_groups & set(spec.get("students", [])):
                found.add(STUDENT_GROUP.format(course=course))
            if provider_groups & set(spec.get("instructors", [])):
                found.add(INSTRUCTOR_GROUP.format(course=course))
        rosters = StateDir(Path(self.state_dir)).rosters
        for course in self.roster_courses:
            member = Roster(rosters, course).members().get(username)
            if member is not None:
                group = INSTRUCTOR_GROUP if member.role == "instructor" else STUDENT_GROUP
                found.add(group.format(course=course))
        return found

    def provider_group_names(self) -> list[str]:
        return sorted({g for spec in self.course_groups.values()
                       for key in ("students", "instructors") for g in spec.get(key, [])})


class ClasshubOIDCAuthenticator(CourseGroups, GenericOAuthenticator):
    groups_claim = Unicode("groups", config=True)

    def _provider_groups(self, user_info: dict) -> set[str]:
        groups = user_info.get(self.groups_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        return {str(g) for g in groups} if isinstance(groups, list) else set()

    def user_info_to_username(self, user_info):
        name = user_info.get(self.username_claim) if isinstance(self.username_claim, str) \
            else self.username_claim(user_info)
        if not name:
            self.log.warning("The identity provider sent no %r claim", self.username_claim)
            raise web.HTTPError(
                403, f"Le fournisseur d'identité n'a pas transmis votre identifiant (attribut "
                     f"« {self.username_claim} »). Signalez-le au service informatique.")
        return name

    async def get_user_groups(self, auth_state: dict):
        user_info = auth_state.get(self.user_auth_state_key) or {}
        username = self.normalize_username(self.user_info_to_username(user_info))
        return self.course_hub_groups(username, self._provider_groups(user_info))

    async def check_allowed(self, username, auth_model):
        if await super().check_allowed(username, auth_model):
            return True
        return bool(auth_model.get("groups")) or username in self.admin_users


class ClasshubLDAPAuthenticator(CourseGroups, LDAPAuthenticator):
    """The directory checks the password and tells group membership (of the group DNs the
    courses name, looked up with ldapauthenticator's `allowed_groups` search)."""

    manage_groups = Bool(True)

    async def authenticate(self, handler, data):
        model = await super().authenticate(handler, data)
        if model is None:
            return None
        member_of = set((model.get("auth_state") or {}).get("ldap_groups", []))
        model["groups"] = sorted(self.course_hub_groups(model["name"], member_of))
        return model

    async def check_allowed(self, username, auth_model):
        return bool(auth_model.get("groups")) or username in self.admin_users
