"""Embeddings: a small deterministic vector per input, as floats or base64.

The openai SDK asks for ``encoding_format: base64`` by default and decodes it
itself, so both encodings must be honoured. The vectors are unit-length and
derived from the input's hash: same text, same vector.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

DIMENSIONS = 8


def vector(text: str) -> list[float]:
    raw = hashlib.sha256(text.encode()).digest()
    values = [(b - 127.5) / 127.5 for b in raw[:DIMENSIONS]]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


def _encode(values: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
    return values


def body(model: str, inputs: list[str], prompt_tokens: int, encoding: str) -> dict[str, Any]:
    """The embeddings ``list`` object (alphabetical keys, as Azure sends them)."""
    data = [
        {"embedding": _encode(vector(text), encoding), "index": i, "object": "embedding"}
        for i, text in enumerate(inputs)
    ]
    return {
        "data": data,
        "model": model,
        "object": "list",
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
