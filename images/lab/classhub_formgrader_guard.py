"""A course's formgrader server never runs student code: its autograde action is sent on.

The *autograde* button (and its API route) goes to classhub's grading service on the host,
which regrades that submission in the same throwaway, network-less sandbox as
`classhub grade COURSE ASSIGNMENT`; this server, which holds the gradebook and the solutions,
executes nothing. The service is given by the spawner (CLASSHUB_GRADER_URL, CLASSHUB_COURSE)
and checks this server's own token. This extension's route is registered before the
formgrader's, so it answers first.
"""

import json
import os
from urllib.parse import quote

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

UNAVAILABLE = ("L'autocorrection passe par le service de correction de classhub, absent ici : "
               "lancez `classhub grade COURS DEVOIR` (correction isolée, sans réseau).")


class AutogradeInSandbox(JupyterHandler):
    @web.authenticated
    async def post(self, assignment_id, student_id):
        self.set_header("Content-Type", "application/json")
        url, course = os.environ.get("CLASSHUB_GRADER_URL"), os.environ.get("CLASSHUB_COURSE")
        if not url or not course:
            self.set_status(503)
            self.finish(json.dumps({"success": False, "error": UNAVAILABLE}))
            return
        target = url + "api/autograde/" + "/".join(
            quote(part, safe="") for part in (course, assignment_id, student_id))
        request = HTTPRequest(target, method="POST", body=b"", request_timeout=3600,
                              headers={"Authorization":
                                       f"token {os.environ['JUPYTERHUB_API_TOKEN']}"})
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as error:
            self.set_status(error.code)
            self.finish(json.dumps({"success": False, "error": f"service de correction : "
                                                              f"{error.code} {error.message}"}))
            return
        self.finish(response.body)


def _jupyter_server_extension_points():
    return [{"module": "classhub_formgrader_guard"}]


def _load_jupyter_server_extension(serverapp):
    base = serverapp.web_app.settings["base_url"]
    route = url_path_join(base, r"/formgrader/api/submission/([^/]+)/([^/]+)/autograde")
    serverapp.web_app.add_handlers(".*$", [(route, AutogradeInSandbox)])
