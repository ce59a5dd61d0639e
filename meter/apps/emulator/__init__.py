"""An embedded Azure OpenAI emulator: a real HTTP server that speaks Azure's wire formats.

It exists so the meter (and its demo) can be exercised end to end, over real
sockets, with the real ``openai`` SDK, and checked against a known bill: every
answered request lands in ``Emulator.usage_log``. See ``Emulator``,
``EmulatorConfig`` and ``Deployment``; ``create_app`` serves it under any ASGI
server and ``python -m meter.apps.emulator`` runs it in the foreground.
"""

from meter.apps.emulator.app import create_app
from meter.apps.emulator.config import DEFAULT_DEPLOYMENTS, Deployment, EmulatorConfig
from meter.apps.emulator.server import Emulator

__all__ = ["DEFAULT_DEPLOYMENTS", "Deployment", "Emulator", "EmulatorConfig", "create_app"]
