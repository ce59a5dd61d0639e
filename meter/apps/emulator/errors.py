"""Azure's error bodies, byte-for-byte in shape (key order included) as recorded.

Each function returns ``(status, body)``. The shapes differ by cause and era:
the 401 and 429 carry ``code`` as a string status, DeploymentNotFound has a
``type`` (2026 form), the chat content filter has ``innererror`` while the
Responses one is a plain OpenAI-style error.
"""

from __future__ import annotations

from typing import Any

from meter.apps.emulator.filters import content_filter_results

Error = tuple[int, dict[str, Any]]

_UNAUTHORIZED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an "
    "active subscription and use a correct regional API endpoint for your resource."
)
_NO_DEPLOYMENT = (
    "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, "
    "please wait a moment and try again."
)
_FILTERED = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify "
    "your prompt and retry. To learn more about our content filtering policies please read our documentation: "
    "https://go.microsoft.com/fwlink/?linkid=2198766"
)
_OPERATIONS = {"chat": "ChatCompletions_Create", "responses": "Responses_Create", "embeddings": "Embeddings_Create"}


def unauthorized() -> Error:
    return 401, {"error": {"code": "401", "message": _UNAUTHORIZED}}


def resource_not_found() -> Error:
    """Unknown path, or a classic path without ``api-version`` (Azure answers 404, not 400)."""
    return 404, {"error": {"code": "404", "message": "Resource not found"}}


def api_version_not_supported() -> Error:
    return 400, {"error": {"code": "BadRequest", "message": "API version not supported"}}


def deployment_not_found() -> Error:
    return 404, {"error": {"type": "invalid_request_error", "code": "DeploymentNotFound", "message": _NO_DEPLOYMENT}}


def unknown_model(name: str) -> Error:
    """The v1 endpoints' answer to a ``model`` that names no deployment (recorded: 400, not 404)."""
    message = f"Unknown model: {name}"
    return 400, {"error": {"code": "unknown_model", "message": message, "details": message}}


def operation_not_supported(operation: str, model: str) -> Error:
    message = (
        f"The {operation} operation does not work with the specified model, {model}. Please choose different model "
        "and try again. You can learn more about which models can be used with each operation here: "
        "https://go.microsoft.com/fwlink/?linkid=2197993."
    )
    return 400, {"error": {"code": "OperationNotSupported", "message": message}}


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> Error:
    return 400, {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def invalid_tier(value: str | None) -> Error:
    """A ``service_tier`` that is none of auto, default, flex, priority."""
    return invalid_request(f"Invalid value for 'service_tier': '{value}'. Supported values are: 'auto', 'default', "
                           "'flex' and 'priority'.", "service_tier", "invalid_value")


def unrecognized_argument(name: str) -> Error:
    """What api-versions up to 2024-06-01 say about ``stream_options``."""
    return invalid_request(f"Unrecognized request argument supplied: {name}")


def content_filter(api: str) -> Error:
    if api == "responses":
        return invalid_request(_FILTERED, "prompt", "content_filter")
    return 400, {
        "error": {
            "message": _FILTERED,
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": content_filter_results(prompt=True, flagged=True),
            },
        }
    }


def rate_limited(api: str, api_version: str | None, retry_after_s: int) -> Error:
    operation = _OPERATIONS.get(api, "ChatCompletions_Create")
    message = (
        f"Requests to the {operation} Operation under Azure OpenAI API version {api_version or 'v1'} have exceeded "
        f"token rate limit of your current OpenAI S0 pricing tier. Please retry after {retry_after_s} second"
        f"{'' if retry_after_s == 1 else 's'}. Please go here: https://aka.ms/oai/quotaincrease if you would like to "
        "further increase the default rate limit."
    )
    if api == "responses":
        return 429, {"error": {"message": message, "type": "too_many_requests", "code": "429"}}
    return 429, {"error": {"code": "429", "message": message}}


def server_error(status: int) -> Error:
    if status == 503:
        message = "The service is temporarily unable to process your request. Please try again later."
    else:
        message = "The server had an error while processing your request. Sorry about that!"
    return status, {"error": {"message": message, "type": "server_error", "param": None, "code": None}}


def injected(status: int, api: str, api_version: str | None) -> Error:
    """The body for a ``fail_next`` fault: Azure's own shape for 429 and 5xx, a generic one otherwise."""
    if status == 429:
        return rate_limited(api, api_version, 1)
    if status >= 500:
        return server_error(status)
    return status, {"error": {"code": str(status), "message": f"Injected failure ({status})."}}


def previous_response_not_found(response_id: str) -> Error:
    return invalid_request(f"Previous response with id '{response_id}' not found.", "previous_response_id",
                           "previous_response_not_found")


def response_not_found(response_id: str) -> Error:
    return 404, {
        "error": {
            "message": f"Response with id '{response_id}' not found.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


def file_not_found(file_id: str) -> Error:
    return 404, {"error": {"message": f"No such File object: {file_id}", "type": "invalid_request_error",
                           "param": "id", "code": None}}


def batch_not_found(batch_id: str) -> Error:
    return 404, {"error": {"message": f"No batch found with id '{batch_id}'.", "type": "invalid_request_error",
                           "param": None, "code": None}}
