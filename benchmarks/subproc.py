"""Run a measurement in a fresh interpreter and read back its JSON: memory and start-up need a clean process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, timeout: float, env: dict[str, str] | None = None) -> Any:
    """Run ``code`` (which prints one JSON document last) with this interpreter; return the document."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("METER_", "OTEL_", "PROMETHEUS_"))}
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
