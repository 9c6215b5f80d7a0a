"""The hub's pages in French: every template of classhub/hub/templates rendered through the
Jinja environment JupyterHub builds, with the variables JupyterHub's handlers give each page."""

from __future__ import annotations

import asyncio
import inspect
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from types import SimpleNamespace

import jupyterhub.apihandlers.users
import jupyterhub.handlers.login
import jupyterhub.handlers.pages
import jupyterhub.spawner
import pytest
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader
from jupyterhub._data import DATA_FILES_PATH
from jupyterhub.handlers.base import BaseHandler, reasons
from jupyterhub.scopes import scope_definitions
from traitlets.config import Config

from classhub.hub.config import TEMPLATES, apply_pages
from classhub.hub.identity import NOT_ENROLLED
from classhub.hub.spawner import GpuRefused


def hub_environment(enable_async: bool = False) -> Environment:
    """The environment of JupyterHub.init_tornado_settings (jupyterhub/app.py, 6.1.1), with the
    template paths classhub's config gives the hub."""
    c = Config()
    apply_pages(c)
    template_paths = list(c.JupyterHub.template_paths)
    base_path = os.path.join(DATA_FILES_PATH, "templates")  # JupyterHub's own templates
    if base_path not in template_paths:
        template_paths.append(base_path)
    loader = ChoiceLoader([
        PrefixLoader({"templates": FileSystemLoader([base_path])}, "/"),
        FileSystemLoader(template_paths),
    ])
    return Environment(loader=loader, autoescape=True, enable_async=enable_async)


SYNC = hub_environment()
ASYNC = hub_environment(enable_async=True)


def static_url(path, include_version=True):
    return f"/hub/static/{path}" + ("?v=abc123" if include_version else "")


def fake_user(name="alice", running=False, named=()):
    """What the templates read of a jupyterhub.user.User."""
    spawner = SimpleNamespace(name="", display_name="", active=running, ready=running,
                              pending=None, last_activity=None,
                              options_form="<p>formulaire</p>")
    named_spawners = [
        SimpleNamespace(name=server, display_name="", active=False, ready=False, pending=None,
                        last_activity=datetime(2025, 3, 4, 10, 0) if index else None)
        for index, server in enumerate(named)
    ]
    return SimpleNamespace(
        name=name, json_escaped_name=name, spawner=spawner,
        all_spawners=lambda include_default=True: iter(named_spawners),
        server_url=lambda server="": f"/user/{name}/{server + '/' if server else ''}",
    )


ALICE = fake_user()


def namespace(user=ALICE, **page):
    """BaseHandler.template_namespace and render_template's xsrf_token, then the page's own."""
    return {
        "base_url": "/hub/", "prefix": "/", "user": user, "login_url": "/hub/login",
        "login_service": "", "logout_url": "/hub/logout", "static_url": static_url,
        "version_hash": "20250101000000", "services": [], "parsed_scopes": {},
        "expanded_scopes": set(), "xsrf": "xsrf-jeton", "xsrf_token": "xsrf-jeton", **page,
    }


def login_page(**page):
    """LoginHandler._render."""
    return namespace(user=None, **{
        "next": "", "username": "", "login_error": None,
        "authenticator_login_url": "/hub/login?next=",
        "authenticator": SimpleNamespace(request_otp=False, otp_prompt="Code :"),
        "custom_html": "", **page})


def error_page(status_code, message="", message_html="", extra_error_html="",
               status_message=None):
    """BaseHandler.write_error: for a tornado HTTPError the status line is its message."""
    return namespace(status_code=status_code, status_message=status_message or message,
                     message=message, message_html=message_html,
                     extra_error_html=extra_error_html, exception=None)


def expiry_options(expires_in_max=0):
    """The <option>s TokenPageHandler.get builds (jupyterhub/handlers/pages.py, 6.1.1)."""
    options = [(3600, "1 Hour"), (86400, "1 Day"), (7 * 86400, "1 Week"),
               (30 * 86400, "1 Month"), (365 * 86400, "1 Year")]
    if expires_in_max:
        options = [(s, label) for s, label in options if s <= expires_in_max]
        if expires_in_max not in (s for s, _ in options):
            days = expires_in_max / 3600 / 24
            options.append(("", f"Max ({days:.0f} days)"))
    else:
        options.append(("", "Never"))
    html = [f'<option value="{value}">{label}</option>' for value, label in options]
    html[-1] = html[-1].replace("<option ", '<option selected="selected"')
    return "\n".join(html)


SPAWN_HOME_ERROR = BaseHandler.spawn_home_error.fget(SimpleNamespace(hub=SimpleNamespace(
    base_url="/hub/")))
PROXY_DOWN = ("Your server appears to be down. "
              "Try restarting it <a href='/hub/home'>from the hub</a>")  # ProxyErrorHandler
COURSE_FORM = ('<fieldset><legend>Choisissez votre cours</legend><div class="form-check">'
               '<input class="form-check-input" type="radio" name="course" id="course-demo"'
               ' value="demo" checked><label class="form-check-label" for="course-demo">'
               '<strong>Démo</strong></label></div></fieldset>')
GPU_REFUSED = GpuRefused("Tous les GPU de ce poste sont pris : réessayez dans quelques minutes.")
TOKEN = SimpleNamespace(api_id="a1", note="pour mon script", scopes=["read:users:name!user"],
                        last_activity=None, created=datetime(2025, 3, 1, 9, 0), expires_at=None)
CLIENT = {"description": "Serveur de alice", "token_id": "o1", "created": datetime(2025, 3, 1),
          "last_activity": None, "tokens": [SimpleNamespace(scopes=["identify"])]}

# Every page, as its handler renders it; each template of the folder needs one case at least.
CASES = {
    "page.html": {"page": namespace(
        services=[{"name": "classhub-grader", "href": "/services/classhub-grader/"}],
        parsed_scopes={"admin-ui": set()})},
    "login.html": {
        "local": login_page(),
        "wrong-password": login_page(login_error="Invalid username or password",
                                     username="alice"),
        "oidc": login_page(login_service="l'établissement"),
        "terms": login_page(login_term_url="/conditions"),
    },
    "spawn.html": {
        "form": namespace(for_user=ALICE, auth_state=None, spawner_options_form=COURSE_FORM,
                          error_message="", html_error_message="", url="/hub/spawn/alice",
                          spawner=ALICE.spawner),
        "refused": namespace(for_user=ALICE, auth_state=None, spawner_options_form=COURSE_FORM,
                             error_message=GPU_REFUSED.jupyterhub_message,
                             html_error_message="", url="/hub/spawn/alice",
                             spawner=ALICE.spawner),
        "for-another": namespace(for_user=fake_user("bob"), auth_state=None,
                                 spawner_options_form=COURSE_FORM, error_message="",
                                 html_error_message="", url="/hub/spawn/bob",
                                 spawner=ALICE.spawner),
    },
    "spawn_pending.html": {"pending": namespace(
        spawner=ALICE.spawner, auth_state=None,
        progress_url="/hub/api/users/alice/server/progress")},
    "stop_pending.html": {"stopping": namespace(
        spawner=ALICE.spawner, auth_state=None,
        progress_url="/hub/api/users/alice/server/progress")},
    "not_running.html": {
        "stopped": namespace(auth_state=None, server_name="", spawn_url="/hub/spawn/alice",
                             failed=False, failed_html_message=None, failed_message=None,
                             exception=None, implicit_spawn_seconds=0),
        "implicit": namespace(auth_state=None, server_name="", spawn_url="/hub/spawn/alice",
                              failed=False, failed_html_message=None, failed_message=None,
                              exception=None, implicit_spawn_seconds=10),
        "failed": namespace(auth_state=None, server_name="", spawn_url="/hub/spawn/alice",
                            failed=True, failed_html_message=None,
                            failed_message=GPU_REFUSED.jupyterhub_message,
                            exception=GPU_REFUSED, implicit_spawn_seconds=0),
    },
    "error.html": {
        "gpu-refused": error_page(503, GPU_REFUSED.jupyterhub_message,
                                  extra_error_html=SPAWN_HOME_ERROR),
        "not-enrolled": error_page(403, NOT_ENROLLED),
        "bad-request": error_page(400, "Choisissez le cours de votre serveur."),
        "forbidden": error_page(403, status_message="Forbidden"),
        "internal": error_page(500, status_message="Internal Server Error"),
        "proxy-down": error_page(503, message_html=PROXY_DOWN,
                                 status_message="Service Unavailable"),
        "timeout": error_page(500, reasons["timeout"]),
        "spawn-error": error_page(500, reasons["error"]),
        "too-many": error_page(429, "Active user limit exceeded. Try again in a few minutes."),
    },
    "404.html": {"plain": error_page(404, status_message="Not Found"),
                 "no-such-user": error_page(404, "Aucun utilisateur de ce nom.")},
    "home.html": {
        "stopped": namespace(auth_state=None, url="/hub/spawn/alice", allow_named_servers=False,
                             named_server_limit_per_user=0, spawners={},
                             default_server=ALICE.spawner, invalid_server_names=[]),
        "running": namespace(user=fake_user(running=True), auth_state=None, url="/user/alice",
                             allow_named_servers=False, named_server_limit_per_user=0,
                             spawners={}, default_server=fake_user(running=True).spawner,
                             invalid_server_names=[]),
        "named": namespace(user=fake_user(named=("analyse", "Old_Name")), auth_state=None,
                           url="/hub/spawn/alice", allow_named_servers=True,
                           named_server_limit_per_user=3, spawners={},
                           default_server=ALICE.spawner, invalid_server_names=["Old_Name"]),
    },
    "token.html": {
        "empty": namespace(api_tokens=[], oauth_clients=[], auth_state=None,
                           token_expires_in_options_html=expiry_options(),
                           token_expires_in_max_seconds=0),
        "tokens": namespace(api_tokens=[TOKEN], oauth_clients=[CLIENT], auth_state=None,
                            token_expires_in_options_html=expiry_options(4 * 86400),
                            token_expires_in_max_seconds=4 * 86400),
    },
    "logout.html": {"logged-out": namespace(user=None)},
    "accept-share.html": {"invited": namespace(
        user=fake_user("bob"), code="c0de", owner=ALICE, spawner=ALICE.spawner,
        spawner_ready=False, spawner_url="/user/alice/",
        scope_descriptions=[{"scope": "access:servers",
                             "description": scope_definitions["access:servers"]["description"],
                             "filter": "only you"}],
        next_url="/user/alice/")},
    "oauth.html": {"identify": namespace(
        auth_state=None, allowed_scopes=["identify"],
        scope_descriptions=[{"scope": None,
                             "description": scope_definitions["(no_scope)"]["description"],
                             "filter": ""}],
        oauth_client=SimpleNamespace(description="classhub-grader",
                                     redirect_uri="/services/classhub-grader/oauth_callback"))},
    "change-password.html": {
        "form": namespace(message="", error=False),
        "refused": namespace(message="Le mot de passe actuel est incorrect.", error=True),
    },
    # JupyterHub's own admin.html (a React app, left in English) on classhub's page.html.
    "admin.html": {"admin": namespace(
        admin_access=True, allow_named_servers=False, named_server_limit_per_user=0,
        server_version="6.1.1", api_page_limit=50, parsed_scopes={"admin-ui": set()})},
}

# The English a person would see on JupyterHub's own pages.
ENGLISH = [
    "Sign in", "Username", "Password", "Login", "Logout", "Home", "Token", "Start", "My Server",
    "Stop Server", "Stop My Server", "Server Options", "Your server is starting up",
    "Your server is stopping", "You will be redirected", "Event log", "Complete",
    "Spawn failed", "Server not running", "Launch", "Relaunch", "Would you like", "refresh",
    "Named Servers", "Add New Server", "Never", "Authorize", "Accept invitation",
    "Successfully logged out", "Warning", "Toggle", "Close", "Show password", "Hide password",
    "Error", "requires JavaScript", "Request new API token", "Copy this token", "Last used",
    "Expires", "revoke", "delete", "Jupyter has lots of moons", "Not Found", "Forbidden",
    "Internal Server Error", "Service Unavailable", "Failed to", "Try again", "appears to be down",
    "You can try", "1 Hour", "1 Day", "days", "Identify the owner", "only you",
]


@dataclass
class Page:
    html: str
    lang: str | None = None
    text: str = ""  # what is seen or read aloud: text, titles, labels, placeholders, buttons
    ids: set[str] = field(default_factory=set)
    script: str = ""
    alerts: list[str] = field(default_factory=list)
    labelled: set[str] = field(default_factory=set)  # ids a <label for=...> names


class _Reader(HTMLParser):
    SPOKEN = ("title", "aria-label", "placeholder", "alt")
    INLINE = ("a", "span", "strong", "em", "small", "i", "b", "code")

    def __init__(self, page: Page):
        super().__init__()
        self.page, self.parts, self.code = page, [], []
        self.in_code = 0
        self.alert_depth: list[int] = []  # depth of each open role="alert"
        self.depth = 0
        self.alert_parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.page.lang = attrs.get("lang")
        if tag in ("script", "style"):
            self.in_code += 1
        if attrs.get("id"):
            self.page.ids.add(attrs["id"])
        if tag == "label" and attrs.get("for"):
            self.page.labelled.add(attrs["for"])
        if tag not in self.INLINE:
            self.parts.append(" ")
            self.alert_parts.append(" ")
        self.parts += [f" {attrs[name]} " for name in self.SPOKEN if attrs.get(name)]
        if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
            self.parts.append(f" {attrs['value']} ")
        if tag not in ("input", "br", "img", "meta", "link"):
            self.depth += 1
            if attrs.get("role") == "alert":
                self.alert_depth.append(self.depth)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.in_code -= 1
        if tag not in ("input", "br", "img", "meta", "link"):
            if self.alert_depth and self.alert_depth[-1] == self.depth:
                self.alert_depth.pop()
                self.page.alerts.append(" ".join("".join(self.alert_parts).split()))
                self.alert_parts = []
            self.depth -= 1

    def handle_data(self, data):
        if self.in_code:
            self.code.append(data)
            return
        self.parts.append(data)
        if self.alert_depth:
            self.alert_parts.append(data)


def read(html: str) -> Page:
    page = Page(html)
    reader = _Reader(page)
    reader.feed(html)
    reader.close()
    page.text = " ".join("".join(reader.parts).split())
    page.script = "\n".join(reader.code)
    return page


def render(template: str, case: str) -> Page:
    return read(SYNC.get_template(template).render(**CASES[template][case]))


ALL_CASES = [(template, case) for template, cases in CASES.items() for case in cases]


def test_every_template_of_the_folder_has_a_case():
    assert {path.name for path in TEMPLATES.glob("*.html")} <= set(CASES)


@pytest.mark.parametrize(("template", "case"), ALL_CASES,
                         ids=[f"{t}-{c}" for t, c in ALL_CASES])
def test_each_page_is_in_french_with_no_english_left(template, case):
    context = CASES[template][case]
    html = SYNC.get_template(template).render(**context)
    # the hub renders pages with its async environment and error pages with the sync one
    assert asyncio.run(ASYNC.get_template(template).render_async(**context)) == html
    page = read(html)
    assert page.lang == "fr"
    assert re.search(r"<title>[^<]*\S[^<]*</title>", html)
    left = [english for english in ENGLISH if re.search(rf"\b{re.escape(english)}\b", page.text)]
    assert not left, f"English left on {template} ({case}): {left}\n{page.text}"


def test_the_base_page_keeps_what_jupyterhubs_scripts_use_and_adds_a_skip_link():
    page = render("page.html", "page")
    assert "Accueil" in page.text and "Jeton" in page.text and "Admin" in page.text
    assert "Services" in page.text and "Se déconnecter" in page.text
    assert {"logout", "thenavbar", "dark-theme-toggle", "login_widget", "jupyterhub-logo",
            "error-dialog", "main-content", "skip-to-main"} <= page.ids
    assert 'href="#main-content"' in page.html
    assert "Aller au contenu principal" in page.text
    assert 'user: "alice"' in page.script and 'xsrf_token: "xsrf-jeton"' in page.script


def test_a_page_without_user_offers_to_log_in():
    page = render("logout.html", "logged-out")
    assert "Se connecter" in page.text and "Vous êtes déconnecté(e)." in page.text
    assert "login" in page.ids and "logout" not in page.ids


def test_the_login_form_is_in_french_with_jupyterhubs_ids_and_labelled_fields():
    page = render("login.html", "local")
    assert "Connexion" in page.text
    assert "Identifiant" in page.text and "Mot de passe" in page.text
    assert 'value=\'Se connecter\'' in page.html
    assert {"username_input", "password_input", "login_submit", "insecure-login-warning",
            "toggle_password_visibility", "login-main"} <= page.ids
    assert {"username_input", "password_input"} <= page.labelled
    assert 'name="_xsrf" value="xsrf-jeton"' in page.html
    assert "Attention" in page.text and "HTTPS" in page.text
    # the password toggle says what it does, in French, before and after a click
    assert "Afficher le mot de passe" in page.text
    assert "Masquer le mot de passe" in page.script
    assert "Show password" not in page.script and "Hide password" not in page.script
    # JupyterHub's inherited script: the HTTP warning and the submit feedback
    assert "insecure-login-warning" in page.script and "feedback-container" in page.script


def test_a_wrong_password_is_said_in_french():
    assert "Invalid username or password" in inspect.getsource(jupyterhub.handlers.login)
    page = render("login.html", "wrong-password")
    assert page.alerts == ["Identifiant ou mot de passe incorrect."]
    assert 'class="login_error"' in page.html and 'value="alice"' in page.html


def test_an_identity_provider_login_names_it_in_french():
    page = render("login.html", "oidc")
    assert "Se connecter avec l'établissement" in page.text
    assert "username_input" not in page.ids


def test_the_terms_checkbox_is_labelled_in_french():
    page = render("login.html", "terms")
    assert "login_terms_checkbox" in page.labelled
    assert "conditions d'utilisation" in page.text


def test_the_spawn_page_shows_the_course_form_and_a_french_start_button():
    page = render("spawn.html", "form")
    assert "Options du serveur" in page.text and "Démarrer" in page.text
    assert "spawn_form" in page.ids and 'action="/hub/spawn/alice"' in page.html
    assert "Choisissez votre cours" in page.text and "course-demo" in page.labelled
    assert not page.alerts


def test_a_refused_spawn_shows_the_spawners_message_in_an_alert():
    page = render("spawn.html", "refused")
    assert page.alerts == [f"Erreur : {GPU_REFUSED.jupyterhub_message}"]
    assert "spawn-error-msg" in page.html
    assert "Vous démarrez le serveur de bob." in render("spawn.html", "for-another").text


def test_the_pending_page_translates_jupyterhubs_own_progress_messages():
    page = render("spawn_pending.html", "pending")
    assert "Votre serveur démarre." in page.text
    assert "Vous serez redirigé(e) automatiquement" in page.text
    assert "Journal des événements" in page.text and "Arrêter le serveur" in page.text
    assert {"progress-bar", "sr-progress", "progress-message", "progress-details",
            "progress-log", "stop-server-btn", "stop-server-status", "spawn-failed",
            "spawn-failed-message"} <= page.ids
    assert 'new EventSource("/hub/api/users/alice/server/progress")' in page.script
    # the English JupyterHub sends: each mapped message is one it really writes
    sent = (inspect.getsource(jupyterhub.spawner)
            + inspect.getsource(jupyterhub.apihandlers.users))
    for english, french in [("Server requested", "Serveur demandé"),
                            ("Spawning server...", "Démarrage du serveur…"),
                            ("Spawn cancelled", "Démarrage annulé"),
                            ("Spawn failed", "Le démarrage a échoué")]:
        assert f'"{english}"' in sent
        assert f'"{english}": "{french}"' in page.script
    assert 'f"Spawn failed: {message}"' in sent and '"Spawn failed: "' in page.script
    assert "f\"Server ready at {url}\"" in sent and '"Server ready at "' in page.script
    # none of the English the stop button's script shows is left
    for english in ("'Stopping...'", "'Stopping server...'", "'Server stopped successfully!'",
                    "'Error stopping server'", "'Stop Server'"):
        assert english not in page.script


def test_a_failed_spawn_is_shown_in_an_alert_with_the_servers_message():
    page = render("spawn_pending.html", "pending")
    assert 'role="alert" hidden' in page.html
    assert "Votre serveur n'a pas pu démarrer." in page.text
    assert "evt.message.slice(FAILED_PREFIX.length)" in page.script
    assert "$(\"#spawn-failed\").prop('hidden', false)" in page.script


def test_the_stop_pending_page_is_in_french():
    page = render("stop_pending.html", "stopping")
    assert "Votre serveur s'arrête." in page.text and "Actualiser" in page.text
    assert "refresh" in page.ids and "window.location.reload" in page.script


def test_not_running_offers_to_start_in_french():
    page = render("not_running.html", "stopped")
    assert "Votre serveur est arrêté" in page.text and "Démarrer le serveur" in page.text
    assert "start" in page.ids and 'href="/hub/spawn/alice"' in page.html
    assert 'require(["not_running"])' in page.script
    implicit = render("not_running.html", "implicit")
    assert "Il va redémarrer automatiquement." in implicit.text
    assert "implicit_spawn_seconds = 10" in implicit.script


def test_not_running_after_a_failure_shows_the_spawners_message():
    page = render("not_running.html", "failed")
    assert "Le démarrage a échoué" in page.text and "Relancer le serveur" in page.text
    assert page.alerts == [GPU_REFUSED.jupyterhub_message]


@pytest.mark.parametrize(("case", "title"), [
    ("bad-request", "Requête incorrecte (erreur 400)"),
    ("forbidden", "Accès refusé (erreur 403)"),
    ("internal", "Erreur du serveur (erreur 500)"),
    ("gpu-refused", "Service indisponible (erreur 503)"),
    ("too-many", "Trop de demandes (erreur 429)"),
])
def test_error_pages_have_french_titles(case, title):
    page = render("error.html", case)
    assert title in page.text
    assert f"<title>{title.split(' (')[0]} – JupyterHub</title>" in page.html


def test_the_404_page_has_its_french_title_once():
    assert render("404.html", "plain").text.count("Page introuvable (erreur 404)") == 1


def test_the_spawners_french_message_is_the_first_thing_on_the_error_page():
    page = render("error.html", "gpu-refused")
    assert page.alerts == [GPU_REFUSED.jupyterhub_message]
    assert "Vous pouvez essayer de redémarrer votre serveur depuis la page d'accueil." in page.text
    assert "You can try restarting your server" in SPAWN_HOME_ERROR  # what is replaced
    not_enrolled = render("error.html", "not-enrolled")
    assert not_enrolled.alerts == [NOT_ENROLLED]
    assert "aucun cours" in not_enrolled.html  # as the OIDC integration test reads it


def test_jupyterhubs_own_english_messages_are_put_in_french():
    assert render("error.html", "timeout").alerts[0].startswith(
        "Votre serveur ne répond pas. Réessayez dans quelques minutes")
    assert render("error.html", "spawn-error").alerts[0].startswith(
        "Votre serveur n'a pas pu démarrer.")
    assert render("error.html", "too-many").alerts[0].startswith("Trop de serveurs")
    proxy = render("error.html", "proxy-down")
    assert proxy.alerts == ["Votre serveur semble arrêté. Redémarrez-le depuis la page d'accueil."]
    assert 'href="/hub/home"' in proxy.html
    pages_source = inspect.getsource(jupyterhub.handlers.pages)
    assert '"Your server appears to be down."' in pages_source
    assert "Active user limit exceeded. Try again in a few minutes." in inspect.getsource(
        jupyterhub.handlers.base)


def test_an_error_without_message_explains_itself_in_french():
    assert "Une erreur inattendue s'est produite." in render("error.html", "internal").text
    assert "Vous n'avez pas accès à cette page." in render("error.html", "forbidden").text
    assert "La page demandée n'existe pas." in render("404.html", "plain").text
    assert render("404.html", "no-such-user").alerts == ["Aucun utilisateur de ce nom."]
    # JupyterHub's script that drops ?redirects= from the address is kept
    assert "_remove_redirects_from_url" in render("error.html", "internal").script


def test_the_home_page_starts_and_stops_my_server_in_french():
    stopped = render("home.html", "stopped")
    assert "Démarrer mon serveur" in stopped.text and "stop" not in stopped.ids
    running = render("home.html", "running")
    assert "Arrêter mon serveur" in running.text and "Ouvrir mon serveur" in running.text
    assert {"start", "stop"} <= running.ids and 'href="/user/alice"' in running.html
    # home.js comes after moment's French locale, and its English is put back in French
    assert 'require(["home"])' in running.script
    assert '"components/moment/locale/fr"' in running.script
    assert '"Start My Server": "Démarrer mon serveur"' in running.script
    assert "'components/moment/moment': 'moment'" in running.script  # page.html's require map


def test_the_home_page_lists_named_servers_in_french():
    page = render("home.html", "named")
    assert "Serveurs nommés" in page.text and "Ajouter un serveur" in page.text
    assert "3 autre(s) serveur(s)" in page.text and "Old_Name" in page.text
    assert {"start-analyse", "stop-analyse", "delete-analyse"} <= page.ids
    assert "Jamais" in page.text and "Supprimer" in page.text
    assert 'class="new-server-name form-control"' in page.html


def test_the_token_page_is_usable_in_french():
    page = render("token.html", "empty")
    assert {"request-token-form", "token-note", "token-expiration-seconds", "token-scopes",
            "token-area", "token-result"} <= page.ids
    assert {"token-note", "token-expiration-seconds", "token-scopes"} <= page.labelled
    assert "Demander un nouveau jeton" in page.text and "Durée de validité" in page.text
    # JupyterHub writes the selected option without a space before value=
    assert re.search(r'<option selected="selected"\s*value="">Illimitée</option>', page.html)
    assert '<option value="3600">1 heure</option>' in page.html
    assert 'require(["token"])' in page.script
    assert '(3600, "1 Hour")' in inspect.getsource(jupyterhub.handlers.pages)


def test_the_token_page_lists_tokens_in_french():
    page = render("token.html", "tokens")
    assert re.search(r'<option selected="selected"\s*value="">Max \(4 jours\)</option>',
                     page.html)
    assert "api-tokens-table" in page.ids and "oauth-tokens-table" in page.ids
    assert "Révoquer" in page.text and "Jamais" in page.text
    assert "Applications autorisées" in page.text and "pour mon script" in page.text
    assert 'data-token-id="a1"' in page.html and 'data-token-id="o1"' in page.html


def test_sharing_and_oauth_pages_ask_in_french():
    share = render("accept-share.html", "invited")
    assert "Accepter l'invitation" in share.text and "S'applique à : vous seulement." in share.text
    assert 'name="code" value="c0de"' in share.html
    oauth = render("oauth.html", "identify")
    assert "Autoriser l'accès" in oauth.text and "Autoriser" in oauth.text
    assert "vous identifier." in oauth.text
    assert 'name="scopes" value="identify"' in oauth.html


def test_the_password_page_and_the_admin_page_share_the_french_frame():
    password = render("change-password.html", "refused")
    assert password.alerts == ["Le mot de passe actuel est incorrect."]
    assert {"current_password", "new_password", "new_password_again"} <= password.labelled
    admin = render("admin.html", "admin")
    assert "react-admin-hook" in admin.ids and "Admin" in admin.text
