"""The supervision page's own logic: which GPU each server holds, what freeing a GPU stops or
removes, and that its pages answer hub admins only (the hub's OAuth replaced by a fixed user)."""

import html
from fractions import Fraction
from types import SimpleNamespace

from tornado import testing, web

from classhub.gpu.allocator import Allocation
from classhub.gpu.binding import labels
from classhub.gpu.devices import DeviceKey
from classhub.hub import supervision

CCCC = DeviceKey("ws", "GPU-cccc")


def container(holder: str, device: DeviceKey, share: str = "1", state: str = "running") -> dict:
    allocation = Allocation(holder, "partage", device, Fraction(share),
                            "shared")
    return {"Id": f"{holder}-id", "State": state, "Labels": labels(allocation)}


def hub_user(name: str, course: str) -> dict:
    return {"name": name, "servers": {"": {
        "user_options": {"course": course}, "ready": True,
        "started": "2026-03-02T09:00:00.000000Z", "last_activity": "2026-03-02T09:30:00Z"}}}


def test_each_server_shows_its_course_and_the_gpu_its_container_holds():
    rows = supervision.running_servers(
        [hub_user("eve", "partage"), hub_user("ana", "demo"), {"name": "zoe", "servers": {}}],
        [container("eve", CCCC, "1/2"), container("ana", DeviceKey("ws", "GPU-aaaa"),
                                                  state="exited")])
    assert [(r.user, r.course) for r in rows] == [("ana", "demo"), ("eve", "partage")]
    assert rows[0].gpu is None  # an exited container holds nothing
    assert rows[1].gpu.device.uuid == "GPU-cccc" and str(rows[1].gpu.share) == "1/2"
    assert rows[1].started.startswith("02/03/2026")


def test_freeing_a_gpu_stops_the_servers_the_hub_knows_and_removes_only_its_orphans():
    stop, orphans = supervision.release_plan(
        "GPU-cccc",
        [container("eve", CCCC, "1/2"), container("dan", CCCC, "1/2"),
         container("zoe", CCCC, "1/2", state="exited"),  # the hub forgot her server
         container("ana", DeviceKey("ws", "GPU-aaaa")), {"Id": "x", "Labels": {}}],
        known={"eve", "dan", "ana"})
    assert [a.holder for a in stop] == ["dan", "eve"]
    assert [(cid, a.holder) for cid, a in orphans] == [("zoe-id", "zoe")]


class FixedUser(supervision.Page):
    def get_current_user(self):
        return self.application.settings["user"]


class PageForAdminsOnly(testing.AsyncHTTPTestCase):
    def get_app(self):
        supervisor = SimpleNamespace(
            servers=lambda: supervision.running_servers([hub_user("eve", "partage")],
                                                        [container("eve", CCCC, "1/2")]),
            gpus=lambda: (None, "Ce poste n'a pas de GPU recensé et aucun cours n'en demande."))
        hub_auth = SimpleNamespace(hub_prefix="/hub/", base_url="/services/s/")
        return web.Application([("/services/s/", FixedUser,
                                 {"hub_auth": hub_auth, "supervisor": supervisor})],
                               user={"kind": "user", "name": "ana", "admin": False},
                               cookie_secret="x")

    def test_a_student_gets_403_in_french(self):
        reply = self.fetch("/services/s/")
        assert reply.code == 403
        assert "réservée aux administrateurs du hub" in reply.body.decode()

    def test_an_admin_sees_the_servers_table(self):
        self._app.settings["user"] = {"kind": "user", "name": "root", "admin": True}
        page = html.unescape(self.fetch("/services/s/").body.decode())
        assert '<html lang="fr">' in page and 'href="/hub/static/css/style.min.css"' in page
        assert '<th scope="row">eve</th><td>partage</td>' in page
        assert "<code>GPU-cccc</code>, part 1/2" in page
        assert 'aria-label="Arrêter le serveur de eve">Arrêter</button>' in page
        assert "Ce poste n'a pas de GPU recensé" in page and "Libérer ce GPU" not in page


class FixedUserStop(supervision.StopServer):
    def get_current_user(self):
        return self.application.settings["user"]


class ActionsForAdminsOnly(testing.AsyncHTTPTestCase):
    """The buttons' POSTs check the admin and the form's XSRF token before doing anything."""

    def get_app(self):
        self.stopped = []
        supervisor = SimpleNamespace(stop_server=lambda admin, name: (
            self.stopped.append((admin, name)) or (True, f"Serveur de {name} arrêté.")))
        # JupyterHub's HubAuth checks the form's token as tornado does (and more): tornado's own
        hub_auth = SimpleNamespace(hub_prefix="/hub/", base_url="/services/s/",
                                   check_xsrf_cookie=web.RequestHandler.check_xsrf_cookie)
        return web.Application([("/services/s/stop", FixedUserStop,
                                 {"hub_auth": hub_auth, "supervisor": supervisor})],
                               user={"kind": "user", "name": "ana", "admin": False},
                               cookie_secret="x", xsrf_cookies=self.xsrf)

    xsrf = False

    def test_a_student_cannot_stop_a_server(self):
        reply = self.fetch("/services/s/stop", method="POST", body="user=eve")
        assert reply.code == 403 and self.stopped == []

    def test_an_admin_stops_one_and_is_sent_back_to_the_page(self):
        self._app.settings["user"] = {"kind": "user", "name": "root", "admin": True}
        reply = self.fetch("/services/s/stop", method="POST", body="user=eve",
                           follow_redirects=False)
        assert reply.code == 303 and reply.headers["Location"] == "/services/s/"
        assert self.stopped == [("root", "eve")]


class ActionsNeedTheFormsToken(ActionsForAdminsOnly):
    xsrf = True

    def test_a_forged_post_does_nothing(self):
        self._app.settings["user"] = {"kind": "user", "name": "root", "admin": True}
        reply = self.fetch("/services/s/stop", method="POST", body="user=eve")
        assert reply.code == 403 and self.stopped == []
        assert "Formulaire expiré" in reply.body.decode()

    test_a_student_cannot_stop_a_server = None
    test_an_admin_stops_one_and_is_sent_back_to_the_page = None
