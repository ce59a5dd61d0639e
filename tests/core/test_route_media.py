"""Route recognition of audio, images, compaction and Batch output: Azure deployment and v1 paths, OpenAI's
``/v1`` paths, gateways (the suffix rule); Batch objects and other files stay unmetered."""

from __future__ import annotations

import pytest

from meter.core.route import match

AZ = "res.openai.azure.com"
OAI = "api.openai.com"
APIM = "contoso-gw.azure-api.net"
AZ_Q = "api-version=2025-04-01-preview"


@pytest.mark.parametrize(
    ("method", "host", "path", "query", "api", "operation", "deployment", "provider", "version"),
    [
        # audio on a deployment path, on the v1 path, on OpenAI, behind a gateway
        ("POST", AZ, "/openai/deployments/whisper/audio/transcriptions", AZ_Q,
         "transcriptions", "create", "whisper", "azure.ai.openai", "2025-04-01-preview"),
        ("POST", AZ, "/openai/deployments/whisper/audio/translations", AZ_Q,
         "translations", "create", "whisper", "azure.ai.openai", "2025-04-01-preview"),
        ("POST", AZ, "/openai/deployments/tts/audio/speech", AZ_Q,
         "speech", "create", "tts", "azure.ai.openai", "2025-04-01-preview"),
        ("POST", AZ, "/openai/v1/audio/transcriptions", "", "transcriptions", "create", None, "azure.ai.openai", "v1"),
        ("POST", AZ, "/openai/v1/audio/speech", "", "speech", "create", None, "azure.ai.openai", "v1"),
        ("POST", OAI, "/v1/audio/transcriptions", "", "transcriptions", "create", None, "openai", None),
        ("POST", OAI, "/v1/audio/translations", "", "translations", "create", None, "openai", None),
        ("POST", OAI, "/v1/audio/speech", "", "speech", "create", None, "openai", None),
        ("POST", APIM, "/aoai/deployments/whisper/audio/transcriptions", AZ_Q,
         "transcriptions", "create", "whisper", "azure.ai.openai", "2025-04-01-preview"),
        ("POST", AZ, "/audio/speech", "", "speech", "create", None, "azure.ai.openai", None),
        # images
        ("POST", AZ, "/openai/deployments/gpt-image-1/images/generations", AZ_Q,
         "images", "create", "gpt-image-1", "azure.ai.openai", "2025-04-01-preview"),
        ("POST", AZ, "/openai/deployments/gpt-image-1/images/edits", AZ_Q,
         "images", "create", "gpt-image-1", "azure.ai.openai", "2025-04-01-preview"),
        ("POST", AZ, "/openai/v1/images/generations", "", "images", "create", None, "azure.ai.openai", "v1"),
        ("POST", OAI, "/v1/images/edits", "", "images", "create", None, "openai", None),
        ("POST", APIM, "/aoai/openai/v1/images/generations", "", "images", "create", None, "azure.ai.openai", "v1"),
        # compaction: billed tokens, the model in the body
        ("POST", OAI, "/v1/responses/compact", "", "responses", "compact", None, "openai", None),
        ("POST", AZ, "/openai/v1/responses/compact", "", "responses", "compact", None, "azure.ai.openai", "v1"),
        ("POST", AZ, "/openai/responses/compact", AZ_Q,
         "responses", "compact", None, "azure.ai.openai", "2025-04-01-preview"),
        ("POST", APIM, "/gw/responses/compact", "", "responses", "compact", None, "azure.ai.openai", None),
        # a Batch output file
        ("GET", OAI, "/v1/files/file-4Snb/content", "", "batch_output", "retrieve", None, "openai", None),
        ("GET", AZ, "/openai/v1/files/file-1/content", "", "batch_output", "retrieve", None, "azure.ai.openai", "v1"),
        ("GET", AZ, "/openai/files/file-1/content", AZ_Q,
         "batch_output", "retrieve", None, "azure.ai.openai", "2025-04-01-preview"),
        ("GET", APIM, "/aoai/files/file-1/content", AZ_Q,
         "batch_output", "retrieve", None, "azure.ai.openai", "2025-04-01-preview"),
    ],
)
def test_recognised(method: str, host: str, path: str, query: str, api: str, operation: str,
                    deployment: str | None, provider: str, version: str | None) -> None:
    route = match(method, host, 443, path, query)
    assert route is not None, path
    assert (route.api, route.operation, route.deployment, route.provider, route.api_version) == (
        api, operation, deployment, provider, version)
    assert route.deployment_from_body == (deployment is None and api != "batch_output")
    assert route.response_id is None


@pytest.mark.parametrize(
    ("method", "host", "path"),
    [
        # Batch objects repeat the output file's totals (counted once, there); creating one bills nothing
        ("POST", OAI, "/v1/batches"),
        ("GET", OAI, "/v1/batches/batch_1"),
        ("POST", OAI, "/v1/batches/batch_1/cancel"),
        ("POST", AZ, "/openai/v1/batches"),
        ("GET", AZ, "/openai/batches/batch_1"),
        ("GET", AZ, "/openai/v1/batches/batch_1"),
        # files other than their content, and a content upload
        ("POST", AZ, "/openai/v1/files"),
        ("GET", AZ, "/openai/v1/files/file-1"),
        ("POST", OAI, "/v1/files/file-1/content"),
        ("POST", OAI, "/v1/realtime/client_secrets"),
        ("GET", OAI, "/v1/audio/transcriptions"),
        ("POST", "example.com", "/v1/audio/transcriptions"),  # OpenAI-shaped path on a foreign host
        ("GET", "example.com", "/v1/files/file-1/content"),
    ],
)
def test_billing_nothing_or_foreign_is_not_metered(method: str, host: str, path: str) -> None:
    assert match(method, host, None, path, "") is None
