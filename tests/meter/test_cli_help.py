"""``meter ... --help`` is for users: every command says what it does and shows an example that parses."""

from __future__ import annotations

import argparse
import contextlib
import io
import shlex
from collections.abc import Iterator

import pytest

from meter.cli import build_parser
from meter.cli_help import HELP


def _commands(parser: argparse.ArgumentParser, path: str = "") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{path} {name}".strip())


COMMANDS = dict(_commands(build_parser()))


def test_every_command_has_user_help_and_nothing_else_does() -> None:
    assert set(COMMANDS) == set(HELP)


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_help_says_what_the_command_does_with_an_example(path: str) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser().parse_args([*path.split(), "--help"])
    text = out.getvalue()
    assert "examples:\n  meter" in text
    for developer_text in ("``", "add_commands", "handler", "%%", ":func:", ":class:"):
        assert developer_text not in text, f"meter {path} --help shows {developer_text!r}"
    assert max(len(line) for line in text.split("examples:")[0].splitlines()) <= 100


@pytest.mark.parametrize(("path", "example"), [(path, example) for path, (_, examples) in sorted(HELP.items())
                                               for example in examples])
def test_every_example_is_a_command_line_meter_accepts(path: str, example: str) -> None:
    words = shlex.split(example.split("#")[0].split(">")[0])
    assert words[0] == "meter"
    args = build_parser().parse_args(words[1:])
    assert getattr(args, "handler", None) is not None
    assert " ".join(words[1:]).startswith(path)
