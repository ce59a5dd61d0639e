"""What the emulated Azure resource has deployed, and how slow it is.

Deployments are aliases for served models, exactly as on Azure: the caller
names the deployment, the answer names the dated model. The defaults cover the
three billing shapes the meter must handle (plain, reasoning, reasoning with
prompt caching) plus embeddings, in two deployment types; a deployment that
serves the Priority and Flex tiers; and the models of the audio and images
endpoints (token usage for gpt-4o-transcribe, gpt-4o-mini-tts and gpt-image-1,
seconds for whisper, characters for tts-1, images for dall-e-3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["text", "embeddings", "transcription", "speech", "image"]
"""What a deployment's model does, so each endpoint serves only its own models (as Azure does)."""


@dataclass(frozen=True)
class Deployment:
    """One deployment: alias, served model and the traits that shape its usage.

    ``reasoning`` adds hidden reasoning tokens to every completion; ``cache``
    reports ``cached_tokens`` when a prompt shares a prefix with an earlier one
    (in whole ``cache_block`` blocks, like Azure's 128-token increments);
    ``embeddings`` marks an embeddings model (chat and Responses refuse it);
    ``kind`` says which endpoints serve the model (``embeddings=True`` is the
    ``"embeddings"`` kind). ``tiers`` are the service tiers the deployment serves
    besides ``default``: ``priority`` (a request asking ``auto`` gets it too),
    ``flex``; a tier it does not serve is answered at ``default``, and says so.
    """

    name: str
    model: str
    deployment_type: str = "GlobalStandard"
    region: str = "East US 2"
    reasoning: bool = False
    cache: bool = False
    embeddings: bool = False
    tpm_limit: int = 120000
    rpm_limit: int = 120
    cache_block: int = 128
    kind: Kind = "text"
    tiers: tuple[str, ...] = ()

    @property
    def serves(self) -> Kind:
        """The endpoint family of the model (``embeddings=True`` wins, for configs written before ``kind``)."""
        return "embeddings" if self.embeddings else self.kind


DEFAULT_DEPLOYMENTS: tuple[Deployment, ...] = (
    Deployment("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "GlobalStandard"),
    Deployment("o4-mini", "o4-mini-2025-04-16", "DataZoneStandard", reasoning=True),
    Deployment("gpt-5", "gpt-5-2025-08-07", "GlobalStandard", reasoning=True, cache=True, tiers=("priority",)),
    Deployment("text-embedding-3-small", "text-embedding-3-small", "Standard", embeddings=True),
    Deployment("gpt-5.4-mini", "gpt-5.4-mini-2026-03-17", "GlobalStandard", reasoning=True, cache=True,
               tiers=("priority", "flex")),
    Deployment("gpt-4o-transcribe", "gpt-4o-transcribe", "GlobalStandard", kind="transcription"),
    Deployment("whisper", "whisper", "Standard", kind="transcription"),
    Deployment("gpt-4o-mini-tts", "gpt-4o-mini-tts", "GlobalStandard", kind="speech"),
    Deployment("tts", "tts-1", "Standard", kind="speech"),
    Deployment("gpt-image-1", "gpt-image-1", "GlobalStandard", kind="image"),
    Deployment("dall-e-3", "dall-e-3", "Standard", kind="image"),
)


@dataclass(frozen=True)
class EmulatorConfig:
    """The emulated resource: its deployments, key, region and pacing.

    ``latency_s`` delays the response headers, ``ttft_s`` the first content
    delta after them, and ``tokens_per_s`` paces the deltas that follow (0 means
    no pause). Non-streaming answers wait for the whole generation. With
    ``enforce_limits`` a deployment over its per-minute ``rpm_limit`` /
    ``tpm_limit`` answers 429 like Azure; off by default so long test runs and
    demos never throttle by accident (the headers still count down).
    """

    deployments: tuple[Deployment, ...] = DEFAULT_DEPLOYMENTS
    api_key: str = "emulator-key"
    latency_s: float = 0.0
    ttft_s: float = 0.0
    tokens_per_s: float = 0.0
    region: str = "East US 2"
    enforce_limits: bool = False
    batch_delay_s: float = 0.0
    """How long a Batch job stays ``in_progress`` before it is ``completed`` (0: completed when created)."""
    responses_token_headers: Literal["recorded", "minus-one"] = "recorded"
    """Responses' token rate-limit headers: ``recorded`` as Azure's recorded answers carry them (not streamed: the
    counts, as chat; streamed or an error: none), ``minus-one`` the ``-1`` Azure has been reported sending."""

    def deployment(self, name: str | None) -> Deployment | None:
        """The deployment called ``name``, or ``None`` (Azure's DeploymentNotFound)."""
        for deployment in self.deployments:
            if deployment.name == name:
                return deployment
        return None
