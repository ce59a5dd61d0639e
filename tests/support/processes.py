"""Reading from the command-line tools the tests run as subprocesses (e.g. ``meter demo --json --serve``)."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any


def read_json(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """The first complete JSON document the process prints (it may keep running afterwards)."""
    assert proc.stdout is not None
    text, decoder = "", json.JSONDecoder()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        text += line
        try:
            doc, _ = decoder.raw_decode(text.strip())
            return dict(doc)
        except ValueError:
            continue
    raise AssertionError(f"no JSON from the process within {timeout} s; got {text!r}")
