"""Azure's content-filter annotations, which ride along on every answer.

Prompt results add ``jailbreak``; completion results add the protected-material
checks; the role and finish chunks of a stream carry ``{}``. A metering client
must skip all of this without mistaking it for content or usage.
"""

from __future__ import annotations

from typing import Any

_SAFE = {"filtered": False, "severity": "safe"}
_CLEAR = {"detected": False, "filtered": False}


def content_filter_results(prompt: bool, flagged: bool = False) -> dict[str, Any]:
    """One ``content_filter_results`` object (alphabetical keys, as Azure sends them)."""
    results: dict[str, Any] = {"hate": dict(_SAFE)}
    if prompt:
        results["jailbreak"] = dict(_CLEAR)
    else:
        results["protected_material_code"] = dict(_CLEAR)
        results["protected_material_text"] = dict(_CLEAR)
    results["self_harm"] = dict(_SAFE)
    results["sexual"] = dict(_SAFE)
    results["violence"] = {"filtered": True, "severity": "high"} if flagged else dict(_SAFE)
    return results


def prompt_filter_results() -> list[dict[str, Any]]:
    """``prompt_filter_results``: note ``prompt_index`` comes first, unlike everything else."""
    return [{"prompt_index": 0, "content_filter_results": content_filter_results(prompt=True)}]


def responses_content_filters(prompt_chars: int, completion_chars: int) -> list[dict[str, Any]]:
    """The ``content_filters`` list a finished Azure Response carries."""
    return [
        _responses_filter("prompt", prompt_chars, content_filter_results(prompt=True)),
        _responses_filter("completion", completion_chars, content_filter_results(prompt=False)),
    ]


def _responses_filter(source: str, chars: int, results: dict[str, Any]) -> dict[str, Any]:
    return {
        "blocked": False,
        "content_filter_offsets": {"check_offset": 0, "end_offset": chars, "start_offset": 0},
        "content_filter_raw": [],
        "content_filter_results": results,
        "source_type": source,
    }
