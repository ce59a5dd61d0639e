"""Every Python block in README.md and docs/*.md runs, as written, against the emulator.

Each block runs in a fresh interpreter with a timeout, after a short prelude that binds the
names the prose leaves to the reader (``tp``, ``mp``, ``my_registry``, ``app``, ``usage`` ...);
a page's blocks run in order, each after the ones before it on the page, and with the
placeholders replaced by real servers' (``https://my-resource.openai.azure.com``,
``api_key="..."``, ``openai.AzureOpenAI(...)``, the docs' PostgreSQL URL; the table is
``_placeholders``). The emulator serves the deployment names the docs use; a real PostgreSQL
server stands for the docs' database. A block that cannot run anywhere (a file of the
reader's own) is marked ``<!-- illustrative: why -->`` on the line before it; there are at
most ``MAX_ILLUSTRATIVE`` of those.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from meter.apps.emulator import DEFAULT_DEPLOYMENTS, Deployment, Emulator, EmulatorConfig
from meter.apps.proxy import ProxyServer
from tests.support.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MAX_ILLUSTRATIVE = 2
KEY = "docs-key"
_BLOCK = re.compile(r"^( *)```python\n(.*?)^\1```", re.S | re.M)

DEPLOYMENTS = (*DEFAULT_DEPLOYMENTS,
               Deployment("my-gpt4o-deployment", "gpt-4o-2024-11-20"),
               Deployment("chat-prod", "gpt-4.1-mini-2025-04-14", "DataZoneStandard"),
               Deployment("o1-pro", "o1-pro-2025-03-19", reasoning=True),
               Deployment("codex-mini", "codex-mini-2025-05-16", reasoning=True))
"""The emulator serves the deployment names the docs use."""


def _blocks() -> list[tuple[str, str, bool]]:
    """(where, code, illustrative) for every Python block of the docs.

    A page's blocks build on each other, as a reader runs them in order: each block's code is
    the page's earlier runnable blocks followed by its own.
    """
    found = []
    for doc in DOCS:
        text = doc.read_text()
        earlier = ""
        for match in _BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
            code = textwrap.dedent(match.group(2))
            illustrative = before.startswith("<!-- illustrative:")
            found.append((f"{doc.relative_to(REPO)}:{line}", earlier + code, illustrative))
            if not illustrative:
                earlier += code + "\n"
    return found


BLOCKS = _blocks()


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str, str]]:
    with Emulator(EmulatorConfig(deployments=DEPLOYMENTS, api_key=KEY)) as emu, ProxyServer(emu.url) as proxy, \
            PostgresServer() as pg:
        yield emu.url, proxy.url, pg.url


def _placeholders(emulator: str, proxy: str, postgres: str) -> list[tuple[str, str]]:
    endpoint = f'azure_endpoint="{emulator}", api_key="{KEY}", api_version="2024-10-21"'
    return [
        ('"https://my-resource.openai.azure.com"', f'"{emulator}"'),
        ('"https://RESOURCE.openai.azure.com/"', f'"{emulator}/"'),
        ('"https://RESOURCE.openai.azure.com"', f'"{emulator}"'),
        ('"http://127.0.0.1:8080"', f'"{proxy}"'),
        ('api_key="..."', f'api_key="{KEY}"'),
        ("AzureOpenAI(...)", f"AzureOpenAI({endpoint})"),
        ("AzureOpenAI(..., ", f"AzureOpenAI({endpoint}, "),
        ("start_metrics_server(9464)", "start_metrics_server(0)"),
        ('"postgresql://meter@db:5432/meter"', f'"{postgres}"'),
    ]


PRELUDE = f'''
import datetime, httpx, httpx2, openai, meter
from prometheus_client import CollectorRegistry
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
m = meter.Meter(registry=CollectorRegistry())
tp, mp, my_registry, app = TracerProvider(), MeterProvider(), CollectorRegistry(), Starlette()
AZURE_API_KEY = "{KEY}"
usage = meter.Usage(input_tokens=16, output_tokens=22, total_tokens=38)
call_started_at = datetime.datetime(2025, 6, 1, tzinfo=datetime.UTC)
'''


def test_the_docs_have_python_blocks_and_few_illustrative_ones() -> None:
    assert len(BLOCKS) >= 8
    illustrative = [where for where, _, marked in BLOCKS if marked]
    assert len(illustrative) <= MAX_ILLUSTRATIVE, illustrative


@pytest.mark.parametrize(("where", "code"), [(w, c) for w, c, marked in BLOCKS if not marked],
                         ids=[w for w, _, marked in BLOCKS if not marked])
def test_the_block_runs_against_the_emulator(servers: tuple[str, str, str], where: str, code: str,
                                             tmp_path: Path) -> None:
    emulator, proxy, postgres = servers
    for placeholder, value in _placeholders(emulator, proxy, postgres):
        code = code.replace(placeholder, value)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METER_", "OTEL_", "PROMETHEUS_"))}
    env.update(PYTHONPATH=str(REPO), OPENAI_API_KEY=KEY, AZURE_OPENAI_API_KEY=KEY, AZURE_OPENAI_ENDPOINT=emulator,
               OPENAI_API_VERSION="2024-10-21", LITELLM_LOCAL_MODEL_COST_MAP="True", NO_PROXY="127.0.0.1,localhost")
    try:
        done = subprocess.run([sys.executable, "-c", PRELUDE + code], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{where}: the block hung (killed after 120 s):\n{code}")
    assert done.returncode == 0, f"{where} failed:\n{code}\n--- stderr\n{done.stderr[-3000:]}"
