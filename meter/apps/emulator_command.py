"""``meter emulator``: the Azure OpenAI emulator in the foreground, as a command of ``meter``.

Kept outside ``meter.apps.emulator`` so that building the command tree never imports
the emulator (and its ``[emulator]`` extra): the handler does, and a missing extra is
one line from the ``meter`` command, not a traceback.
"""

from __future__ import annotations

import argparse
from typing import Any

_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (("--host", {"default": "127.0.0.1"}),
            ("--port", {"type": int, "default": 8000, "help": "0 picks a free port (printed)"}),
            ("--api-key", {"default": "emulator-key"}),
            ("--latency", {"type": float, "default": 0.0, "help": "seconds before the response headers"}),
            ("--ttft", {"type": float, "default": 0.0, "help": "seconds to the first content delta"}),
            ("--tokens-per-s", {"type": float, "default": 0.0, "help": "delta pace (0: no pause)"}),
            ("--region", {"default": "East US 2"}))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The emulator's options (also ``python -m meter.apps.emulator``'s); defaults are ``EmulatorConfig``'s."""
    for flag, options in _OPTIONS:
        parser.add_argument(flag, **options)


def add_command(commands: Any) -> None:
    parser = commands.add_parser("emulator", help="serve the embedded Azure OpenAI emulator in the foreground",
                                 description="Azure OpenAI emulator (needs the [emulator] extra)")
    add_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve in the foreground until interrupted."""
    from meter.extras import require

    require("emulator", "meter emulator")
    import uvicorn

    from meter.apps.background import bind
    from meter.apps.emulator import EmulatorConfig, create_app

    config = EmulatorConfig(api_key=args.api_key, latency_s=args.latency, ttft_s=args.ttft,
                            tokens_per_s=args.tokens_per_s, region=args.region)
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    print(f"Azure OpenAI emulator on http://{args.host}:{port}  api-key: {config.api_key}", flush=True)
    print("deployments: " + ", ".join(f"{d.name} ({d.model})" for d in config.deployments), flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning", access_log=False))
    server.run(sockets=[sock])
    return 0
