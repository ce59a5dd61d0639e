"""The ASGI app: Azure's URL shapes, api-key checking and request parsing.

Classic paths put the deployment in the URL and need ``api-version``; the
classic Responses path and all v1 paths take the deployment from the body's
``model`` (a form field for the uploads of audio transcriptions and image edits).
Paths are normalised first (recorded clients send ``//openai/...``). Each
endpoint serves only the models of its kind (chat and Responses text models,
audio, images, embeddings): another answers Azure's OperationNotSupported.
Files and batches (``meter.apps.emulator.batch``) need no deployment.
Everything that is not one of these paths gets Azure's plain 404.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from meter.apps.emulator import batch, errors, forms
from meter.apps.emulator.config import Deployment, EmulatorConfig
from meter.apps.emulator.exchange import Api, Exchange
from meter.apps.emulator.handlers import MediaHandlers
from meter.apps.emulator.headers import new_request_id
from meter.apps.emulator.responses import event_frames
from meter.apps.emulator.sse import paced
from meter.apps.emulator.state import EmulatorState
from meter.apps.emulator.versions import is_valid

Operation = Callable[[Exchange, dict[str, Any], Deployment], Awaitable[Response]]
_OPERATION_NAMES = {"chat": "chatCompletion", "responses": "responses", "embeddings": "embeddings",
                    "transcriptions": "audioTranscription", "translations": "audioTranslation",
                    "speech": "audioSpeech", "images": "imageGeneration"}
_KINDS = {"chat": "text", "responses": "text", "embeddings": "embeddings", "transcriptions": "transcription",
          "translations": "transcription", "speech": "speech", "images": "image"}
"""The model kind (``Deployment.serves``) each endpoint answers with."""
_FORM_APIS = ("transcriptions", "translations", "images")


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
        self.handlers = MediaHandlers(config, state)

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

    async def create(self, request: Request, api: Api, v1: bool, operation: str = "create") -> Response:
        ex = Exchange(self.config, self.state.ledger, request, api, v1)
        ex.operation = operation
        early = await self._preamble(ex)
        if early is not None:
            return early
        body = await _body(request, api in _FORM_APIS)
        if body is None:
            what = "form" if forms.boundary_of(request.headers.get("content-type", "")) else "JSON body"
            return ex.error(errors.invalid_request(f"We could not parse the {what} of your request."))
        ex.stream = body.get("stream") is True
        name = request.path_params.get("deployment", body.get("model"))
        ex.deployment_name = name if isinstance(name, str) else None
        deployment = self.config.deployment(ex.deployment_name)
        if deployment is None:
            if v1:
                return ex.error(errors.unknown_model(str(name)))
            return ex.error(errors.deployment_not_found())
        ex.deployment = deployment
        if deployment.serves != _KINDS[api]:
            return ex.error(errors.operation_not_supported(_OPERATION_NAMES[api], deployment.model))
        handler: Operation = getattr(self.handlers, "compact" if operation == "compact" else api)
        return await handler(ex, body, deployment)

    async def upload(self, request: Request, v1: bool) -> Response:
        """``POST files``: a Batch input file (``purpose=batch``), kept for ``POST batches``."""
        ex = Exchange(self.config, self.state.ledger, request, "files", v1)
        early = await self._preamble(ex)
        if early is not None:
            return early
        body = await _body(request, True)
        upload = body.get("file") if body is not None else None
        if body is None or not isinstance(upload, bytes):
            return ex.error(errors.invalid_request("You must provide a file.", "file"))
        purpose = str(body.get("purpose") or "")
        if purpose != "batch":
            return ex.error(errors.invalid_request(f"Invalid purpose '{purpose}': the emulator keeps batch files.",
                                                   "purpose"))
        stored = self.state.batches.add_file(str(body.get("_filename_file") or "input.jsonl"), purpose, upload)
        return ex.json(stored.object(), None)

    async def file(self, request: Request, v1: bool, content: bool) -> Response:
        """``GET files/{id}`` and ``GET files/{id}/content`` (a Batch output file is JSON Lines)."""
        ex = Exchange(self.config, self.state.ledger, request, "files", v1)
        ex.operation = "content" if content else "retrieve"
        early = await self._preamble(ex)
        if early is not None:
            return early
        file_id = request.path_params["file_id"]
        stored = self.state.batches.file(file_id)
        if stored is None:
            return ex.error(errors.file_not_found(file_id))
        if not content:
            return ex.json(stored.object(), None)
        disposition = {"content-disposition": f'attachment; filename="{stored.filename}"'}
        return ex.binary(stored.content, "application/octet-stream", None, disposition)

    async def create_batch(self, request: Request, v1: bool) -> Response:
        """``POST batches``: the job runs at once (its lines billed now), and reads completed after
        ``batch_delay_s``."""
        ex = Exchange(self.config, self.state.ledger, request, "batches", v1)
        early = await self._preamble(ex)
        if early is not None:
            return early
        body = await _body(request, False)
        if body is None:
            return ex.error(errors.invalid_request("We could not parse the JSON body of your request."))
        file_id, endpoint = body.get("input_file_id"), str(body.get("endpoint") or "")
        stored = self.state.batches.file(file_id) if isinstance(file_id, str) else None
        if stored is None:
            return ex.error(errors.file_not_found(str(file_id)))
        if endpoint not in batch.ENDPOINTS:
            return ex.error(errors.invalid_request(f"Invalid endpoint '{endpoint}'.", "endpoint"))
        output, failed, usage = batch.run_lines(self.config, self.state.ledger, stored.content, endpoint)
        job_id = "batch_" + str(uuid.uuid4())
        out_file = self.state.batches.add_file(f"{job_id}_output.jsonl", "batch_output", batch.jsonl(output))
        err_file = self.state.batches.add_file(f"{job_id}_error.jsonl", "batch_output",
                                               batch.jsonl(failed)) if failed else None
        metadata = body.get("metadata")
        job = batch.Batch(job_id, endpoint, stored.id, str(body.get("completion_window") or "24h"),
                          metadata if isinstance(metadata, dict) else None, out_file.id,
                          err_file.id if err_file else None,
                          {"total": len(output) + len(failed), "completed": len(output), "failed": len(failed)},
                          usage, time.monotonic() + self.config.batch_delay_s)
        self.state.batches.add_batch(job)
        answer = job.object()
        if answer["status"] == "completed":  # created: still validating, however soon it completes
            answer = {**answer, "status": "validating", "completed_at": None, "finalizing_at": None,
                      "output_file_id": None, "error_file_id": None, "usage": None,
                      "request_counts": {"total": job.counts["total"], "completed": 0, "failed": 0}}
        return ex.json(answer, None)

    async def get_batch(self, request: Request, v1: bool) -> Response:
        ex = Exchange(self.config, self.state.ledger, request, "batches", v1)
        ex.operation = "retrieve"
        early = await self._preamble(ex)
        if early is not None:
            return early
        batch_id = request.path_params["batch_id"]
        job = self.state.batches.batch(batch_id)
        if job is None:
            return ex.error(errors.batch_not_found(batch_id))
        return ex.json(job.object(), None)

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


async def _body(request: Request, form: bool) -> dict[str, Any] | None:
    """The request's JSON object, or (for an upload) its form fields with each file's bytes under its
    field name and its file name under ``_filename_<field>``; ``None`` when it is neither."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    if form and forms.boundary_of(content_type) is not None:
        parsed = forms.parse(raw, content_type)
        if parsed is None:
            return None
        body: dict[str, Any] = dict(parsed.fields)
        for name, (filename, content) in parsed.files.items():
            body[name] = content
            body[f"_filename_{name}"] = filename
        return body
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def create_app(config: EmulatorConfig | None = None, state: EmulatorState | None = None) -> Starlette:
    """The emulator as an ASGI app (for any ASGI server); ``state`` is shared with ``Emulator``."""
    pipeline = EmulatorApp(config or EmulatorConfig(), state or EmulatorState())

    def create(api: Api, v1: bool, operation: str = "create") -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await pipeline.create(request, api, v1, operation)
        return endpoint

    def files(v1: bool, content: bool) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await pipeline.file(request, v1, content)
        return endpoint

    def upload(v1: bool) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await pipeline.upload(request, v1)
        return endpoint

    def batches(v1: bool, get: bool) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await (pipeline.get_batch(request, v1) if get else pipeline.create_batch(request, v1))
        return endpoint

    def retrieve(v1: bool) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await pipeline.retrieve(request, v1)
        return endpoint

    async def not_found(request: Request, exc: Exception) -> Response:
        status, body = errors.resource_not_found()
        return JSONResponse(body, status_code=status, headers={"apim-request-id": new_request_id()})

    media: tuple[tuple[str, Api, str], ...] = (
        ("audio/transcriptions", "transcriptions", "create"), ("audio/translations", "translations", "create"),
        ("audio/speech", "speech", "create"), ("images/generations", "images", "create"),
        ("images/edits", "images", "edit"))
    routes = [
        Route("/openai/deployments/{deployment}/chat/completions", create("chat", False), methods=["POST"]),
        Route("/openai/deployments/{deployment}/embeddings", create("embeddings", False), methods=["POST"]),
        *(Route(f"/openai/deployments/{{deployment}}/{path}", create(api, False, op), methods=["POST"])
          for path, api, op in media),
        Route("/openai/responses", create("responses", False), methods=["POST"]),
        Route("/openai/responses/compact", create("responses", False, "compact"), methods=["POST"]),
        Route("/openai/responses/{response_id}", retrieve(False), methods=["GET"]),
        Route("/openai/v1/chat/completions", create("chat", True), methods=["POST"]),
        Route("/openai/v1/embeddings", create("embeddings", True), methods=["POST"]),
        *(Route(f"/openai/v1/{path}", create(api, True, op), methods=["POST"]) for path, api, op in media),
        Route("/openai/v1/responses", create("responses", True), methods=["POST"]),
        Route("/openai/v1/responses/compact", create("responses", True, "compact"), methods=["POST"]),
        Route("/openai/v1/responses/{response_id}", retrieve(True), methods=["GET"]),
    ]
    for prefix, v1 in (("/openai", False), ("/openai/v1", True)):
        routes += [
            Route(f"{prefix}/files", upload(v1), methods=["POST"]),
            Route(f"{prefix}/files/{{file_id}}", files(v1, False), methods=["GET"]),
            Route(f"{prefix}/files/{{file_id}}/content", files(v1, True), methods=["GET"]),
            Route(f"{prefix}/batches", batches(v1, False), methods=["POST"]),
            Route(f"{prefix}/batches/{{batch_id}}", batches(v1, True), methods=["GET"]),
        ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(CollapseSlashes)],
        exception_handlers={HTTPException: not_found},
    )
    app.state.emulator = pipeline.state
    return app
