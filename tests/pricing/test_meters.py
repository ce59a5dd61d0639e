"""The one meter-name parser, on real Azure meter names (all from the 2026-08-11 Retail snapshot)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from meter.pricing.meters import LONG_CONTEXT_TOKENS, MeterKey, UnmappedMeter, normalise, parse_meter

ROOT = Path(__file__).resolve().parents[2]
LONG = LONG_CONTEXT_TOKENS


@cache
def _snapshot_names() -> frozenset[str]:
    data = json.loads((ROOT / "pricing" / "azure-retail" / "2026-08-11-azure-openai.json").read_text(encoding="utf-8"))
    return frozenset(item["meterName"] for item in data["items"])


READ = [
    # spellings of the scope: Data Zone / DataZone / DZone / dz / DZn; glbl / Gl; regnl / regn / rg
    ("gpt 4o 1120 cached Inp Data Zone Tokens", MeterKey("gpt-4o-2024-11-20", "cached_input", "DataZoneStandard")),
    ("gpt-4o-mini-0718-Batch-Outp-glbl Tokens", MeterKey("gpt-4o-mini-2024-07-18", "output", "GlobalBatch")),
    ("gpt 4o mini0718 BatchOutp DataZone Tokens", MeterKey("gpt-4o-mini-2024-07-18", "output", "DataZoneBatch")),
    ("GPT 5 Chat cchd Inpt DZone 1M Tokens", MeterKey("gpt-5-chat", "cached_input", "DataZoneStandard")),
    ("o3 0416 cached Inp glbl Tokens", MeterKey("o3", "cached_input", "GlobalStandard")),
    # GPT-5.6 tiers: ShortCo / LongCo (above 272k input tokens), Std / PP (priority processing), Cd Wr
    ("5.6 luna ShortCo Cd Wr PP Gl 1M Tokens", MeterKey("gpt-5.6-luna", "cache_write", "GlobalPriority")),
    ("5.6 terra LongCo Opt Std DZ 1M Tokens", MeterKey("gpt-5.6-terra", "output", "DataZoneStandard", LONG)),
    # realtime and audio: unmarked = audio; cached audio is its own kind
    ("gpt4omini-rt-aud1217 cchd Inp DZn Tokens",
     MeterKey("gpt-4o-mini-realtime-preview-2024-12-17", "cached_audio_input", "DataZoneStandard")),
    ("gpt4o realtime cached audio inp glbl Tokens",
     MeterKey("gpt-4o-realtime-preview-2024-10-01", "cached_audio_input", "GlobalStandard")),
    ("gpt4o realtimePrvw audio outp regn Tokens",
     MeterKey("gpt-4o-realtime-preview-2024-10-01", "audio_output", "Standard")),
    ("gpt aud 1.5 txt inp Gl 1M Tokens", MeterKey("gpt-audio-1.5", "input", "GlobalStandard")),
    ("gpt aud 1.5 opt Dz 1M Tokens", MeterKey("gpt-audio-1.5", "audio_output", "DataZoneStandard")),
    ("gpt rt aud mn cd in rg 1215 1M Tokens",
     MeterKey("gpt-realtime-mini-2025-12-15", "cached_audio_input", "Standard")),
    # speech: modality always written
    ("gpt4o mn trscb aud in gl 1215 1M Tokens",
     MeterKey("gpt-4o-mini-transcribe-2025-12-15", "audio_input", "GlobalStandard")),
    ("gpt-4o-transcribe-aud-inp-glbl Tokens", MeterKey("gpt-4o-transcribe", "audio_input", "GlobalStandard")),
    ("gpt4o mn tts aud out rg 1215 1M Tokens", MeterKey("gpt-4o-mini-tts-2025-12-15", "audio_output", "Standard")),
    # embeddings name no direction: input
    ("text embedding 3 small DZ Tokens", MeterKey("text-embedding-3-small", "input", "DataZoneStandard")),
    ("text-embedding-3-small-regional Tokens", MeterKey("text-embedding-3-small", "input", "Standard")),
    # legacy versions Azure still bills
    ("gpt-35-turbo16K-0125 Inp-glbl Tokens", MeterKey("gpt-3.5-turbo-0125", "input", "GlobalStandard")),
    ("gpt-35-trb16K-Batch-125-Outp-glbl Tokens", MeterKey("gpt-3.5-turbo-0125", "output", "GlobalBatch")),
    ("gpt-4-32K-Input-regional Tokens", MeterKey("gpt-4-32k-0613", "input", "Standard")),
    ("gpt-4-Turbo-Batch-128K Outp-glbl Tokens", MeterKey("gpt-4-turbo-2024-04-09", "output", "GlobalBatch")),
    ("gpt-oss-120B Outp DZone Tokens", MeterKey("gpt-oss-120b", "output", "DataZoneStandard")),
    # the built-in tools' fees: one model, built-in-tools, for every model's calls
    ("file-search-tool-calls-glbl Calls", MeterKey("built-in-tools", "file_search", "GlobalStandard")),
    ("file-search-tool-calls-datazone Calls", MeterKey("built-in-tools", "file_search", "DataZoneStandard")),
    ("file-search-tool-calls-rgnl Calls", MeterKey("built-in-tools", "file_search", "Standard")),
    ("Code-Interpreter-global Session", MeterKey("built-in-tools", "code_interpreter", "GlobalStandard")),
    ("Code-Interpreter-regnl EP Session", MeterKey("built-in-tools", "code_interpreter", "Standard")),
    # whisper per hour of audio (priced per minute); dall-e-3 per image: LowRes square, HighRes wide
    ("Speech-to-Text-Batch-Whisper-glbl Unit", MeterKey("whisper", "audio_minute", "GlobalStandard")),
    ("Speech-to-Text-Batch-Whisper-regnl Unit", MeterKey("whisper", "audio_minute", "Standard")),
    ("Image-Dall-E-3 Std LowRes-glbl Images", MeterKey("dall-e-3", "image_standard", "GlobalStandard")),
    ("Image-Dall-E-3 Std HighRes-glbl Images", MeterKey("dall-e-3", "image_standard_wide", "GlobalStandard")),
    ("Image-Dall-E-3 HD LowRes-regnl EP Images", MeterKey("dall-e-3", "image_hd", "Standard")),
    ("Image-Dall-E-3 HD HighRes-glbl Images", MeterKey("dall-e-3", "image_hd_wide", "GlobalStandard")),
    # gpt-image-1: text and image input, cached text input, image output
    ("gpt-image-1-inp-txt-glbl Tokens", MeterKey("gpt-image-1", "input", "GlobalStandard")),
    ("gpt-image-1-inp-img-dzone Tokens", MeterKey("gpt-image-1", "image_input", "DataZoneStandard")),
    ("gpt-image-1-inp-cached-txt-glbl Tokens", MeterKey("gpt-image-1", "cached_input", "GlobalStandard")),
    ("gpt-image-1-output-img-glbl Tokens", MeterKey("gpt-image-1", "image_output", "GlobalStandard")),
]


@pytest.mark.parametrize(("name", "expected"), READ, ids=[r[0] for r in READ])
def test_real_meter_names(name: str, expected: MeterKey) -> None:
    assert name in _snapshot_names()  # a real name, not one made up for the test
    assert parse_meter(name) == expected


UNMAPPED = [
    ("4.1 ft cd inp Dz Tokens", "fine-tuning"),
    ("GPT-OSS-20b-IN-FT Tokens", "fine-tuning"),
    ("Image 2 img cd inp Gl 1M Tokens", "image"),
    ("Az-GPT35-Turbo-16K-1106 Input Tokens", "legacy-meter"),
    ("gpt-4-8K-Batch-Inp-regnl Tokens", "no-deployment-type"),
    ("gpt-latest 05052026 inp Gl 1M Tokens", "unknown-model"),
    ("davinci-002-base-glbl Tokens", "completions"),
    ("Speech-Text to Speech-global Characters", "not-tokens"),
    ("gpt-image-1-inp-cached-img-glbl Tokens", "image"),
    ("gpt img 1 mini inp txt glbl Tokens", "image"),
    ("Image-DALL-E-2-glbl Images", "image"),
]


@pytest.mark.parametrize(("name", "category"), UNMAPPED, ids=[u[0] for u in UNMAPPED])
def test_meters_that_are_not_table_prices_say_why(name: str, category: str) -> None:
    assert name in _snapshot_names()
    with pytest.raises(UnmappedMeter) as info:
        parse_meter(name)
    assert info.value.category == category
    assert str(info.value)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("gpt 4o 1120 Inp Tokens", "no deployment scope"),
        ("gpt 4o 1120 glbl Tokens", "no token direction"),
        ("gpt 4o 1120 cached Outp glbl Tokens", "a cached output is not a price kind"),
        ("gpt 4o 1120 Batch pp Inp glbl Tokens", "both Batch and Priority"),
        ("gpt 4o 1120 Inp glbl turbo Tokens", "unexpected word 'turbo'"),
        ("gpt 9o Inp glbl Tokens", "no known model"),
        ("gpt4o mn tts in gl 1215 1M Tokens", "no modality"),
    ],
)
def test_unclear_names_are_refused_not_guessed(name: str, reason: str) -> None:
    with pytest.raises(UnmappedMeter, match=reason):
        parse_meter(name)


def test_one_meter_bills_output_that_has_no_detail() -> None:
    """A text-to-speech model's output is audio and gpt-image-1's is image tokens: their audio (image) output meter
    prices output reported without the detail too, and reconciliation bills such output as the meter's kind."""
    from meter.pricing.meters import billed_kind

    assert parse_meter("gpt-4o-mini-tts-aud-out-glbl Tokens").also == ("output",)
    assert parse_meter("gpt-image-1-output-img-glbl Tokens").also == ("output",)
    assert parse_meter("gpt aud 1.5 opt Dz 1M Tokens").also == ()  # gpt-audio has a text output meter of its own
    assert [billed_kind(m, "output") for m in ("gpt-4o-mini-tts", "gpt-image-1", "gpt-audio-1.5", "gpt-5")] == [
        "audio_output", "image_output", "output", "output"]


def test_normalise_splits_glued_words() -> None:
    assert normalise("gpt 4o mini0718 BatchOutp DataZone") == "gpt 4o mini0718 batch outp datazone"
    assert normalise("gpt4o realtimePrvwAudInp DataZone") == "gpt4o realtime prvw aud inp datazone"


def test_every_token_meter_of_the_snapshot_is_read_or_refused_with_a_category() -> None:
    """No meter name crashes the parser or falls into the catch-all 'unreadable'."""
    for name in sorted(_snapshot_names()):
        try:
            parse_meter(name)
        except UnmappedMeter as exc:
            assert exc.category != "unreadable", name
