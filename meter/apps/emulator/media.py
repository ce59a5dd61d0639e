"""Audio and images answers, shaped like the recorded ones (``cases-billing`` 34, 36, 38, 39).

* Transcriptions and translations: ``{"text": ..., "usage": ...}``; the gpt-4o-transcribe family
  bills tokens (``{"type": "tokens", "total_tokens", "input_tokens", "input_token_details":
  {"text_tokens", "audio_tokens"}, "output_tokens"}``), whisper bills the duration (``{"type":
  "duration", "seconds": N}``). The audio's length is derived from the upload's size, as if it were
  16 kB a second (128 kbit/s); audio is 8 tokens a second. A stream (``stream=true``, token
  models only) sends ``transcript.text.delta`` events and ends with ``transcript.text.done`` and
  the usage.
* Speech: binary audio (``audio/mpeg`` ...), about 15 characters a second of speech; with
  ``stream_format: "sse"`` (gpt-4o-mini-tts only) ``speech.audio.delta`` events and a
  ``speech.audio.done`` carrying the token usage. tts-1 bills the input's characters, and says
  nothing of them in the answer.
* Images: gpt-image-1 answers ``b64_json`` images and token usage (output image tokens by size and
  quality, OpenAI's table), or a stream ending in ``image_generation.completed`` with the usage;
  dall-e-3 answers one image per call, without usage (billed per image).

Pure: each function returns the body and what the emulator bills for it.
"""

from __future__ import annotations

import base64
import hashlib
import math
import time
from typing import Any

from meter.apps.emulator.config import Deployment
from meter.apps.emulator.generation import Generation, plan
from meter.apps.emulator.tools import TINY_PNG

AUDIO_BYTES_PER_SECOND = 16_000
AUDIO_TOKENS_PER_SECOND = 8
SPEECH_CHARS_PER_SECOND = 15
SPEECH_BYTES_PER_SECOND = 6_000
"""The emulator's speech is small (48 kbit/s), so the demo stays fast."""
SPEECH_TOKENS_PER_SECOND = 37
_IMAGE_TOKENS = {("1024x1024", "low"): 272, ("1024x1024", "medium"): 1056, ("1024x1024", "high"): 4160,
                 ("1024x1536", "low"): 408, ("1024x1536", "medium"): 1584, ("1024x1536", "high"): 6240,
                 ("1536x1024", "low"): 400, ("1536x1024", "medium"): 1568, ("1536x1024", "high"): 6208}
INPUT_IMAGE_TOKENS = 194
"""Image tokens an uploaded image adds to an edit's input."""
_MEDIA_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
                "wav": "audio/wav", "pcm": "audio/pcm"}


def is_duration_model(deployment: Deployment) -> bool:
    """whisper bills seconds of audio; the gpt-4o-transcribe family bills tokens."""
    return deployment.model.startswith("whisper")


def is_character_model(deployment: Deployment) -> bool:
    """tts-1 and tts-1-hd bill characters of input; gpt-4o-mini-tts bills tokens."""
    return deployment.model.startswith("tts-")


def _seed(data: bytes) -> tuple[str, ...]:
    return ("<|audio|>", hashlib.sha256(data[:65536]).hexdigest(), str(len(data)))


# -- transcriptions and translations ------------------------------------------------------------------


def transcript(deployment: Deployment, audio: bytes, prompt: str) -> tuple[Generation, float]:
    """The transcript of ``audio`` (a few words a second of it) and the audio's length in seconds."""
    seconds = len(audio) / AUDIO_BYTES_PER_SECOND
    words = max(3, math.ceil(seconds * 2.5))
    return plan(deployment, (*_seed(audio), *prompt.split()), words), seconds


def transcription_usage(deployment: Deployment, generation: Generation, seconds: float,
                        prompt: str) -> dict[str, Any]:
    if is_duration_model(deployment):
        return {"type": "duration", "seconds": max(1, round(seconds))}
    audio = max(1, round(seconds * AUDIO_TOKENS_PER_SECOND))
    text = len(prompt.split())
    output = len(generation.deltas)
    return {"type": "tokens", "total_tokens": audio + text + output, "input_tokens": audio + text,
            "input_token_details": {"text_tokens": text, "audio_tokens": audio}, "output_tokens": output}


def transcription_body(deployment: Deployment, generation: Generation, seconds: float, usage: dict[str, Any],
                       response_format: str, translate: bool) -> dict[str, Any]:
    text = generation.text
    if response_format == "verbose_json":
        return {"task": "translate" if translate else "transcribe", "language": "english",
                "duration": round(seconds, 2), "text": text,
                "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": round(seconds, 2), "text": text,
                              "tokens": list(range(50364, 50364 + len(generation.deltas))), "temperature": 0.0,
                              "avg_logprob": -0.25, "compression_ratio": 1.0, "no_speech_prob": 0.01}],
                "usage": usage}
    return {"text": text, "usage": usage}


def transcription_events(generation: Generation, usage: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [{"type": "transcript.text.delta", "delta": d, "logprobs": None}
                                    for d in generation.deltas]
    events.append({"type": "transcript.text.done", "text": generation.text, "logprobs": None, "usage": usage})
    return events


# -- speech -----------------------------------------------------------------------------------------------


def speech_audio(text: str, response_format: str) -> tuple[bytes, str, float]:
    """Deterministic audio bytes for ``text``, their media type and their length in seconds."""
    seconds = max(0.5, len(text) / SPEECH_CHARS_PER_SECOND)
    size = int(seconds * SPEECH_BYTES_PER_SECOND)
    seed = hashlib.sha256(text.encode()).digest()
    body = (seed * (size // len(seed) + 1))[:size]
    head = b"ID3\x04\x00\x00\x00\x00\x00\x00" if response_format == "mp3" else b""
    return head + body, _MEDIA_TYPES.get(response_format, "audio/mpeg"), seconds


def speech_usage(deployment: Deployment, text: str, instructions: str, seconds: float) -> dict[str, Any]:
    if is_character_model(deployment):
        return {"type": "characters", "characters": len(text)}
    input_tokens = max(1, math.ceil(len(text) / 4)) + len(instructions.split())
    output_tokens = max(1, math.ceil(seconds * SPEECH_TOKENS_PER_SECOND))
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}


def speech_events(audio: bytes, usage: dict[str, Any], chunk: int = 6_000) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {"type": "speech.audio.delta", "audio": base64.b64encode(audio[i:i + chunk]).decode()}
        for i in range(0, len(audio), chunk)]
    events.append({"type": "speech.audio.done", "usage": usage})
    return events


# -- images ------------------------------------------------------------------------------------------------


def image_tokens(size: str, quality: str) -> int:
    """Output image tokens of one gpt-image-1 image (``auto`` is 1024x1024 at medium)."""
    size = "1024x1024" if size == "auto" else size
    quality = "medium" if quality == "auto" else quality
    return _IMAGE_TOKENS.get((size, quality), _IMAGE_TOKENS[("1024x1024", "medium")])


def image_usage(prompt: str, n: int, size: str, quality: str, input_images: int = 0) -> dict[str, Any]:
    text = len(prompt.split()) + 18
    images_in = input_images * INPUT_IMAGE_TOKENS
    out = n * image_tokens(size, quality)
    return {"input_tokens": text + images_in, "input_tokens_details": {"image_tokens": images_in, "text_tokens": text},
            "output_tokens": out, "output_tokens_details": {"image_tokens": out, "text_tokens": 0},
            "total_tokens": text + images_in + out}


def gpt_image_body(n: int, size: str, quality: str, output_format: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {"created": int(time.time()), "background": "opaque", "data": [{"b64_json": TINY_PNG} for _ in range(n)],
            "output_format": output_format, "quality": "medium" if quality == "auto" else quality,
            "size": "1024x1024" if size == "auto" else size, "usage": usage}


def gpt_image_events(n: int, size: str, quality: str, output_format: str, usage: dict[str, Any],
                     partial_images: int, edit: bool) -> list[dict[str, Any]]:
    """Partial images, then one ``*.completed`` per image; the last one carries the call's usage."""
    kind = "image_edit" if edit else "image_generation"
    created = int(time.time())
    shape = {"background": "opaque", "output_format": output_format,
             "quality": "medium" if quality == "auto" else quality, "size": "1024x1024" if size == "auto" else size}
    events: list[dict[str, Any]] = []
    for image in range(n):
        for index in range(partial_images):
            events.append({"type": f"{kind}.partial_image", "b64_json": TINY_PNG, "created_at": created,
                           **shape, "partial_image_index": index})
        done: dict[str, Any] = {"type": f"{kind}.completed", "b64_json": TINY_PNG, "created_at": created, **shape}
        if image == n - 1:
            done["usage"] = usage
        events.append(done)
    return events


def dalle_body(prompt: str, response_format: str, seed: str) -> dict[str, Any]:
    item: dict[str, Any] = {"revised_prompt": f"A detailed picture of {prompt.strip().rstrip('.')}."}
    if response_format == "b64_json":
        item["b64_json"] = TINY_PNG
    else:
        item["url"] = f"https://dalleprodsec.blob.core.windows.net/private/images/{seed}/generated_00.png"
    return {"created": int(time.time()), "data": [item]}
