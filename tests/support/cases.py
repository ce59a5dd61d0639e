"""One loader for both case corpora: the shared conformance corpus and the project's own cases.

A case folder holds ``request.json``, ``response.json``, ``response.body`` and ``expected.json``
(format: /work/shared/conformance/README.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["OWN_CASES", "SHARED_CONFORMANCE", "Case", "load_case", "load_cases"]

_REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_CONFORMANCE: Path = _REPO_ROOT.parent / "shared" / "conformance"
OWN_CASES: Path = _REPO_ROOT / "tests" / "fixtures" / "cases"


@dataclass(frozen=True)
class Case:
    name: str  # folder name, e.g. "07-azure-chat-stream-include-usage"
    dir: Path
    method: str
    url: str
    path: str  # path + query of url, exactly as recorded (e.g. "//openai/...?api-version=...")
    request_headers: dict[str, str]
    request_body: Any  # parsed JSON, or None when not recorded
    status: int
    response_headers: dict[str, str]
    content_type: str | None
    body: bytes  # response.body, byte for byte (decoded text if Content-Encoding was recorded)
    expected: dict[str, Any]

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def route(self) -> str:
        """The path without query, repeated slashes collapsed."""
        return re.sub(r"/{2,}", "/", urlsplit(self.url).path) or "/"

    @property
    def is_sse(self) -> bool:
        """Same rule as derive_expected.py: text/event-stream, or (no content type) data:/event: prefix."""
        if self.content_type:
            return self.content_type.split(";")[0].strip().lower() == "text/event-stream"
        head = self.body.lstrip()
        return head.startswith((b"data:", b"event:"))

    @property
    def api(self) -> str | None:
        value = self.expected.get("api")
        return value if isinstance(value, str) else None

    @property
    def stream(self) -> bool:
        return bool(self.expected.get("stream"))

    def response_header(self, name: str) -> str | None:
        low = name.lower()
        return next((v for k, v in self.response_headers.items() if k.lower() == low), None)

    def __repr__(self) -> str:  # keep pytest ids / failure output short
        return f"Case({self.name!r})"


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def load_case(case_dir: Path) -> Case:
    """Load one case folder. Raises FileNotFoundError if any of the four files is missing."""
    case_dir = Path(case_dir)
    request = _read_json(case_dir / "request.json")
    response = _read_json(case_dir / "response.json")
    expected = _read_json(case_dir / "expected.json")
    body = (case_dir / "response.body").read_bytes()
    url = str(request["url"])
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Case(
        name=case_dir.name,
        dir=case_dir,
        method=str(request.get("method", "POST")).upper(),
        url=url,
        path=path,
        request_headers={str(k): str(v) for k, v in (request.get("headers") or {}).items()},
        request_body=request.get("body"),
        status=int(response["status"]),
        response_headers={str(k): str(v) for k, v in (response.get("headers") or {}).items()},
        content_type=response.get("content_type"),
        body=body,
        expected=expected if isinstance(expected, dict) else {},
    )


def load_cases(root: Path) -> list[Case]:
    """Load every case under ``root``, sorted by folder name.

    ``root`` may be a corpus folder holding ``cases/<NN-slug>/``, the cases folder itself, or a
    single case folder.
    """
    root = Path(root)
    if (root / "request.json").is_file():
        return [load_case(root)]
    base = root / "cases" if (root / "cases").is_dir() else root
    if not base.is_dir():
        raise FileNotFoundError(f"no case folder at {root}")
    return [load_case(p) for p in sorted(base.iterdir()) if (p / "request.json").is_file()]
