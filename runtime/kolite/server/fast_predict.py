"""The plain predict (and tag) request on a short path, answered inside the request middleware.

A one-text request used to spend ~0.38 ms of the event loop's CPU (Xeon, 64 clients, /proc per thread) where a bare
ASGI app on the same uvicorn answers in ~0.03 ms: most of the rest is Starlette's and FastAPI's stack (exception
middleware, routing over every route, dependency solving, pydantic request model, response model handling).
A body of only ``inputs`` (a text or a list of texts), ``model`` and ``truncate``, each of its exact JSON type,
goes straight to ``ServerState.infer`` with the options every such body gets on that route (``predict_options`` /
``tag_options`` of a body without option fields: one owner). Everything else — another field, a wrong type,
invalid JSON, an empty body — is handed to the full FastAPI path with the bytes already read, so every error keeps
its status, type and message.

Both paths end in the same ``infer`` and the same ``KoliteJSONResponse``, so the bytes of an answer are the same;
the request middleware around both keeps the request id, authentication, body admission (413/415/408, read
through the same admitted ``receive``), draining and metrics by route template. With tracing on, every request
takes the full path: the HTTP server span is FastAPI's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kolite.errors import KoliteError
from kolite.server.errors import BodyReadError, log_server_fault
from kolite.server.middleware import send_error

if TYPE_CHECKING:
    from kolite.server.state import ServerState

__all__ = ["FastPredict", "PlainRoute", "plain_body"]

PLAIN_FIELDS = frozenset({"inputs", "model", "truncate"})
_MODEL_ROUTES = ("predict", "tag")  # /models/{name}/<verb>


@dataclass(frozen=True)
class PlainRoute:
    """What a plain body on one route gets: its handler's options for a body without option fields, and whether
    the route is for taggers only (/tag)."""

    options: dict[str, Any]
    tagger_only: bool = False


def plain_body(raw: bytes) -> dict[str, Any] | None:
    """The parsed body if it is a plain predict request, each field of its exact type; otherwise None."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if type(body) is not dict or not body.keys() <= PLAIN_FIELDS:
        return None
    inputs = body.get("inputs")
    if type(inputs) is list:
        if not all(type(text) is str for text in inputs):
            return None
    elif type(inputs) is not str:
        return None
    model, truncate = body.get("model"), body.get("truncate")
    if (model is not None and type(model) is not str) or (truncate is not None and type(truncate) is not bool):
        return None
    return body


class FastPredict:
    """Answers plain bodies POSTed to ``plain`` routes (path template → ``PlainRoute``); hands every other request on
    them to ``full``."""

    def __init__(self, state: ServerState, routes: Iterable[Any], plain: Mapping[str, PlainRoute]) -> None:
        from kolite.server.app import KoliteJSONResponse

        self.state = state
        self.plain = dict(plain)
        self.routes = {route.path: route for route in routes if getattr(route, "path", None) in self.plain}
        self.response_class = KoliteJSONResponse

    def match(self, scope: dict[str, Any]) -> tuple[str, str | None] | None:
        """(route template, model name from the path or None) for a POST to a plain route, else None."""
        if scope["method"] != "POST" or self.state.tracing.enabled:
            return None
        path = scope["path"]
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "models" and parts[3] in _MODEL_ROUTES and parts[2]:
            template = f"/models/{{name}}/{parts[3]}"
            return (template, parts[2]) if template in self.routes else None
        return (path, None) if path in self.routes and "{" not in path else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any, full: Any) -> None:
        matched = self.match(scope)
        if matched is None:
            await full(scope, receive, send)
            return
        template, name = matched
        route, plain = self.routes[template], self.plain[template]
        messages: list[dict[str, Any]] = []
        try:
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request" or not message.get("more_body", False):
                    break
        except BodyReadError as exc:
            scope["route"] = route
            await self._error(scope, send, exc.error)
            return
        body = None
        if messages[-1]["type"] == "http.request":
            body = plain_body(b"".join(m.get("body", b"") for m in messages))
        if body is None:
            await full(scope, _replay(messages, receive), send)
            return
        scope["route"] = route
        try:
            model = self.state.pick(name if name is not None else body.get("model"))
            if plain.tagger_only:
                model.require_tagger()
            result = await self.state.infer(model, body["inputs"], body.get("truncate"), dict(plain.options))
        except KoliteError as exc:
            log_server_fault(scope["method"], scope["path"], exc)
            await self._error(scope, send, exc)
            return
        await self.response_class(result)(scope, receive, send)

    @staticmethod
    async def _error(scope: dict[str, Any], send: Any, error: KoliteError) -> None:
        scope["kolite.error_type"] = error.error_type  # read by the metrics in the request middleware
        await send_error(send, error, scope["kolite.request_id"])


def _replay(messages: list[dict[str, Any]], receive: Any) -> Any:
    """A ``receive`` that gives back the messages already read, then reads on."""
    pending = list(messages)

    async def replay() -> dict[str, Any]:
        return pending.pop(0) if pending else await receive()

    return replay
