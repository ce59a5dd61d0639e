"""``python -m meter.apps.emulator``: serve the emulator in the foreground (for demos and manual tests).

The same as ``meter emulator`` (``meter.apps.emulator_command``), which owns the options.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from meter.apps.emulator_command import add_arguments, run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meter.apps.emulator", description="Azure OpenAI emulator")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
