"""The ASGI app: Azure's URL shapes, api-key checking and request parsing.

Classic paths put the deployment in the URL and need ``api-version``; the
classic Responses path and all v1 paths take the deployment from the body's
``model``. Paths are normalised first (recorded clients send ``//openai/...``).
Everything that is not one of these paths gets Azure's plain 404.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from meter.apps.emulator import errors
from meter.apps.emulator.config import Deployment, EmulatorConfig
from meter.apps.emulator.exchange import Api, Exchange
from meter.apps.emulator.handlers import Handlers
from meter.apps.emulator.headers import new_request_id
from meter.apps.emulator.responses import event_frames
from meter.apps.emulator.sse import paced
from meter.apps.emulator.state import EmulatorState
from meter.apps.emulator.versions import is_valid

Operation = Callable[[Exchange, dict[str, Any], Deployment], Awaitable[Response]]
_OPERATION_NAMES = {"chat": "chatCompletion", "responses": "responses", "embeddings": "embeddings"}


class CollapseSlashes:
    """Treat ``//openai//deployments/...`` like ``/openai/deployments/...``, as Azure does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            scope = dict(scope)
            scope["path"] = re.sub("/{2,}", "/", scope["path"])
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


class EmulatorApp:
    """The request pipeline shared by every route."""

    def __init__(self, config: EmulatorConfig, state: EmulatorState) -> None:
        self.config = config
        self.state = state
        self.handlers = Handlers(config, state)

    async def _preamble(self, ex: Exchange) -> Response | None:
        """Latency, auth and api-version: what every answer goes through first."""
        if self.config.latency_s > 0:
            await asyncio.sleep(self.config.latency_s)
        if not ex.authorised():
            return ex.error(errors.unauthorized(), bare=True)
        if not ex.v1:
            if ex.api_version is None:
                return ex.error(errors.resource_not_found())
            if not is_valid(ex.api_version):
                return ex.error(errors.api_version_not_supported())
        return None

    async def create(self, request: Request, api: Api, v1: bool) -> Response:
        ex = Exchange(self.config, self.state.ledger, request, api, v1)
        early = await self._preamble(ex)
        if early is not None:
            return early
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return ex.error(errors.invalid_request("We could not parse the JSON body of your request."))
        ex.stream = body.get("stream") is True
        name = request.path_params.get("deployment", body.get("model"))
        ex.deployment_name = name if isinstance(name, str) else None
        deployment = self.config.deployment(ex.deployment_name)
        if deployment is None:
            if v1:
                return ex.error(errors.unknown_model(str(name)))
            return ex.error(errors.deployment_not_found())
        ex.deployment = deployment
        if deployment.embeddings != (api == "embeddings"):
            return ex.error(errors.operation_not_supported(_OPERATION_NAMES[api], deployment.model))
        operation: Operation = getattr(self.handlers, api)
        return await operation(ex, body, deployment)

    async def retrieve(self, request: Request, v1: bool) -> Response:
        """``GET /responses/{id}``: the stored response, or its event stream replayed after ``starting_after``."""
        ex = Exchange(self.config, self.state.ledger, request, "responses", v1)
        ex.operation = "retrieve"
        early = await self._preamble(ex)
        if early is not None:
            return early
        response_id = request.path_params["response_id"]
        stored = self.state.store.get(response_id)
        if stored is None:
            return ex.error(errors.response_not_found(response_id))
        ex.deployment = stored.deployment
        if request.query_params.get("stream", "").lower() != "true":
            return ex.json(stored.response, None)
        ex.stream = True
        if stored.events is None:
            return ex.error(errors.invalid_request(
                "This response was not created with stream=true, so it cannot be streamed.", "stream"))
        try:
            after = int(request.query_params.get("starting_after", "-1"))
        except ValueError:
            return ex.error(errors.invalid_request("starting_after must be an integer.", "starting_after"))
        events = [e for e in stored.events if e["sequence_number"] > after]
        return ex.sse(paced(event_frames(events), 0.0, 0.0), None)


def create_app(config: EmulatorConfig | None = None, state: EmulatorState | None = None) -> Starlette:
    """The emulator as an ASGI app (for any ASGI server); ``state`` is shared with ``Emulator``."""
    pipeline = EmulatorApp(config or EmulatorConfig(), state or EmulatorState())

    def create(api: Api, v1: bool) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await pipeline.create(request, api, v1)
        return endpoint

    def retrieve(v1: bool) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await pipeline.retrieve(request, v1)
        return endpoint

    async def not_found(request: Request, exc: Exception) -> Response:
        status, body = errors.resource_not_found()
        return JSONResponse(body, status_code=status, headers={"apim-request-id": new_request_id()})

    routes = [
        Route("/openai/deployments/{deployment}/chat/completions", create("chat", False), methods=["POST"]),
        Route("/openai/deployments/{deployment}/embeddings", create("embeddings", False), methods=["POST"]),
        Route("/openai/responses", create("responses", False), methods=["POST"]),
        Route("/openai/responses/{response_id}", retrieve(False), methods=["GET"]),
        Route("/openai/v1/chat/completions", create("chat", True), methods=["POST"]),
        Route("/openai/v1/embeddings", create("embeddings", True), methods=["POST"]),
        Route("/openai/v1/responses", create("responses", True), methods=["POST"]),
        Route("/openai/v1/responses/{response_id}", retrieve(True), methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(CollapseSlashes)],
        exception_handlers={HTTPException: not_found},
    )
    app.state.emulator = pipeline.state
    return app
