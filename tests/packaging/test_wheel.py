"""The package as users install it: built sdist and wheel, installed into fresh venvs, run from outside the checkout.

Two venvs, both built from the wheel alone (no ``-e``, no checkout on ``sys.path``; the
commands run from an empty folder with a clean environment):
- without extras: the core works (``--version``, ``dashboards export``, ``pricing validate``),
  and every command that needs an extra says which one in a single line, exit code 2, no
  traceback;
- with ``[demo]``: the demo, the dashboards and the rules, and ``meter proxy --help``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.prometheus import _promtool, require_prometheus

REPO = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith(("METER_", "OTEL_", "PROMETHEUS_"))}
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _ok(_run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], cwd=out, timeout=600))
    return out


def _wheel(dist: Path) -> Path:
    (wheel,) = dist.glob("meter-*.whl")
    return wheel


def _venv(tmp: Path, requirement: str) -> Path:
    _ok(_run([sys.executable, "-m", "venv", str(tmp / "venv")], cwd=tmp))
    python = tmp / "venv" / "bin" / "python"
    _ok(_run([str(python), "-m", "pip", "install", "-q", requirement], cwd=tmp, timeout=900))
    return tmp / "venv" / "bin"


@pytest.fixture(scope="module")
def bare(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield _venv(tmp_path_factory.mktemp("bare"), str(_wheel(dist)))


@pytest.fixture(scope="module")
def demo(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield _venv(tmp_path_factory.mktemp("demo"), f"{_wheel(dist)}[demo]")


def test_the_metadata_passes_twine_check(dist: Path) -> None:
    _ok(_run([sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(dist.iterdir()))], cwd=dist))


def test_the_wheel_holds_the_code_the_data_and_no_tests(dist: Path) -> None:
    wheel = _wheel(dist)
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"meter", wheel.name.split("-py3")[0] + ".dist-info"}, tops  # one import name
    for needed in ("meter/py.typed", "meter/dashboards/export.py", "meter/dashboards/boards.py",
                   "meter/pricing/book.py", "meter/pricing/tables/20-azure-retail.toml",
                   "meter/pricing/tables/price-table.schema.json", "meter/apps/emulator/app.py"):
        assert needed in names, needed
    tables = sorted(n for n in names if n.startswith("meter/pricing/tables/"))
    on_disk = sorted(f"meter/pricing/tables/{p.name}" for p in (REPO / "pricing").iterdir()
                     if p.suffix in (".toml", ".json") or p.name == "__init__.py")
    assert tables == on_disk  # the repository's pricing/ folder, shipped whole (but the Retail excerpt)
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/")) or "/tests/" in n]


def test_the_packages_listed_are_the_packages_on_disk() -> None:
    """pyproject.toml lists the packages (one is a data folder elsewhere): a new package must be added there."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "meter").rglob("__init__.py")}
    assert listed == found | {"meter.pricing.tables"}


def test_the_wheel_says_its_licence_and_carries_it(dist: Path) -> None:
    wheel = zipfile.ZipFile(_wheel(dist))
    info = _wheel(dist).name.split("-py3")[0] + ".dist-info"
    metadata = wheel.read(f"{info}/METADATA").decode()
    assert "License-Expression: MIT" in metadata.splitlines()
    assert "License-File: LICENSE" in metadata.splitlines()
    assert wheel.read(f"{info}/licenses/LICENSE").decode().startswith("MIT License")


def test_the_core_runs_without_extras(bare: Path, tmp_path: Path) -> None:
    where = _ok(_run([str(bare / "python"), "-c", "import meter.pricing, meter.dashboards; print(meter.__file__)"],
                     cwd=tmp_path))
    assert str(bare.parent) in where and str(REPO) not in where
    for other in ("pricing", "dashboards"):  # an application's own pricing or dashboards module is never shadowed
        done = _run([str(bare / "python"), "-c", f"import {other}"], cwd=tmp_path)
        assert done.returncode == 1 and f"No module named '{other}'" in done.stderr, done.stderr
    assert _ok(_run([str(bare / "meter"), "--version"], cwd=tmp_path)).startswith("meter ")
    _ok(_run([str(bare / "meter"), "dashboards", "export", "out"], cwd=tmp_path))
    assert (tmp_path / "out" / "grafana" / "meter-cost.json").is_file()
    tables = sorted((bare.parent / "lib").glob("python3*/site-packages/meter/pricing/tables/*.toml"))
    assert len(tables) >= 3
    _ok(_run([str(bare / "meter"), "pricing", "validate", *map(str, tables)], cwd=tmp_path))


@pytest.mark.parametrize(("command", "extra"), [
    (["demo", "--requests", "2"], "demo"),
    (["proxy", "--upstream", "https://r.openai.azure.com", "--port", "0", "--metrics-port", "0"], "proxy"),
    (["emulator", "--port", "0"], "emulator"),
])
def test_a_command_without_its_extra_says_which_to_install(bare: Path, tmp_path: Path, command: list[str],
                                                            extra: str) -> None:
    done = _run([str(bare / "meter"), *command], cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and f"pip install 'meter[{extra}]'" in line, line


@pytest.mark.parametrize(("code", "extra"), [
    ("import meter.apps.emulator", "emulator"),
    ("import meter; meter.setup_otel()", "otlp"),
    ("from meter.integrations import litellm; litellm.instrument()", "litellm"),
    ("from meter.dashboards.render import render_dashboard; render_dashboard({}, None, 0, 0, None)", "plots"),
])
def test_an_import_without_its_extra_names_it(bare: Path, tmp_path: Path, code: str, extra: str) -> None:
    done = _run([str(bare / "python"), "-c", code], cwd=tmp_path, timeout=60)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("meter.extras.MissingExtra: ") and f"pip install 'meter[{extra}]'" in last, last


def test_the_demo_extra_gets_the_demo_the_dashboards_and_the_rules(demo: Path, tmp_path: Path) -> None:
    summary = _ok(_run([str(demo / "meter"), "demo", "--requests", "10", "--json", "--metrics-port", "0"],
                       cwd=tmp_path, timeout=180))
    assert '"requests": 1' in summary
    _ok(_run([str(demo / "meter"), "proxy", "--help"], cwd=tmp_path))
    _ok(_run([str(demo / "meter"), "dashboards", "export", "dash", "--namespace", "acme_ai"], cwd=tmp_path))
    require_prometheus()
    rules = tmp_path / "dash" / "prometheus"
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "tests/alerts_test.yml"]):
        done = _promtool(args, cwd=rules)
        assert done.returncode == 0, done.stdout + done.stderr
