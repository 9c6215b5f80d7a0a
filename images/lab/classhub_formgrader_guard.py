"""A course's formgrader server never runs student code: its autograde action is refused.

Autograding runs in classhub's sandboxed grader (`classhub grade COURSE ASSIGNMENT`), away
from the gradebook and the solutions that this server holds. This
extension's route is registered before the formgrader's, so it answers first.
"""

import json

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

MESSAGE = ("L'autocorrection ne s'exécute pas ici : lancez `classhub grade COURS DEVOIR` "
           "(correction isolée, sans réseau).")


class AutogradeRefused(JupyterHandler):
    @web.authenticated
    def post(self, *args):
        self.set_status(403)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"success": False, "error": MESSAGE}))


def _jupyter_server_extension_points():
    return [{"module": "classhub_formgrader_guard"}]


def _load_jupyter_server_extension(serverapp):
    base = serverapp.web_app.settings["base_url"]
    route = url_path_join(base, r"/formgrader/api/submission/([^/]+)/([^/]+)/autograde")
    serverapp.web_app.add_handlers(".*$", [(route, AutogradeRefused)])
