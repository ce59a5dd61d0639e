"""Run a snippet in a fresh Python process with a timeout: the way a new user meets meter.

Nothing from the test process (a Meter built by a fixture, a default meter set by
another test, imported modules) leaks into the snippet. A hang is a failure, not a
stuck suite: the process is killed at the timeout and the test says so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_fresh(code: str, timeout: float = 60.0, env: dict[str, str] | None = None,
              argv: list[str] | None = None) -> str:
    """Run ``code`` with this interpreter in a new process; return its stdout, fail on error or timeout."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("METER_", "OTEL_", "PROMETHEUS_"))}
    full_env["PYTHONPATH"] = str(REPO)
    full_env.update(env or {})
    try:
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *(argv or [])], capture_output=True,
                              text=True, timeout=timeout, env=full_env, cwd=REPO)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the snippet hung (killed after {timeout} s):\n{textwrap.dedent(code)}\n"
                             f"stdout: {exc.stdout!r}\nstderr: {exc.stderr!r}") from None
    if done.returncode != 0:
        raise AssertionError(f"the snippet failed (exit {done.returncode}):\n{textwrap.dedent(code)}\n"
                             f"stdout: {done.stdout}\nstderr: {done.stderr}")
    return done.stdout
