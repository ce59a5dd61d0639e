"""What an image or audio request bounds, before it is sent: the counts its worst case is priced at.

These calls are billed as the finished call will be (``meter.core.units``): dall-e-3 per image (its
quality and size), tts-1 / tts-1-hd per character of ``input``, whisper per minute of audio, and the
token-billed models (gpt-image-1, gpt-4o-mini-tts, gpt-4o-transcribe) by their tokens. ``bound_of``
says what the request bounds (tokens, or units by price column) and what it cannot (``unpriced``,
with the reason); ``meter.budgets.estimate`` prices it with the ``PriceBook``. Pure: no I/O, no prices.

GPT Image output tokens per image (models before gpt-image-2), from OpenAI's "Image generation"
guide, "Cost and latency" (https://developers.openai.com/api/docs/guides/image-generation#cost-and-latency):
a table by quality and size, and "each partial image will incur an additional 100 image output tokens".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from meter.core.record import Usage
from meter.core.request import estimate_input_tokens
from meter.core.units import image_variant

MAX_COUNT = 10**9
"""The largest count read from a request (as meter caps reported usage); more is capped."""

IMAGE_OUTPUT_TOKENS: Mapping[str, Mapping[str, int]] = MappingProxyType({
    # quality -> size -> image output tokens per image (OpenAI, "Image generation", "Cost and latency").
    "low": MappingProxyType({"1024x1024": 272, "1024x1536": 408, "1536x1024": 400}),
    "medium": MappingProxyType({"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568}),
    "high": MappingProxyType({"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208}),
})
"""Image output tokens of one image of a GPT Image model before gpt-image-2, by quality and size.
A quality or size the table does not name (``auto``, none, anything else) takes its largest entry:
``high``, and the largest size of the quality."""

IMAGE_TOKEN_MODELS = ("gpt-image-1.5", "gpt-image-1-mini", "gpt-image-1")
"""The models ``IMAGE_OUTPUT_TOKENS`` is for (a dated id takes its prefix's entry)."""
PARTIAL_IMAGE_TOKENS = 100
"""Image output tokens each streamed partial image adds."""
MAX_PARTIAL_IMAGES = 3
"""The most partial images a request may ask for (``partial_images`` is 0 to 3)."""

_UPLOAD = "an upload (multipart/form-data) is not read beyond its model"


@dataclass(frozen=True, slots=True)
class MediaBound:
    """What an image or audio request bounds: token usage or units by price column, and what it cannot."""

    usage: Usage | None = None
    units: Mapping[str, int] = field(default_factory=dict)
    unpriced: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    output_from: str = ""


def count(value: Any) -> int | None:
    """A positive whole count from a request field (capped at ``MAX_COUNT``), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return min(value, MAX_COUNT)


def _family(name: str | None, families: tuple[str, ...]) -> str | None:
    """The family ``name`` is (the whole id, or a dated id: the family and a ``-`` after it), else ``None``."""
    if not name:
        return None
    lowered = name.lower()
    for family in families:
        if lowered == family or lowered.startswith(family + "-"):
            return family
    return None


def image_output_tokens(quality: object, size: object) -> int:
    """One image's output tokens from ``IMAGE_OUTPUT_TOKENS``; the largest where the request says ``auto``,
    nothing, or a value the table does not name."""
    by_size = IMAGE_OUTPUT_TOKENS.get(quality.strip().lower() if isinstance(quality, str) else "")
    if by_size is None:
        by_size = IMAGE_OUTPUT_TOKENS["high"]
    tokens = by_size.get(size.strip().lower() if isinstance(size, str) else "")
    return tokens if tokens is not None else max(by_size.values())


def bound_of(body: Mapping[str, Any] | None, *, api: str, models: tuple[str | None, ...]) -> MediaBound:
    """The bound of an ``images``, ``speech``, ``transcriptions`` or ``translations`` call.

    ``body`` is the parsed JSON request (``None``: an upload, or nothing readable); ``models`` the names the
    call goes by (the priced model first, then the name it was asked by), to tell how it is billed.
    """
    if api == "images":
        return _images(body, models)
    if api == "speech":
        return _speech(body, models)
    return MediaBound(unpriced=f"the audio's length is not in a {api} request ({_UPLOAD})",
                      output_from="none (audio upload)")


def _images(body: Mapping[str, Any] | None, models: tuple[str | None, ...]) -> MediaBound:
    if body is None:
        return MediaBound(unpriced=f"an image edit's count, size and input images are not in the request ({_UPLOAD})",
                          output_from="none (image upload)")
    n = count(body.get("n")) or 1
    quality, size = body.get("quality"), body.get("size")
    edit = any(key in body for key in ("image", "images", "mask"))
    if not any(_family(model, ("gpt-image",)) for model in models):
        # Billed per image made (dall-e-3), input images or not: n images at the price of their quality and size.
        return MediaBound(units={f"image_{image_variant(quality, size)}": n}, output_from="n images")
    input_tokens = min(estimate_input_tokens(dict(body)), MAX_COUNT)
    reasons = ["the input images of an edit are not bounded by the request"] if edit else []
    if not any(_family(model, IMAGE_TOKEN_MODELS) for model in models):
        name = next((model for model in models if model), "")
        reasons.insert(0, f"{name}'s image output tokens per image are not published by quality and size")
        return MediaBound(usage=Usage(input_tokens=input_tokens, total_tokens=input_tokens),
                          unpriced="; ".join(reasons), input_tokens=input_tokens, output_from="not bounded")
    partial = min(count(body.get("partial_images")) or 0, MAX_PARTIAL_IMAGES) if body.get("stream") is True else 0
    output = min(n * (image_output_tokens(quality, size) + partial * PARTIAL_IMAGE_TOKENS), MAX_COUNT)
    usage = Usage(input_tokens=input_tokens, output_tokens=output, image_output_tokens=output,
                  total_tokens=input_tokens + output)
    return MediaBound(usage=usage, unpriced="; ".join(reasons) or None, input_tokens=input_tokens,
                      output_tokens=output, output_from="n x image tokens by quality and size")


def _speech(body: Mapping[str, Any] | None, models: tuple[str | None, ...]) -> MediaBound:
    request = body if body is not None else {}
    if any(_family(model, ("tts-1", "tts-1-hd")) for model in models):
        # Billed per character of ``input``, as the finished call is (``units_of``): exact.
        text = request.get("input")
        characters = min(len(text), MAX_COUNT) if isinstance(text, str) else 0
        return MediaBound(units={"speech_characters": characters} if characters else {},
                          output_from="characters of input")
    input_tokens = min(estimate_input_tokens(dict(request)), MAX_COUNT)
    return MediaBound(usage=Usage(input_tokens=input_tokens, total_tokens=input_tokens),
                      unpriced="the audio output of a speech call is not bounded by the request (its length "
                               "follows the voice, speed and instructions)",
                      input_tokens=input_tokens, output_from="not bounded")
