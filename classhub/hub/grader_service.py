"""The grading service: the formgrader's *autograde* button and the instructors' grade export,
run by the hub as a managed service.

    POST /services/classhub-grader/api/autograde/<course>/<assignment>/<student>
    GET  /services/classhub-grader/notes/<course>/             the export page (a browser's)
    GET  /services/classhub-grader/notes/<course>/<kind>.csv   one export file

A course's formgrader server (user `grader-<course>`) calls it with its own API token; the
service checks with the hub that the token is that account's (or a member of the course's
`formgrade-<course>` group), then regrades that one submission through the same sandboxed
grader as `classhub grade`, and answers in the formgrader's own format:
`{"success": ..., "log": ..., "error": ...}`.
An instructor of the course (hub login, OAuth) downloads the course's grades there, as
`classhub export` writes them: per question, totals, the Moodle import file, pseudonymised.
It listens on the student network's gateway
address only, like the hub's API; it runs on the host, where the engine is, with the hub.
"""

from __future__ import annotations

import html
import json
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from jupyterhub.services.auth import (
    HubAuth,
    HubAuthenticated,
    HubOAuth,
    HubOAuthCallbackHandler,
    HubOAuthenticated,
)
from tornado import ioloop, web

from classhub.config import load_platform
from classhub.errors import ClasshubError
from classhub.hub.spawner import GRADER_ACCOUNT, INSTRUCTOR_GROUP
from grading.progress import Progress
from grading.summary import summary


class Autograde(HubAuthenticated, web.RequestHandler):
    def initialize(self, hub_auth: HubAuth, site: str):
        self.hub_auth = hub_auth
        self.site = site

    def check_xsrf_cookie(self):
        """Token-authenticated API calls only; no cookies are accepted here."""

    @web.authenticated
    async def post(self, course: str, assignment: str, student: str):
        user = self.current_user
        if user["name"] != GRADER_ACCOUNT.format(course=course) and \
                INSTRUCTOR_GROUP.format(course=course) not in user.get("groups", []):
            raise web.HTTPError(403, f"{user['name']} does not grade {course}")
        self.set_header("Content-Type", "application/json")
        try:
            report = await ioloop.IOLoop.current().run_in_executor(
                None, self._grade, course, assignment, student, user["name"])
        except ClasshubError as error:
            self.finish(json.dumps({"success": False, "error": str(error)}))
            return
        result = report.results[0] if report.results else None
        ok = result is not None and result.status != "error"
        self.finish(json.dumps({
            "success": ok, "log": summary(report),
            "error": "" if ok else "; ".join(result.notes if result else ["not graded"])}))

    def _grade(self, course: str, assignment: str, student: str, caller: str):
        from classhub.coursework.lifecycle import autograde

        platform = load_platform(self.site)
        return autograde(platform, course, assignment, jobs=1, force=True, students=[student],
                         progress=Progress(1, stream=sys.stderr), actor=caller)


EXPORTS = {  # the file kinds of grading.export, as an instructor reads them
    "totals": "Note de chaque étudiant à chaque devoir (pénalité de retard appliquée)",
    "questions": "Points question par question",
    "moodle": "Fichier d'import des notes dans Moodle",
    "pseudonymised": "Points sous pseudonyme (pour une analyse hors de la plateforme)",
}

NOTES_PAGE = """<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>Notes — {title}</title>
<link rel="stylesheet" href="{hub}static/css/style.min.css"></head>
<body><main class="container my-4"><h1>Notes du cours « {title} »</h1>
<p>Chaque fichier est produit à la demande depuis le carnet de notes du cours
(les notes saisies dans le formgrader comprises). Chaque téléchargement est inscrit au journal
d'audit.</p>
<ul>{items}</ul>
<p><a href="{hub}home">Retour à l'accueil du hub</a></p></main></body></html>
"""


class Notes(HubOAuthenticated, web.RequestHandler):
    """The course's grade exports, for its instructors (hub login through OAuth)."""

    def initialize(self, hub_auth: HubOAuth, platform):
        self.hub_auth = hub_auth
        self.platform = platform  # read when the service starts, as the hub read it

    def _course(self, course: str):
        # A browser's login only: a token (from code running in someone's server) gets nothing.
        if getattr(self, "_token_authenticated", False):
            raise web.HTTPError(403, "grades are downloaded in a browser, not with a token")
        user = self.current_user
        if INSTRUCTOR_GROUP.format(course=course) not in user.get("groups", []):
            raise web.HTTPError(403, f"{user['name']} does not teach {course}")
        if course not in self.platform.courses:
            raise web.HTTPError(403, f"no course {course}")
        return self.platform

    @web.authenticated
    async def get(self, course: str, kind: str | None = None):
        platform = self._course(course)
        if kind is None:
            items = "".join(
                f'<li><a href="{html.escape(name)}.csv" download>{html.escape(course)}-'
                f"{html.escape(name)}.csv</a> : {html.escape(text)}</li>"
                for name, text in EXPORTS.items())
            self.finish(NOTES_PAGE.format(title=html.escape(platform.courses[course].title),
                                          hub=os.environ["JUPYTERHUB_BASE_URL"] + "hub/",
                                          items=items))
            return
        if kind not in EXPORTS:
            raise web.HTTPError(404)
        content = await ioloop.IOLoop.current().run_in_executor(
            None, self._export, platform, course, kind)
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="{course}-{kind}.csv"')
        self.set_header("Cache-Control", "no-store")
        self.finish(content)

    def _export(self, platform, course: str, kind: str) -> bytes:
        from classhub.coursework.lifecycle import export

        with tempfile.TemporaryDirectory() as folder:
            try:
                files = export(platform, course, Path(folder), actor=self.current_user["name"])
            except ClasshubError as error:
                nothing_graded = "no gradebook.db" in str(error)
                raise web.HTTPError(409 if nothing_graded else 500, str(error)) from None
            return files[kind].read_bytes()

    def write_error(self, status_code: int, **kwargs):
        text = {403: "Seuls les enseignants du cours, connectés au hub dans leur navigateur, "
                     "peuvent télécharger ses notes.",
                404: "Il n'y a pas d'export de ce nom.",
                409: "Rien n'a encore été noté dans ce cours."}.get(
                    status_code, "L'export a échoué : l'erreur est dans le journal du hub.")
        self.finish(f'<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">'
                    f"<title>Notes : erreur {status_code}</title></head><body><main>"
                    f"<h1>{text}</h1></main></body></html>")


def make_app() -> web.Application:
    prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
    site = os.environ["CLASSHUB_SITE"]
    auth = HubAuth(api_token=os.environ["JUPYTERHUB_API_TOKEN"], cache_max_age=60)
    # The one instance: HubOAuthCallbackHandler finds it with HubOAuth.instance() (it keeps the
    # login's PKCE verifier between the redirect and the callback).
    oauth = HubOAuth.instance(api_token=os.environ["JUPYTERHUB_API_TOKEN"], cache_max_age=60)
    route = rf"{prefix}api/autograde/([^/]+)/([^/]+)/([^/]+)"
    notes = {"hub_auth": oauth, "platform": load_platform(site)}
    return web.Application([
        (route, Autograde, {"hub_auth": auth, "site": site}),
        (rf"{prefix}notes/([^/]+)/", Notes, notes),
        (rf"{prefix}notes/([^/]+)/([a-z]+)\.csv", Notes, notes),
        (rf"{prefix}oauth_callback", HubOAuthCallbackHandler),
    ], cookie_secret=os.urandom(32))


def main() -> None:
    from grading.batch import quiet_nbgrader

    quiet_nbgrader()
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    make_app().listen(url.port, address=url.hostname)
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
