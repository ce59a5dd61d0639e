"""Route recognition: every documented URL shape, and cheap rejection of everything else."""

from __future__ import annotations

import pytest

from meter.core.route import match

AZ = "res.openai.azure.com"


@pytest.mark.parametrize(
    ("method", "host", "path", "query", "api", "operation", "deployment", "from_body", "version"),
    [
        ("POST", AZ, "/openai/deployments/gpt4o/chat/completions", "api-version=2024-10-21",
         "chat", "create", "gpt4o", False, "2024-10-21"),
        ("POST", AZ, "//openai/deployments/gpt4o/chat/completions", "api-version=2023-05-15",
         "chat", "create", "gpt4o", False, "2023-05-15"),
        ("POST", AZ, "/openai/deployments/emb/embeddings", "api-version=2023-05-15",
         "embeddings", "create", "emb", False, "2023-05-15"),
        ("POST", AZ, "/openai/responses", "api-version=2025-04-01-preview",
         "responses", "create", None, True, "2025-04-01-preview"),
        ("POST", AZ, "/openai/v1/responses", "", "responses", "create", None, True, "v1"),
        ("POST", AZ, "/openai/v1/responses", "api-version=preview",
         "responses", "create", None, True, "preview"),
        ("POST", AZ, "/openai/v1/chat/completions", "", "chat", "create", None, True, "v1"),
        ("POST", AZ, "/openai/v1/embeddings", "", "embeddings", "create", None, True, "v1"),
        ("POST", "acct.cognitiveservices.azure.com", "/openai/deployments/d/chat/completions",
         "api-version=2024-10-21", "chat", "create", "d", False, "2024-10-21"),
        ("POST", "acct.services.ai.azure.com", "/api/projects/p1/openai/v1/responses", "",
         "responses", "create", None, True, "v1"),
        ("POST", "acct.services.ai.azure.com", "/models/chat/completions", "api-version=2024-05-01-preview",
         "chat", "create", None, True, "2024-05-01-preview"),
        ("GET", AZ, "/openai/v1/responses/resp_1", "", "responses", "retrieve", None, False, None),
        ("GET", AZ, "/openai/responses/resp_1", "api-version=2025-04-01-preview",
         "responses", "retrieve", None, False, "2025-04-01-preview"),
        ("GET", AZ, "/openai/v1/responses/resp_1", "stream=true&starting_after=3",
         "responses", "resume", None, False, None),
        ("POST", AZ, "/openai/v1/responses/resp_1/cancel", "", "responses", "cancel", None, False, None),
        ("POST", "api.openai.com", "/v1/chat/completions", "", "chat", "create", None, True, None),
        ("POST", "api.openai.com", "/v1/responses", "", "responses", "create", None, True, None),
        ("GET", "api.openai.com", "/v1/responses/resp_9", "", "responses", "retrieve", None, False, None),
        # Azure paths are recognised on any host: gateways, proxies, the emulator.
        ("POST", "127.0.0.1", "/openai/deployments/x/chat/completions", "api-version=2024-10-21",
         "chat", "create", "x", False, "2024-10-21"),
    ],
)
def test_recognised(method: str, host: str, path: str, query: str, api: str, operation: str,
                    deployment: str | None, from_body: bool, version: str | None) -> None:
    route = match(method, host, 443, path, query)
    assert route is not None
    assert (route.api, route.operation, route.deployment, route.deployment_from_body) == (
        api, operation, deployment, from_body)
    if host == "api.openai.com":
        assert route.provider == "openai"
    else:
        assert route.provider == "azure.ai.openai"
        assert route.api_version == version


def test_resume_reads_starting_after() -> None:
    route = match("GET", AZ, None, "/openai/v1/responses/resp_1", "stream=true&starting_after=12")
    assert route is not None
    assert (route.response_id, route.stream_query, route.starting_after) == ("resp_1", True, 12)


@pytest.mark.parametrize(
    ("method", "host", "path"),
    [
        ("GET", "example.com", "/"),
        ("POST", "example.com", "/v1/chat/completions"),  # OpenAI-shaped path on a foreign host
        ("POST", AZ, "/openai/deployments/d/images/variations"),
        ("GET", AZ, "/openai/deployments/d/chat/completions"),
        ("DELETE", AZ, "/openai/v1/responses/resp_1"),
        ("GET", AZ, "/openai/v1/responses/resp_1/input_items"),
        ("POST", AZ, "/openai/v1/files"),
        ("PUT", AZ, "/openai/v1/chat/completions"),
        ("GET", "api.openai.com", "/v1/models"),
    ],
)
def test_rejected(method: str, host: str, path: str) -> None:
    assert match(method, host, None, path, "") is None


def test_extra_hosts_enable_openai_paths() -> None:
    assert match("POST", "llm.internal", None, "/v1/chat/completions", "") is None
    route = match("POST", "llm.internal", None, "/v1/chat/completions", "", frozenset({"llm.internal"}))
    assert route is not None and route.api == "chat"


APIM = "contoso-gw.azure-api.net"


@pytest.mark.parametrize(
    ("method", "host", "path", "query", "api", "operation", "deployment", "provider"),
    [
        # API Management gateways with a path prefix, on their own host or any other
        ("POST", APIM, "/aoai/openai/deployments/d1/chat/completions", "api-version=2024-10-21",
         "chat", "create", "d1", "azure.ai.openai"),
        ("POST", "llm.contoso.com", "/team-a/openai/deployments/d1/embeddings", "api-version=2024-10-21",
         "embeddings", "create", "d1", "azure.ai.openai"),
        ("POST", APIM, "/aoai/openai/v1/responses", "", "responses", "create", None, "azure.ai.openai"),
        ("GET", APIM, "/aoai/openai/v1/responses/resp_1", "", "responses", "retrieve", None, "azure.ai.openai"),
        # a gateway that drops the /openai segment
        ("POST", APIM, "/aoai/deployments/d2/chat/completions", "api-version=2024-10-21",
         "chat", "create", "d2", "azure.ai.openai"),
        # bare calls on Azure resource hosts
        ("POST", AZ, "/chat/completions", "", "chat", "create", None, "azure.ai.openai"),
        ("POST", AZ, "/responses", "", "responses", "create", None, "azure.ai.openai"),
        ("POST", AZ, "/embeddings", "", "embeddings", "create", None, "azure.ai.openai"),
        ("POST", "acct.services.ai.azure.com", "/v1/chat/completions", "", "chat", "create", None,
         "azure.ai.openai"),
        ("POST", AZ, "/responses/resp_1/cancel", "", "responses", "cancel", None, "azure.ai.openai"),
    ],
)
def test_known_calls_after_any_prefix(method: str, host: str, path: str, query: str, api: str, operation: str,
                                      deployment: str | None, provider: str) -> None:
    route = match(method, host, 443, path, query)
    assert route is not None, path
    assert (route.api, route.operation, route.deployment, route.provider) == (api, operation, deployment, provider)


def test_configured_hosts_take_any_prefix_too() -> None:
    hosts = frozenset({"llm.internal"})
    route = match("POST", "llm.internal", None, "/gw/chat/completions", "", hosts)
    assert route is not None and (route.api, route.provider) == ("chat", "openai")
    route = match("POST", "llm.internal", None, "/gw/chat/completions", "api-version=2024-10-21", hosts)
    assert route is not None and route.provider == "azure.ai.openai"
    assert match("POST", "other.internal", None, "/gw/chat/completions", "", hosts) is None


@pytest.mark.parametrize("path", ["/chat/completions", "/x/responses", "/embeddings"])
def test_bare_suffixes_are_foreign_on_other_hosts(path: str) -> None:
    assert match("POST", "example.com", None, path, "") is None
