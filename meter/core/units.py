"""What a call is billed for when it is not billed by tokens: seconds of audio, characters, images.

whisper answers ``usage: {"type": "duration", "seconds": N}`` and is priced per minute; ``tts-1``
and ``tts-1-hd`` answer audio bytes and are priced per million characters of the request's
``input``; ``dall-e-3`` answers images without a usage object and is priced per image, by quality
and size. These are a call's *units*. The rule is one: **a call that reports token usage is billed
by its tokens; one that reports none is billed by its units** (gpt-4o-transcribe, gpt-4o-mini-tts
and gpt-image-1 report tokens). The token usage of such a call stays unknown (``None``): its units
are not tokens.

Declared once, as the usage kinds are (``unit(...)`` on each field of ``Units``): the help, the
price-table column, the span attribute, the ledger column's types. Every consumer iterates
``UNIT_KINDS``. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

IMAGE_VARIANTS = ("standard", "standard_wide", "hd", "hd_wide")
"""dall-e-3's four prices: quality ``standard`` or ``hd``, square (1024x1024) or wide (1792x1024, 1024x1792)."""


@dataclass(frozen=True, slots=True)
class UnitKind:
    """One kind of unit, as the catalogue declares it."""

    name: str
    """The ``Units`` field; also the ledger column and the Prometheus family stem."""
    help: str
    otel_attribute: str
    price_kinds: tuple[str, ...]
    """The price-table columns it is billed at (images: one per variant)."""
    sqlite_type: str
    postgres_type: str


def unit(*, help: str, otel_attribute: str, price_kinds: tuple[str, ...], sqlite_type: str = "INTEGER",
         postgres_type: str = "bigint", default: Any = 0) -> Any:
    """Declare a ``Units`` field with its catalogue entry."""
    spec = {"help": help, "otel_attribute": otel_attribute, "price_kinds": price_kinds, "sqlite_type": sqlite_type,
            "postgres_type": postgres_type}
    return dataclasses.field(default=default, metadata={"unit_kind": spec})


@dataclass(frozen=True, slots=True)
class Units:
    """The units one call was billed in (see the module docstring); zero where it used none."""

    audio_seconds: float = unit(
        help="Seconds of audio transcribed or translated by a model billed per minute (whisper)",
        otel_attribute="meter.usage.audio.seconds", price_kinds=("audio_minute",), sqlite_type="REAL",
        postgres_type="double precision", default=0.0)
    speech_characters: int = unit(
        help="Characters of input spoken by a model billed per character (tts-1, tts-1-hd)",
        otel_attribute="meter.usage.speech.characters", price_kinds=("speech_characters",))
    images: int = unit(
        help="Images made by a model billed per image (dall-e-3)",
        otel_attribute="meter.usage.images", price_kinds=tuple(f"image_{v}" for v in IMAGE_VARIANTS))
    image_variant: str | None = dataclasses.field(default=None, metadata={"unit_kind": None})
    """Which of ``IMAGE_VARIANTS`` the images are (from the request's quality and size; ``None``, priced as
    the API's default ``standard``, when the request was not read: a multipart edit, dall-e-2's only kind)."""

    def price_units(self) -> dict[str, float | int]:
        """The quantity billed per price-table column: ``{"audio_minute": 90.0}`` is 90 seconds at the per-minute
        price (the column's ``per`` says how many units a price is for); images at their variant's column."""
        out: dict[str, float | int] = {}
        if self.audio_seconds:
            out["audio_minute"] = self.audio_seconds
        if self.speech_characters:
            out["speech_characters"] = self.speech_characters
        if self.images:
            out[f"image_{self.image_variant or 'standard'}"] = self.images
        return out


UNIT_KINDS: tuple[UnitKind, ...] = tuple(
    UnitKind(name=f.name, **f.metadata["unit_kind"]) for f in dataclasses.fields(Units) if f.metadata["unit_kind"])
"""Every unit kind, in declaration order."""


def image_variant(quality: object, size: object) -> str:
    """dall-e-3's price variant from a request's ``quality`` and ``size``; the API's defaults (standard,
    1024x1024) where the request says neither."""
    hd = isinstance(quality, str) and quality.strip().lower() == "hd"
    wide = isinstance(size, str) and size.strip().lower() in ("1792x1024", "1024x1792")
    return ("hd" if hd else "standard") + ("_wide" if wide else "")


def units_of(api: str, ok: bool, has_usage: bool, audio_seconds: float | None, images: int | None,
             input_characters: int | None, variant: str | None) -> Units | None:
    """The units a finished call is billed in, or ``None`` (billed by tokens, or nothing billable).

    Only an answered call (``ok``) without token usage is billed by its units: the seconds the service
    reported, the images it returned, the characters a speech request asked to be spoken.
    """
    if has_usage or not ok:
        return None
    if api in ("transcriptions", "translations") and audio_seconds:
        return Units(audio_seconds=audio_seconds)
    if api == "speech" and input_characters:
        return Units(speech_characters=input_characters)
    if api == "images" and images:
        return Units(images=images, image_variant=variant)
    return None
