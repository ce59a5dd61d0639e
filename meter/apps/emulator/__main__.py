"""``python -m meter.apps.emulator``: serve the emulator in the foreground (for demos and manual tests)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from meter.apps.background import bind
from meter.apps.emulator.app import create_app
from meter.apps.emulator.config import EmulatorConfig


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m meter.apps.emulator", description="Azure OpenAI emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed)")
    parser.add_argument("--api-key", default=EmulatorConfig.api_key)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before the response headers")
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds to the first content delta")
    parser.add_argument("--tokens-per-s", type=float, default=0.0, help="delta pace (0: no pause)")
    parser.add_argument("--region", default=EmulatorConfig.region)
    args = parser.parse_args(argv)
    config = EmulatorConfig(api_key=args.api_key, latency_s=args.latency, ttft_s=args.ttft,
                            tokens_per_s=args.tokens_per_s, region=args.region)
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    print(f"Azure OpenAI emulator on http://{args.host}:{port}  api-key: {config.api_key}", flush=True)
    print("deployments: " + ", ".join(f"{d.name} ({d.model})" for d in config.deployments), flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning", access_log=False))
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
