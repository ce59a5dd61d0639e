"""The response headers meter reads: Azure's region, request ids, rate limits and retry hints.

Azure's quirks are normalised here once: ``-1`` for "unknown" in the rate-limit headers,
``retry-after-ms`` beside ``retry-after``, a spill-over flag written as text.
"""

from __future__ import annotations

from collections.abc import Mapping

from meter.core.record import AzureHeaders
from meter.core.tiers import tier_name

ResponseHeaders = Mapping[str, str]
"""Response headers as a plain mapping with lower-case names, built once by the adapter
(one pass over the headers instead of a case-insensitive scan per lookup)."""


def _header_int(headers: ResponseHeaders, name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = int(str(raw).strip())
    except ValueError:
        return None
    return value if value >= 0 else None  # Azure's -1 means "unknown"


def _retry_after(headers: ResponseHeaders) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return float(raw) * scale
        except ValueError:
            continue
    return None


def azure_headers(headers: ResponseHeaders) -> AzureHeaders:
    """The response headers of interest, with Azure's quirks normalised."""
    spilled = headers.get("x-ms-is-spilled-over")
    return AzureHeaders(
        region=headers.get("x-ms-region"),
        apim_request_id=headers.get("apim-request-id"),
        request_id=headers.get("x-request-id"),
        client_request_id=headers.get("x-ms-client-request-id"),
        deployment_name=headers.get("x-ms-deployment-name"),
        served_model=headers.get("x-ms-served-model"),
        spilled_over=None if spilled is None else str(spilled).strip().lower() == "true",
        ratelimit_remaining_tokens=_header_int(headers, "x-ratelimit-remaining-tokens"),
        ratelimit_remaining_requests=_header_int(headers, "x-ratelimit-remaining-requests"),
        ratelimit_limit_tokens=_header_int(headers, "x-ratelimit-limit-tokens"),
        ratelimit_limit_requests=_header_int(headers, "x-ratelimit-limit-requests"),
        retry_after_s=_retry_after(headers),
        service_tier=tier_name(headers.get("x-ms-service-tier")),
    )
