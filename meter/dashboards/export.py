"""``meter dashboards export``: the dashboards, rules and stack for the user's own metrics, from the package.

The committed files under dashboards/ are the export for meter's defaults; an export
for ``Meter(namespace="acme_ai", label_keys=("team", "feature"))`` queries ``acme_ai_*``
and has a variable per label key. Nothing here reads the source tree: everything is
generated from the installed ``dashboards`` package, so a wheel install has it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from meter import names
from meter.dashboards import alerts, generate, stack
from meter.dashboards.queries import Queries


@dataclass(frozen=True)
class ExportSettings:
    """What an export is for: the metrics it reads, the budget its alerts use, the datasource it names."""

    namespace: str = names.DEFAULT_NAMESPACE
    label_keys: tuple[str, ...] = ("team",)
    monthly_budget_usd: float = alerts.Settings.monthly_budget_usd
    datasource_uid: str = stack.PROMETHEUS_DATASOURCE_UID


def render(settings: ExportSettings) -> dict[str, str]:
    """Relative path -> file contents of an export (raises ``ValueError`` for a bad namespace or key)."""
    q = Queries(settings.namespace, settings.label_keys)
    header = (f"# Written by `meter dashboards export` for metrics {settings.namespace}_* (labels: "
              f"{', '.join(settings.label_keys) or 'none'}); export again to change it.\n")
    files = generate.render(alerts.Settings(monthly_budget_usd=settings.monthly_budget_usd), q,
                            datasource_uid=settings.datasource_uid, demo=False, header=header)
    files["prometheus/prometheus-local.yml"] = generate.yaml_text(
        stack.prometheus_config(demo=False, app_target="localhost:9464"), header +
        "# For a Prometheus outside Docker, run from this folder's prometheus/ directory:\n"
        "#   prometheus --config.file=prometheus-local.yml --enable-feature=exemplar-storage\n"
        "# It scrapes meter's /metrics on localhost:9464 (meter demo --serve, or your app).\n")
    files["compose.yaml"] = generate.yaml_text(stack.compose(demo=False), stack.EXPORT_COMPOSE_HEADER)
    return files


def export(directory: Path, settings: ExportSettings) -> list[Path]:
    """Write an export under ``directory`` (created); returns the files written."""
    files = render(settings)  # everything is generated before anything is written: no half export
    written = []
    for rel, text in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
