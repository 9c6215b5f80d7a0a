"""The grading service: the formgrader's *autograde* button, run by the hub as a managed service.

    POST /services/classhub-grader/api/autograde/<course>/<assignment>/<student>

A course's formgrader server (user `grader-<course>`) calls it with its own API token; the
service checks with the hub that the token is that account's (or a member of the course's
`formgrade-<course>` group), then regrades that one submission through the same sandboxed
grader as `classhub grade`, and answers in the formgrader's own format:
`{"success": ..., "log": ..., "error": ...}`. It listens on the student network's gateway
address only, like the hub's API; it runs on the host, where the engine is, with the hub.
"""

from __future__ import annotations

import json
import os
import sys
from urllib.parse import urlparse

from jupyterhub.services.auth import HubAuth, HubAuthenticated
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


def make_app() -> web.Application:
    prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
    auth = HubAuth(api_token=os.environ["JUPYTERHUB_API_TOKEN"], cache_max_age=60)
    route = rf"{prefix}api/autograde/([^/]+)/([^/]+)/([^/]+)"
    return web.Application([(route, Autograde, {"hub_auth": auth,
                                                "site": os.environ["CLASSHUB_SITE"]})])


def main() -> None:
    from grading.batch import quiet_nbgrader

    quiet_nbgrader()
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    make_app().listen(url.port, address=url.hostname)
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
