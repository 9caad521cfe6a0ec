"""A stand-in for the hub's REST API, for grading-service tests and benchmarks that need many users.

It answers exactly what the grading service asks the hub: `GET /hub/api/user` (who owns this token,
with the token's scopes) and `GET /hub/api/users/<name>` (the user's groups, for the service's own
token only). Integration tests use the real hub (tests/support/hub.py); this keeps unit tests and a
1,000-student benchmark fast while the service still runs its real HubOAuth code path.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from dataclasses import dataclass, field

from tornado import web

from .net import free_port

ACCESS = "access:services!service=grading"


@dataclass
class FakeHub:
    port: int = field(default_factory=free_port)
    service_token: str = field(default_factory=lambda: secrets.token_hex(16))
    tokens: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # token -> (user, scopes)
    groups: dict[str, list[str]] = field(default_factory=dict)  # user -> groups
    requests: int = 0
    token_requests: int = 0  # of them, `GET /hub/api/user` (who owns this token)
    tokens_down: bool = False  # `GET /hub/api/user` answers 503 (a hub restarting)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hub/api"

    def add_user(self, name: str, groups: list[str], scopes: list[str] | None = None) -> str:
        """Create (or update) a user and return a new token for them."""
        self.groups[name] = list(groups)
        token = secrets.token_hex(16)
        self.tokens[token] = (name, [ACCESS] if scopes is None else scopes)
        return token

    def service_env(self, service_port: int, prefix: str = "/services/grading/") -> dict[str, str]:
        """The JUPYTERHUB_* environment the hub gives a managed service."""
        return {
            "JUPYTERHUB_API_URL": self.api_url,
            "JUPYTERHUB_API_TOKEN": self.service_token,
            "JUPYTERHUB_SERVICE_NAME": "grading",
            "JUPYTERHUB_SERVICE_PREFIX": prefix,
            "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{service_port}",
            "JUPYTERHUB_CLIENT_ID": "service-grading",
            "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback",
            "JUPYTERHUB_BASE_URL": "/",
            "JUPYTERHUB_HOST": "",
            "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps([ACCESS]),
        }

    # --- server -------------------------------------------------------------------------------
    def _app(self) -> web.Application:
        hub = self

        class Base(web.RequestHandler):
            def token(self) -> str:
                auth = self.request.headers.get("Authorization", "")
                return auth.split(None, 1)[1] if " " in auth else ""

        class UserHandler(Base):
            def get(self) -> None:
                hub.requests += 1
                hub.token_requests += 1
                if hub.tokens_down:
                    raise web.HTTPError(503)
                entry = hub.tokens.get(self.token())
                if entry is None:
                    raise web.HTTPError(403)
                name, scopes = entry
                self.finish({"kind": "user", "name": name, "scopes": scopes, "groups": []})

        class UsersHandler(Base):
            def get(self, name: str) -> None:
                hub.requests += 1
                if self.token() != hub.service_token:
                    raise web.HTTPError(403)
                if name not in hub.groups:
                    raise web.HTTPError(404)
                self.finish({"kind": "user", "name": name, "groups": hub.groups[name]})

        return web.Application([(r"/hub/api/user", UserHandler), (r"/hub/api/users/([^/]+)", UsersHandler)])

    def start(self) -> FakeHub:
        ready = threading.Event()

        def run() -> None:
            async def main() -> None:
                server = self._app().listen(self.port, address="127.0.0.1")
                self._stop = asyncio.Event()
                self._loop = asyncio.get_running_loop()
                ready.set()
                await self._stop.wait()
                server.stop()

            asyncio.run(main())

        self._thread = threading.Thread(target=run, daemon=True, name="fakehub")
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def main(argv: list[str] | None = None) -> None:
    """`python -m support.fakehub STATE.json`: serve the users in a JSON file (from `FakeHub.save`)
    in this process until killed (benchmarks keep the stand-in hub out of the client's process)."""
    import sys

    args = argv if argv is not None else sys.argv[1:]
    with open(args[0]) as fh:
        state = json.load(fh)
    hub = FakeHub(port=state["port"], service_token=state["service_token"],
                  tokens={k: (v[0], v[1]) for k, v in state["tokens"].items()}, groups=state["groups"])

    async def run() -> None:
        import logging

        logging.getLogger("tornado.access").setLevel(logging.ERROR)
        hub._app().listen(hub.port, address="127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(run())


def save(hub: FakeHub, path: str) -> None:
    with open(path, "w") as fh:
        json.dump({"port": hub.port, "service_token": hub.service_token, "groups": hub.groups,
                   "tokens": {k: list(v) for k, v in hub.tokens.items()}}, fh)


if __name__ == "__main__":
    main()
