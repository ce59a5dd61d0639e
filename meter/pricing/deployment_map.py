"""The user's map from Azure deployment name to (model, deployment type, region).

A deployment name is a user-chosen alias, not a model id, and the deployment type
and region are not in any response. Only the user knows them, so meter reads them
from a small file or an environment variable through this loader.

TOML::

    [deployments.chat-prod]
    model = "gpt-4.1-mini-2025-04-14"
    deployment_type = "DataZoneStandard"
    region = "swedencentral"

    [deployments]
    embed = "text-embedding-3-large"        # shorthand: model only

JSON: the same shape, ``{"deployments": {"chat-prod": {"model": ...}}}``; the
``deployments`` wrapper may be left out in both formats.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meter.pricing.deployment_types import canonical_deployment_type
from meter.pricing.errors import PricingFileError, Problem

_FIELDS = frozenset({"model", "deployment_type", "region"})


@dataclass(frozen=True, slots=True)
class DeploymentInfo:
    """What a deployment serves; ``deployment_type`` is canonical, ``None`` means not stated."""

    model: str
    deployment_type: str | None = None
    region: str | None = None


def load_deployment_map(source: str | os.PathLike[str], origin: str | None = None) -> dict[str, DeploymentInfo]:
    """Read a deployment map from a TOML/JSON file path or from a JSON string.

    A string whose first non-blank character is ``{`` is JSON text (as from an
    environment variable); anything else is a path. ``origin`` names where JSON
    text came from in error messages (e.g. ``$METER_DEPLOYMENTS``). Raises
    ``PricingFileError``.
    """
    if isinstance(source, str) and source.lstrip().startswith("{"):
        name = f"{origin} (JSON text)" if origin else "(JSON text)"
        data = _parse_json(source, name)
    else:
        path = Path(source)
        name = f"{path} (from {origin})" if origin else str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PricingFileError([Problem(name, "(file)", "-", f"cannot read file: {exc.strerror or exc}")]) from exc
        if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
            data = _parse_json(text, name)
        else:
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise PricingFileError([Problem(name, "(file)", "-", f"not valid TOML: {exc}")]) from exc
            except RecursionError as exc:
                raise PricingFileError([Problem(name, "(file)", "-",
                                                "nested too deeply to be a deployment map")]) from exc
    return _parse_map(data, name)


def _parse_json(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PricingFileError([Problem(name, "(file)", "-", f"not valid JSON: {exc}")]) from exc
    except RecursionError as exc:
        raise PricingFileError([Problem(name, "(file)", "-", "nested too deeply to be a deployment map")]) from exc


def _parse_map(data: Any, name: str) -> dict[str, DeploymentInfo]:
    if isinstance(data, dict) and set(data) == {"deployments"}:
        data = data["deployments"]
    if not isinstance(data, dict):
        raise PricingFileError([Problem(name, "(file)", "deployments", "must be a table of deployment name -> model")])
    problems: list[Problem] = []
    out: dict[str, DeploymentInfo] = {}
    for deployment, raw in data.items():
        entry = f"deployment {deployment!r}"
        if isinstance(raw, str):
            raw = {"model": raw}
        if not isinstance(raw, dict):
            problems.append(Problem(name, entry, "model", "must be a model name or a table with model"))
            continue
        for key in raw:
            if key not in _FIELDS:
                problems.append(
                    Problem(name, entry, key, f"unknown field; expected one of {', '.join(sorted(_FIELDS))}")
                )
        model = raw.get("model")
        if not isinstance(model, str) or not model.strip():
            problems.append(Problem(name, entry, "model", "missing or empty (required)"))
            continue
        dtype = raw.get("deployment_type")
        if dtype is not None:
            try:
                dtype = canonical_deployment_type(str(dtype))
            except ValueError as exc:
                problems.append(Problem(name, entry, "deployment_type", str(exc)))
                continue
        region = raw.get("region")
        if region is not None and (not isinstance(region, str) or not region.strip()):
            problems.append(Problem(name, entry, "region", "must be a non-empty string"))
            continue
        out[deployment] = DeploymentInfo(model=model.strip(), deployment_type=dtype, region=region)
    if problems:
        raise PricingFileError(problems)
    return out
