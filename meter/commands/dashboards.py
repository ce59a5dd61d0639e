"""``meter dashboards export``: the dashboards, rules and stack for the user's own metrics, from the package.

The command face of ``meter.dashboards.export``, which generates the files (``render``) and
writes them (``export``); this module reads the options and says what was written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from meter import names
from meter.dashboards import alerts, stack
from meter.dashboards.export import ExportSettings, export


def _label_keys(text: str) -> tuple[str, ...]:
    return tuple(key.strip() for key in text.split(",") if key.strip())


def add_commands(commands: Any) -> None:
    """``meter dashboards export DIR``, added to meter's command tree."""
    group = commands.add_parser("dashboards", help="Grafana dashboards, alert rules and a compose stack")
    sub = group.add_subparsers(dest="dashboards_command", metavar="COMMAND")
    group.set_defaults(handler=lambda args: (group.print_help(), 2)[1])
    cmd = sub.add_parser("export", help="write dashboards, rules (with promtool tests), prometheus.yml and "
                                        "compose.yaml for your namespace and labels",
                         description=__doc__.splitlines()[0])
    cmd.add_argument("directory", type=Path, metavar="DIR", help="where to write (created if missing)")
    cmd.add_argument("--namespace", default=names.DEFAULT_NAMESPACE,
                     help="Meter(namespace=...) of the metrics to read (default %(default)s)")
    cmd.add_argument("--label-keys", type=_label_keys, default=("team",), metavar="KEY[,KEY...]",
                     help="Meter(label_keys=...): one dashboard variable each; the first is the 'by team' "
                          "breakdown (default team; '' for none)")
    cmd.add_argument("--monthly-budget-usd", type=float, default=alerts.Settings.monthly_budget_usd,
                     help="monthly budget for the burn-rate alerts (default %(default)g)")
    cmd.add_argument("--datasource-uid", default=stack.PROMETHEUS_DATASOURCE_UID,
                     help="uid of the Prometheus datasource the dashboards select (default %(default)s)")
    cmd.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    if args.monthly_budget_usd <= 0:
        print(f"error: --monthly-budget-usd must be above 0, got {args.monthly_budget_usd:g}", file=sys.stderr)
        return 1
    settings = ExportSettings(args.namespace, args.label_keys, args.monthly_budget_usd, args.datasource_uid)
    try:
        written = export(args.directory, settings)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot write {args.directory}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} files under {args.directory} for metrics {settings.namespace}_* "
          f"(labels: {', '.join(settings.label_keys) or 'none'}):")
    for path in written:
        print(f"  {path}")
    print(f"next: cd {args.directory} && docker compose up   (see the header of compose.yaml)")
    return 0


