"""Logins for the embedded default: each person has their own password, stored hashed.

jupyterhub-nativeauthenticator 1.3.0 was the first choice, but it fails on JupyterHub 6 (its
login handler reads the removed `statsd` attribute and its `_render` rejects `sync=`), so this
small authenticator reads the accounts that `classhub roster` creates instead.
"""

from __future__ import annotations

import asyncio
import time

from jupyterhub.auth import Authenticator
from jupyterhub.handlers import BaseHandler
from tornado import web
from traitlets import Integer, Unicode

from classhub.accounts import AccountStore


class LocalPasswordAuthenticator(Authenticator):
    """Checks a username and password against classhub's account store (bcrypt hashes)."""

    accounts_db = Unicode(config=True, help="Path of the SQLite account store.")
    failed_logins_before_delay = Integer(
        5, config=True, help="Failed logins for one username before its logins pause."
    )
    failed_login_delay_s = Integer(60, config=True, help="How long such a pause lasts.")
    minimum_password_length = Integer(
        10, config=True, help="Shortest password a person may choose."
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._failures: dict[str, tuple[int, float]] = {}

    @property
    def store(self) -> AccountStore:
        return AccountStore(self.accounts_db)

    def _paused(self, username: str) -> bool:
        count, last = self._failures.get(username, (0, 0.0))
        if count < self.failed_logins_before_delay:
            return False
        if time.monotonic() - last > self.failed_login_delay_s:
            self._failures.pop(username, None)
            return False
        return True

    async def authenticate(self, handler, data):
        username = self.normalize_username(data.get("username", ""))
        password = data.get("password", "")
        if not username or not password:
            return None
        if self._paused(username):
            self.log.warning("Login for %s paused after repeated failures", username)
            return None
        ok = await asyncio.get_running_loop().run_in_executor(
            None, self.store.verify, username, password
        )
        if ok:
            self._failures.pop(username, None)
            return username
        count, _ = self._failures.get(username, (0, 0.0))
        self._failures[username] = (count + 1, time.monotonic())
        self.log.warning("Failed login for %s", username)
        return None

    def check_allowed(self, username, authentication=None):
        # Having an account is what allows a person in; enrolment decides what they can spawn.
        return self.store.exists(username) or super().check_allowed(username, authentication)

    def get_handlers(self, app):
        return [(r"/change-password", ChangePasswordHandler)]


class ChangePasswordHandler(BaseHandler):
    """/hub/change-password: a logged-in person replaces their own password."""

    async def _page(self, message: str = "", error: bool = False):
        html = await self.render_template(
            "change-password.html", message=message, error=error
        )
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(html)

    @web.authenticated
    async def get(self):
        await self._page()

    @web.authenticated
    async def post(self):
        auth: LocalPasswordAuthenticator = self.authenticator
        user = self.current_user
        current = self.get_body_argument("current_password", "")
        new = self.get_body_argument("new_password", "")
        again = self.get_body_argument("new_password_again", "")
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, auth.store.verify, user.name, current):
            self.set_status(403)
            return await self._page("Le mot de passe actuel est incorrect.", error=True)
        if new != again:
            self.set_status(400)
            return await self._page("Les deux nouveaux mots de passe diffèrent.", error=True)
        if len(new) < auth.minimum_password_length:
            self.set_status(400)
            return await self._page(
                f"Choisissez au moins {auth.minimum_password_length} caractères.", error=True
            )
        await loop.run_in_executor(None, auth.store.set_password, user.name, new)
        self.log.info("%s changed their password", user.name)
        await self._page("Mot de passe modifié.")
