"""The README's two commands, as written: the demo set-up runs in a fresh clone; the test command is CI's.

The first command (venv, ``pip install -e ".[demo]"``, ``meter demo``) is read from the README
and run verbatim with ``sh`` in a fresh ``git clone`` of this checkout, with a timeout. The
second is ``bash .ci/run``, which is what CI runs: running it here again would recurse, so the
test checks the README says exactly that.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    head = text[:text.index("## The demo")]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", head, re.S)]


def test_the_readme_has_the_two_commands() -> None:
    setup, tests = _commands()
    assert "meter demo" in setup and "pip install" in setup
    assert tests == "bash .ci/run"


def test_the_demo_command_runs_in_a_fresh_clone(tmp_path: Path) -> None:
    setup, _ = _commands()
    clone = tmp_path / "meter"
    done = subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"this test needs a git checkout to clone: {done.stderr}"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith(("METER_", "OTEL_", "PROMETHEUS_"))}
    done = subprocess.run(["sh", "-c", setup], capture_output=True, text=True, timeout=900, cwd=clone, env=env)
    assert done.returncode == 0, f"{setup}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    assert "meter dashboards export" in done.stdout and "per team" in done.stdout, done.stdout[-2000:]
