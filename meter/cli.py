"""The ``meter`` command: one argparse tree, each command group in its own module (``meter.commands``, the apps)."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Sequence

import meter.apps.demo
from meter._version import __version__
from meter.apps.emulator_command import add_command as add_emulator_command
from meter.apps.proxy import add_command as add_proxy_command
from meter.cli_help import HELP, epilog
from meter.commands import budgets, dashboards, ledger, pricing, reconcile
from meter.extras import MissingExtra


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; command groups add their own sub-commands."""
    parser = argparse.ArgumentParser(
        prog="meter",
        description="Meter Azure OpenAI traffic: usage, cost, latency and failures per call.",
    )
    parser.add_argument("--version", action="version", version=f"meter {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    pricing.add_commands(commands)
    add_proxy_command(commands)
    meter.apps.demo.add_command(commands)
    dashboards.add_commands(commands)
    add_emulator_command(commands)
    ledger.add_commands(commands)
    reconcile.add_command(commands)
    budgets.add_commands(commands)
    _user_help(parser)
    return parser


def _user_help(parser: argparse.ArgumentParser, path: str = "") -> None:
    """Give every command of the tree its description and examples from ``meter.cli_help``."""
    description, examples = HELP[path]
    parser.description = textwrap.fill(description, 79)
    parser.epilog = epilog(examples)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                _user_help(sub, f"{path} {name}".strip())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    try:
        code: int = handler(args)
    except MissingExtra as exc:  # one line saying what to install, never a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
