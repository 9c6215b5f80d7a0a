"""The admins' supervision page, run by the hub as a managed service (JupyterHub's own admin
page cannot be extended):

    GET  /services/classhub-supervision/                the page: running servers, the GPUs
    POST /services/classhub-supervision/stop     user=<name>  stop that person's server
    POST /services/classhub-supervision/release  gpu=<uuid>   free that GPU (or MIG slice)

People log in through the hub (OAuth); only the hub's admins may open the page (the hub grants
`access:services` to its admin role only, and every request checks the user model's `admin`).
Servers are stopped through the hub's API with the service's own token, as the admin page does;
the engine is touched directly only to remove a leftover container that still carries a GPU's
labels while the hub no longer knows its server (an orphan: nobody else would remove it).
Each action goes to the audit trail. It listens on 127.0.0.1: only the proxy, on this host,
needs to reach it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlparse

import docker
from jupyterhub.services.auth import (
    HubOAuth,
    HubOAuthCallbackHandler,
    HubOAuthenticated,
)
from tornado import ioloop, template, web

from classhub import audit
from classhub import engine as engines
from classhub.config import load_platform
from classhub.config.model import Platform
from classhub.errors import ClasshubError
from classhub.gpu import admin as gpu_admin
from classhub.gpu.allocator import Allocation
from classhub.gpu.binding import UUID_LABEL, from_labels
from classhub.gpu.pool import holding
from classhub.hubapi import HubAPI

STOP_WAIT_S = 60
FLASH_COOKIE = "classhub-supervision-flash"
ADMINS_ONLY = "Cette page est réservée aux administrateurs du hub."
UNEXPECTED = "La page de supervision n'a pas pu répondre ; le journal du hub dit pourquoi."


@dataclass(frozen=True)
class Server:
    user: str
    course: str
    started: str
    last_activity: str
    ready: bool
    gpu: Allocation | None


def local_time(iso: str | None) -> str:
    if not iso:
        return "—"
    return datetime.fromisoformat(iso).astimezone().strftime("%d/%m/%Y %H:%M")


def share_text(share: str) -> str:
    return "GPU entier" if share == "1" else f"part {share}"


def running_servers(users: list[dict], containers: list[dict]) -> list[Server]:
    """Each server the hub knows, with the GPU its container's labels record."""
    gpus = {allocation.holder: allocation for _, allocation in holding(containers)}
    # A formgrader server is started without a choice: its course is on its container.
    labelled = {labels.get(engines.USER_LABEL): labels.get(engines.COURSE_LABEL, "")
                for labels in (c.get("Labels") or {} for c in containers)}
    rows = []
    for user in users:
        server = (user.get("servers") or {}).get("")
        if server is None:
            continue
        course = ((server.get("user_options") or {}).get("course")
                  or labelled.get(user["name"], ""))
        rows.append(Server(user["name"], course,
                           local_time(server.get("started")),
                           local_time(server.get("last_activity")),
                           bool(server.get("ready")), gpus.get(user["name"])))
    return sorted(rows, key=lambda s: s.user)


def release_plan(uuid: str, containers: list[dict], known: set[str]
                 ) -> tuple[list[Allocation], list[tuple[str, Allocation]]]:
    """Freeing GPU `uuid`: the holders whose server the hub knows (to stop through the hub),
    and the orphans: containers with that GPU's labels whose server it no longer knows."""
    to_stop, orphans = {}, []
    for container in containers:
        allocation = from_labels(container.get("Labels") or {})
        if allocation is None or allocation.device.uuid != uuid:
            continue
        if allocation.holder in known:
            to_stop[allocation.holder] = allocation
        else:
            orphans.append((container["Id"], allocation))
    return sorted(to_stop.values(), key=lambda a: a.holder), orphans


class Supervisor:
    """What the page reads and does: the hub through its API (this service's token), the
    engine's containers, the GPUs as `classhub gpu list` reports them."""

    def __init__(self, platform: Platform, api: HubAPI):
        self.platform = platform
        self.api = api
        self.state_dir = platform.site.state_dir
        self._engine: docker.DockerClient | None = None

    @property
    def engine(self) -> docker.DockerClient:
        if self._engine is None:
            self._engine = engines.client()
        return self._engine

    def containers(self, *labels: str) -> list[dict]:
        return engines.student_container_records(self.engine, self.platform.site, *labels)

    def users(self, page: int = 200) -> list[dict]:
        """Users whose server is active (starting, running or stopping), every page of them."""
        found: list[dict] = []
        while True:
            batch = self.api.request("GET", "/users",
                                     params={"state": "active", "offset": len(found),
                                             "limit": page})
            found.extend(batch)
            if len(batch) < page:
                return found

    def servers(self) -> list[Server]:
        return running_servers(self.users(), self.containers())

    def gpus(self) -> tuple[dict | None, str]:
        """The GPU report, or None and the one line that says why there is no table."""
        try:
            report = gpu_admin.report(self.platform)
        except ClasshubError as error:
            return None, f"Les GPU de ce poste ne peuvent pas être lus : {error}"
        if report["devices"]:
            return report, ""
        wanting = sorted(self.platform.gpu_courses())
        if wanting:
            note = f" ({report['note']})" if report["note"] else ""
            return None, (f"Aucun GPU n'est recensé sur ce poste{note}, alors que ces cours en "
                          f"demandent un : {', '.join(wanting)}.")
        return None, "Ce poste n'a pas de GPU recensé et aucun cours n'en demande."

    def _stop(self, names: list[str]) -> list[str]:
        """Ask the hub to stop each server, then wait for them together; those still up."""
        for name in names:
            self.api.request("DELETE", f"/users/{quote(name, safe='')}/server",
                             ok=(202, 204, 400))
        waiting = set(names)
        deadline = time.monotonic() + STOP_WAIT_S
        while waiting and time.monotonic() < deadline:
            waiting = {n for n in waiting
                       if (self.api.user(quote(n, safe="")) or {}).get("servers")}
            if waiting:
                time.sleep(0.5)
        return sorted(waiting)

    def stop_server(self, admin: str, name: str) -> tuple[bool, str]:
        user = self.api.user(quote(name, safe=""))
        server = ((user or {}).get("servers") or {}).get("")
        if server is None:
            return False, f"{name} n'a pas de serveur en cours : rien à arrêter."
        course = ((server.get("user_options") or {}).get("course")
                  or next((c["Labels"].get(engines.COURSE_LABEL, "") for c in
                           self.containers(f"{engines.USER_LABEL}={name}")), ""))
        still = self._stop([name])
        audit.record(self.state_dir, admin, "supervision.stop_server", course=course,
                     target=name, stopped=not still)
        if still:
            return False, (f"Arrêt du serveur de {name} demandé, mais il tourne encore après "
                           f"{STOP_WAIT_S} s : rechargez la page dans un moment.")
        return True, f"Serveur de {name} (cours {course or '?'}) arrêté."

    def release_gpu(self, admin: str, uuid: str) -> tuple[bool, str]:
        # Containers first, then who the hub knows: a spawn that creates its container in
        # between is then known (its spawn is pending), never taken for an orphan.
        containers = self.containers(f"{UUID_LABEL}={uuid}")
        known = {user["name"] for user in self.users()}
        to_stop, orphans = release_plan(uuid, containers, known)
        if not to_stop and not orphans:
            return False, f"Personne ne tient le GPU {uuid} : rien à libérer."
        still = self._stop([a.holder for a in to_stop])
        for allocation in to_stop:
            audit.record(self.state_dir, admin, "supervision.release_gpu",
                         course=allocation.course, target=allocation.holder, gpu=uuid,
                         how="server stopped", stopped=allocation.holder not in still)
        removed = []
        for container_id, allocation in orphans:
            try:
                self.engine.api.remove_container(container_id, force=True)
            except docker.errors.NotFound:
                pass  # gone meanwhile
            removed.append(allocation.holder)
            audit.record(self.state_dir, admin, "supervision.release_gpu",
                         course=allocation.course, target=allocation.holder, gpu=uuid,
                         how="orphan container removed", container=container_id[:12])
        done = []
        if to_stop:
            done.append("serveur(s) arrêté(s) : "
                        + ", ".join(a.holder for a in to_stop if a.holder not in still))
        if removed:
            done.append("conteneur(s) orphelin(s) supprimé(s) : " + ", ".join(removed))
        if still:
            return False, (f"GPU {uuid} : {' ; '.join(done)} ; toujours en cours d'arrêt après "
                           f"{STOP_WAIT_S} s : {', '.join(still)}.")
        return True, f"GPU {uuid} libéré : {' ; '.join(done)}."


PAGE = template.Template("""<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Supervision du poste — classhub</title>
<link rel="stylesheet" href="{{ hub_prefix }}static/css/style.min.css">
</head>
<body>
<header class="container py-3">
<nav aria-label="Liens du hub"><a href="{{ hub_prefix }}home">Accueil du hub</a> ·
<a href="{{ hub_prefix }}admin">Administration de JupyterHub</a></nav>
<h1>Supervision du poste</h1>
<p>Connecté en tant que {{ admin }}, administrateur du hub. Chaque action de cette page est
inscrite au journal d'audit (<code>classhub audit</code>).</p>
</header>
<main class="container">
{% if flash %}<div class="alert {{ 'alert-success' if flash_ok else 'alert-warning' }}"
 role="status"><strong>{{ 'Fait :' if flash_ok else 'Attention :' }}</strong> {{ flash }}</div>
{% end %}
<section aria-labelledby="serveurs">
<h2 id="serveurs">Serveurs en cours</h2>
<p>Le bouton « Arrêter » arrête le serveur de la personne par le hub, comme le fait la page
d'administration de JupyterHub : son conteneur est supprimé et son GPU libéré. Ses fichiers
restent dans son dossier personnel ; elle peut relancer son serveur depuis l'accueil.</p>
{% if servers %}
<table class="table table-striped align-middle">
<caption>Serveurs en cours : {{ len(servers) }}</caption>
<thead><tr><th scope="col">Personne</th><th scope="col">Cours</th>
<th scope="col">Démarré le</th><th scope="col">Dernière activité</th>
<th scope="col">État</th><th scope="col">GPU (UUID, part)</th><th scope="col">Action</th></tr>
</thead>
<tbody>
{% for s in servers %}
<tr><th scope="row">{{ s.user }}</th><td>{{ s.course or "—" }}</td>
<td>{{ s.started }}</td><td>{{ s.last_activity }}</td>
<td>{{ "prêt" if s.ready else "en démarrage ou en arrêt" }}</td>
<td>{% if s.gpu %}<code>{{ s.gpu.device.uuid }}</code>, {{ share_text(str(s.gpu.share)) }}
{% else %}aucun{% end %}</td>
<td><form method="post" action="{{ prefix }}stop">{% raw xsrf %}
<input type="hidden" name="user" value="{{ s.user }}"><button type="submit" class="btn btn-danger btn-sm"
 aria-label="Arrêter le serveur de {{ s.user }}">Arrêter</button></form></td></tr>
{% end %}
</tbody>
</table>
{% else %}
<p>Aucun serveur ne tourne.</p>
{% end %}
</section>
<section aria-labelledby="gpus">
<h2 id="gpus">GPU du poste</h2>
{% if gpus is None %}
<p>{{ no_gpus }}</p>
{% else %}
<p>Le bouton « Libérer ce GPU » arrête, par le hub, le serveur de chaque personne qui tient ce
GPU, puis supprime tout conteneur resté avec ce GPU dont le hub ne connaît plus le serveur
(un orphelin). Les réservations ne changent pas : <code>classhub gpu release --reservation</code>
les annule.</p>
<table class="table table-striped align-middle">
<caption>GPU et tranches MIG ({{ gpus["inventory"] }}) : détenteurs, mémoire, part attribuée,
réservations</caption>
<thead><tr><th scope="col">GPU</th><th scope="col">Mémoire utilisée</th>
<th scope="col">Part attribuée</th><th scope="col">Détenteurs</th>
<th scope="col">Réservations</th><th scope="col">Action</th></tr></thead>
<tbody>
{% for d in gpus["devices"] %}
<tr><th scope="row">{{ d["name"] }} <code>{{ d["uuid"] }}</code>
{% if d["mig_of"] %}<br>tranche MIG de <code>{{ d["mig_of"] }}</code>{% end %}
<br>nœud {{ d["node"] }}</th>
<td>{{ "?" if d["memory_used_mib"] is None else d["memory_used_mib"] }} /
{{ d["memory_mib"] or "?" }} Mio</td>
<td>{{ d["load"] }}</td>
<td>{% if d["holders"] %}<ul class="list-unstyled mb-0">{% for h in d["holders"] %}
<li>{{ h["user"] }} (cours {{ h["course"] }}, {{ share_text(h["share"]) }})</li>{% end %}</ul>
{% else %}libre{% end %}</td>
<td>{% if d["reservations"] %}<ul class="list-unstyled mb-0">{% for r in d["reservations"] %}
<li>{{ r["id"] }} : cours {{ r["course"] }}{{ (", " + r["user"]) if r["user"] else "" }},
du {{ local_time(r["start"]) }} au {{ local_time(r["end"]) }}
{{ "(en cours)" if r["active"] else "" }} {{ r["note"] }}</li>{% end %}</ul>
{% else %}aucune{% end %}</td>
<td>{% if d["holders"] %}
<form method="post" action="{{ prefix }}release">{% raw xsrf %}
<input type="hidden" name="gpu" value="{{ d["uuid"] }}"><button type="submit" class="btn btn-danger btn-sm"
 aria-label="Libérer ce GPU : {{ d["uuid"] }}">Libérer ce GPU</button></form>
{% else %}—{% end %}</td></tr>
{% end %}
</tbody>
</table>
{% end %}
</section>
</main>
</body>
</html>
""")

ERROR_PAGE = template.Template("""<!DOCTYPE html>
<html lang="fr">
<head><meta charset="utf-8"><title>{{ title }} — classhub</title>
<link rel="stylesheet" href="{{ hub_prefix }}static/css/style.min.css"></head>
<body><main class="container py-3"><h1>{{ title }}</h1><p>{{ message }}</p>
<p><a href="{{ hub_prefix }}home">Accueil du hub</a></p></main></body>
</html>
""")


class SupervisionHandler(HubOAuthenticated, web.RequestHandler):
    def initialize(self, hub_auth: HubOAuth, supervisor: Supervisor):
        self.hub_auth = hub_auth
        self.supervisor = supervisor

    def admin_name(self) -> str:
        """The hub admin behind this request; anyone else gets 403."""
        user = self.current_user
        if user.get("kind", "user") != "user" or not user.get("admin"):
            raise web.HTTPError(403, f"{user.get('name')} is not a hub admin")
        return user["name"]

    def write_error(self, status_code: int, **kwargs):
        error = kwargs.get("exc_info", (None, None, None))[1]
        if status_code == 403 and "xsrf" in (getattr(error, "log_message", "") or "").lower():
            title, message = ("Formulaire expiré", "Rechargez la page et recommencez.")
        else:
            title, message = {403: ("Accès refusé", ADMINS_ONLY)}.get(
                status_code, (f"Erreur {status_code}", UNEXPECTED))
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(ERROR_PAGE.generate(title=title, message=message,
                                        hub_prefix=self.hub_auth.hub_prefix))

    async def run(self, func, *args):
        return await ioloop.IOLoop.current().run_in_executor(None, func, *args)

    def done(self, ok: bool, message: str) -> None:
        self.set_signed_cookie(FLASH_COOKIE, f"{int(ok)}{message}", expires_days=None,
                               path=self.hub_auth.base_url, httponly=True)
        self.redirect(self.hub_auth.base_url, status=303)


class Page(SupervisionHandler):
    @web.authenticated
    async def get(self):
        admin = self.admin_name()
        servers = await self.run(self.supervisor.servers)
        gpus, no_gpus = await self.run(self.supervisor.gpus)
        flash = self.get_signed_cookie(FLASH_COOKIE, max_age_days=1)
        if flash:
            self.clear_cookie(FLASH_COOKIE, path=self.hub_auth.base_url)
        flash = flash.decode() if flash else ""
        self.set_header("Cache-Control", "no-store")
        self.finish(PAGE.generate(
            admin=admin, servers=servers, gpus=gpus, no_gpus=no_gpus,
            flash=flash[1:], flash_ok=flash[:1] == "1", xsrf=self.xsrf_form_html(),
            prefix=self.hub_auth.base_url, hub_prefix=self.hub_auth.hub_prefix,
            share_text=share_text, local_time=local_time))


class StopServer(SupervisionHandler):
    @web.authenticated
    async def post(self):
        admin = self.admin_name()
        name = self.get_body_argument("user")
        try:
            self.done(*await self.run(self.supervisor.stop_server, admin, name))
        except ClasshubError as error:
            self.done(False, f"le serveur de {name} n'a pas pu être arrêté : {error}")


class ReleaseGpu(SupervisionHandler):
    @web.authenticated
    async def post(self):
        admin = self.admin_name()
        uuid = self.get_body_argument("gpu")
        try:
            self.done(*await self.run(self.supervisor.release_gpu, admin, uuid))
        except (ClasshubError, docker.errors.DockerException) as error:
            self.done(False, f"le GPU {uuid} n'a pas pu être libéré : {error}")


def make_app(site: str) -> web.Application:
    prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
    # The one instance: HubOAuthCallbackHandler finds it with HubOAuth.instance().
    auth = HubOAuth.instance(api_token=os.environ["JUPYTERHUB_API_TOKEN"], cache_max_age=60)
    api = HubAPI(os.environ["JUPYTERHUB_API_URL"].rstrip("/").removesuffix("/hub/api"),
                 os.environ["JUPYTERHUB_API_TOKEN"])
    args = {"hub_auth": auth, "supervisor": Supervisor(load_platform(site), api)}
    return web.Application([
        (prefix, Page, args),
        (rf"{prefix}stop", StopServer, args),
        (rf"{prefix}release", ReleaseGpu, args),
        (rf"{prefix}oauth_callback", HubOAuthCallbackHandler),
    ], cookie_secret=os.urandom(32), xsrf_cookies=True)


def main() -> None:
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    make_app(os.environ["CLASSHUB_SITE"]).listen(url.port, address=url.hostname)
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
