"""``meter demo``: the emulator, a mixed workload through the real openai SDK, and what meter saw.

Runs with no Azure account: the embedded emulator stands in for Azure
OpenAI. Needs the ``demo`` extra (openai, starlette, uvicorn, the OTel SDK).
"""

from meter.apps.demo.cli import add_command

__all__ = ["add_command"]
