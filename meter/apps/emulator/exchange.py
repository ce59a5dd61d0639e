"""One request/answer pair: the ids, headers and ledger entry every answer shares.

Handlers decide *what* to answer; the exchange makes sure every answer carries
Azure's headers (request ids, region, deployment, rate limits) and lands in
the ledger exactly once.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from meter.apps.emulator.config import Deployment, EmulatorConfig
from meter.apps.emulator.errors import Error
from meter.apps.emulator.headers import TokenHeaders, base_headers, deployment_headers, new_request_id, retry_headers
from meter.apps.emulator.ledger import Ledger
from meter.apps.emulator.ratelimit import Quota
from meter.apps.emulator.sse import EVENT_STREAM

Api = Literal["chat", "responses", "embeddings", "transcriptions", "translations", "speech", "images", "files",
              "batches"]
RETRY_AFTER_MS = 50


class Exchange:
    """The context of one request while it is being answered."""

    def __init__(self, config: EmulatorConfig, ledger: Ledger, request: Request, api: Api, v1: bool) -> None:
        self.config = config
        self.ledger = ledger
        self.request = request
        self.api: Api = api
        self.v1 = v1
        self.request_id = new_request_id()
        self.client_request_id = request.headers.get("x-ms-client-request-id")
        self.api_version = request.query_params.get("api-version")
        self.operation = "create"
        self.stream = False
        self.deployment_name: str | None = None
        self.deployment: Deployment | None = None
        self.quota: Quota | None = None
        self.service_tier: str | None = None
        """The tier that served the call: sent as ``x-ms-service-tier`` and kept in the ledger."""
        self.tools: dict[str, int] | None = None
        """Built-in tool calls billed with the answer (code interpreter: containers new to the emulator)."""

    def authorised(self) -> bool:
        key = self.request.headers.get("api-key")
        if key is None:
            auth = self.request.headers.get("authorization", "")
            key = auth[7:] if auth.lower().startswith("bearer ") else None
        return key == self.config.api_key

    def token_headers(self, failed: bool) -> TokenHeaders:
        """What the answer says of the token quota: on Responses, Azure's recorded answers carry it only when
        not streamed and not an error (or ``-1`` with ``responses_token_headers="minus-one"``)."""
        if self.api != "responses":
            return "yes"
        if self.config.responses_token_headers == "minus-one":
            return "minus-one"
        return "none" if self.stream or failed else "yes"

    def headers(self, bare: bool = False, failed: bool = False) -> dict[str, str]:
        """Azure's headers; ``bare`` for a 401, which carries only the request id; ``failed`` for an error."""
        if bare:
            return {"apim-request-id": self.request_id}
        region = self.deployment.region if self.deployment else self.config.region
        headers = base_headers(self.request_id, region, self.client_request_id)
        if self.deployment is not None and self.quota is not None:
            headers.update(deployment_headers(self.deployment, self.quota, self.token_headers(failed)))
        elif self.deployment is not None:
            headers["x-request-id"] = new_request_id()
            headers["x-ms-deployment-name"] = self.deployment.name
        if self.service_tier is not None:
            headers["x-ms-service-tier"] = self.service_tier
        return headers

    def log(self, status: int, usage: dict[str, Any] | None) -> None:
        self.ledger.add({
            "deployment": self.deployment.name if self.deployment else self.deployment_name,
            "model": self.deployment.model if self.deployment else None,
            "api": self.api,
            "operation": self.operation,
            "stream": self.stream,
            "usage": usage,
            "service_tier": self.service_tier,
            "tools": self.tools,
            "status": status,
            "request_id": self.request_id,
            "at": time.time(),
        })

    def error(self, error: Error, billed: dict[str, Any] | None = None, bare: bool = False,
              retry_after_ms: int = RETRY_AFTER_MS) -> Response:
        """Answer with an Azure error body; ``billed`` is usage charged despite the error."""
        status, body = error
        headers = self.headers(bare, failed=True)
        if status == 429:
            headers.update(retry_headers(retry_after_ms))
        self.log(status, billed)
        return JSONResponse(body, status_code=status, headers=headers)

    def json(self, body: dict[str, Any], usage: dict[str, Any] | None) -> Response:
        self.log(200, usage)
        return JSONResponse(body, headers=self.headers())

    def binary(self, body: bytes, media_type: str, usage: dict[str, Any] | None,
               extra: dict[str, str] | None = None) -> Response:
        """A non-JSON answer (speech audio, a file's content), billed as it is sent."""
        self.log(200, usage)
        return Response(body, media_type=media_type, headers={**self.headers(), **(extra or {})})

    def sse(self, chunks: AsyncIterator[bytes], usage: dict[str, Any] | None) -> Response:
        """A streamed answer; billed when it starts, as Azure bills a stream the client abandons."""
        self.log(200, usage)
        headers = self.headers()
        headers["x-accel-buffering"] = "no"
        return StreamingResponse(chunks, media_type=EVENT_STREAM, headers=headers)
