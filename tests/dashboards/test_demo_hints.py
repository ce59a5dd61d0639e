"""The demo's closing hints are commands that work from the installed package, as printed.

Run the demo as a user does, take the export command it prints, run that in an empty
folder, and check the files the next hints name are there (and that promtool accepts the
local Prometheus config they point at). No path of the source tree may appear.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.prometheus import _promtool, require_prometheus

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("options", [[], ["--namespace", "acme_ai", "--label-keys", "team,feature"]])
def test_the_printed_hints_work_in_an_empty_folder(tmp_path: Path, options: list[str]) -> None:
    demo = subprocess.run([sys.executable, "-m", "meter", "demo", "--requests", "8", "--metrics-port", "0", *options],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert demo.returncode == 0, demo.stderr
    hints = demo.stdout[demo.stdout.index("dashboards:"):]
    assert "dashboards/ (" not in hints and str(REPO) not in hints
    line = next(ln for ln in hints.splitlines() if "meter dashboards export" in ln)
    command = shlex.split(line.split("dashboards:", 1)[1])
    assert command[:3] == ["meter", "dashboards", "export"]
    assert command[4:] == options
    done = subprocess.run([sys.executable, "-m", "meter", *command[1:]], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "cd meter-dashboards && docker compose up" in hints
    assert "--config.file=meter-dashboards/prometheus/prometheus-local.yml" in hints
    for named in ("meter-dashboards/compose.yaml", "meter-dashboards/prometheus/prometheus-local.yml"):
        assert (tmp_path / named).is_file(), named
    require_prometheus()
    check = _promtool(["check", "config", "meter-dashboards/prometheus/prometheus-local.yml"], cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
