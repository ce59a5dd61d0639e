"""What the emulated Azure resource has deployed, and how slow it is.

Deployments are aliases for served models, exactly as on Azure: the caller
names the deployment, the answer names the dated model. The defaults cover the
three billing shapes the meter must handle (plain, reasoning, reasoning with
prompt caching) plus embeddings, in two deployment types.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Deployment:
    """One deployment: alias, served model and the traits that shape its usage.

    ``reasoning`` adds hidden reasoning tokens to every completion; ``cache``
    reports ``cached_tokens`` when a prompt shares a prefix with an earlier one
    (in whole ``cache_block`` blocks, like Azure's 128-token increments);
    ``embeddings`` marks an embeddings model (chat and Responses refuse it).
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


DEFAULT_DEPLOYMENTS: tuple[Deployment, ...] = (
    Deployment("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "GlobalStandard"),
    Deployment("o4-mini", "o4-mini-2025-04-16", "DataZoneStandard", reasoning=True),
    Deployment("gpt-5", "gpt-5-2025-08-07", "GlobalStandard", reasoning=True, cache=True),
    Deployment("text-embedding-3-small", "text-embedding-3-small", "Standard", embeddings=True),
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

    def deployment(self, name: str | None) -> Deployment | None:
        """The deployment called ``name``, or ``None`` (Azure's DeploymentNotFound)."""
        for deployment in self.deployments:
            if deployment.name == name:
                return deployment
        return None
