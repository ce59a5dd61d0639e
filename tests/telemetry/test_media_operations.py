"""Every api meter meters has a ``gen_ai.operation.name``: the conventions' where one exists, else meter's own."""

from __future__ import annotations

from typing import get_args

import pytest

from meter import names
from meter.core.record import MEDIA_APIS, Api
from meter.sinks.otel import operation_name


@pytest.mark.parametrize(("api", "operation", "expected"), [
    ("chat", "create", "chat"),
    ("responses", "create", "chat"),
    ("responses", "retrieve", "fetch_response"),
    ("responses", "compact", "compact_response"),
    ("embeddings", "create", "embeddings"),
    ("transcriptions", "create", "transcription"),
    ("translations", "create", "translation"),
    ("speech", "create", "speech"),
    ("images", "create", "image_generation"),
    ("batch_output", "retrieve", "batch_output"),
])
def test_operation_names(api: str, operation: str, expected: str) -> None:
    assert operation_name(api, operation) == expected


def test_every_api_is_named() -> None:
    assert set(names.MEDIA_OPERATIONS) == set(MEDIA_APIS) == set(get_args(Api)) - {"chat", "responses", "embeddings"}
