"""The Azure response headers: request ids, region, deployment and rate-limit headroom.

Responses answers carry what recorded Azure traffic carries (the conformance
corpus' cases 19-24, East US, 2025-11): a Responses answer that is not streamed
has the token limit and remaining tokens as chat has; a streamed one, and an
error, only the request counts. ``EmulatorConfig.responses_token_headers =
"minus-one"`` gives instead the ``-1`` token limit and remaining tokens (``0``
reset) Azure has been reported sending on Responses, which a meter must read as
"unknown", never as an exhausted quota.
"""

from __future__ import annotations

import math
import uuid
from typing import Literal

from meter.apps.emulator.config import Deployment
from meter.apps.emulator.ratelimit import Quota


def new_request_id() -> str:
    return str(uuid.uuid4())


def base_headers(apim_request_id: str, region: str | None, client_request_id: str | None) -> dict[str, str]:
    """Headers every answer carries, even an error that never reached a deployment."""
    headers = {"apim-request-id": apim_request_id}
    if region is not None:
        headers["x-ms-region"] = region
    if client_request_id is not None:
        headers["x-ms-client-request-id"] = client_request_id
    return headers


TokenHeaders = Literal["yes", "none", "minus-one"]
"""The token rate-limit headers of an answer: the real counts, none at all, or Azure's ``-1``."""


def deployment_headers(deployment: Deployment, quota: Quota, tokens: TokenHeaders = "yes") -> dict[str, str]:
    """Headers of an answer that a deployment produced (success or failure)."""
    reset_requests_ms = max(0, math.ceil(quota.reset_s * 1000))
    headers = {
        "x-request-id": new_request_id(),
        "x-ms-deployment-name": deployment.name,
        "x-ms-rai-invoked": "true",
        "x-ms-is-spilled-over": "false",
        "x-ratelimit-limit-requests": str(quota.limit_requests),
        "x-ratelimit-remaining-requests": str(max(0, quota.remaining_requests)),
        "x-ratelimit-reset-requests": str(reset_requests_ms),
        "x-ratelimit-renewalperiod-requests": "60",
        "x-ratelimit-renewalperiod-tokens": "60",
    }
    if tokens == "none":
        del headers["x-ratelimit-renewalperiod-tokens"]
    elif tokens == "minus-one":
        headers["x-ratelimit-limit-tokens"] = "-1"
        headers["x-ratelimit-remaining-tokens"] = "-1"
        headers["x-ratelimit-reset-tokens"] = "0"
    else:
        headers["x-ratelimit-limit-tokens"] = str(quota.limit_tokens)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, quota.remaining_tokens))
        headers["x-ratelimit-reset-tokens"] = str(max(0, math.ceil(quota.reset_s)))
    return headers


def retry_headers(retry_after_ms: int) -> dict[str, str]:
    """Back-off hints of a 429: the SDK reads ``retry-after-ms`` first."""
    return {
        "retry-after-ms": str(retry_after_ms),
        "x-ms-retry-after-ms": str(retry_after_ms),
        "retry-after": str(max(1, math.ceil(retry_after_ms / 1000))),
    }
