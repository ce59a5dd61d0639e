"""promtool on the shipped rules, their unit tests and prometheus.yml."""

from __future__ import annotations

from pathlib import Path

import pytest

from meter.dashboards import generate
from tests.support.prometheus import (
    promtool_check_config,
    promtool_check_rules,
    promtool_test_rules,
    require_prometheus,
)

PROMETHEUS_DIR = generate.ROOT / "prometheus"


@pytest.fixture(autouse=True)
def _binaries() -> None:
    require_prometheus()


def test_promtool_check_rules() -> None:
    result = promtool_check_rules(PROMETHEUS_DIR / "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 12 rules found" in result.stdout


def test_promtool_test_rules() -> None:
    tests = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
    assert tests
    result = promtool_test_rules(*tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "FAILED" not in result.stdout


def test_promtool_test_rules_catches_a_wrong_expectation(tmp_path: Path) -> None:
    # the unit tests are not vacuous: flip one expectation and promtool must fail
    source = (PROMETHEUS_DIR / "tests" / "alerts_test.yml").read_text()
    broken = tmp_path / "tests" / "broken_test.yml"
    broken.parent.mkdir()
    (tmp_path / "alerts.yml").write_text((PROMETHEUS_DIR / "alerts.yml").read_text())
    assert "deployment: d1" in source
    broken.write_text(source.replace("deployment: d1", "deployment: d9", 1))
    result = promtool_test_rules(broken)
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr


def test_promtool_check_config_resolves_rule_files_from_its_directory() -> None:
    result = promtool_check_config(PROMETHEUS_DIR / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout
