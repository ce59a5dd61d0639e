"""An embedded Azure OpenAI emulator: a real HTTP server that speaks Azure's wire formats.

It exists so the meter (and its demo) can be exercised end to end, over real
sockets, with the real ``openai`` SDK, and checked against a known bill: every
answered request lands in ``Emulator.usage_log``. See ``Emulator``,
``EmulatorConfig`` and ``Deployment``; ``create_app`` serves it under any ASGI
server and ``python -m meter.apps.emulator`` runs it in the foreground.
"""

# The check comes first: without the [emulator] extra, importing the app below would fail on starlette.
from meter.extras import require

require("emulator", "meter.apps.emulator")

from meter.apps.emulator.app import create_app  # noqa: E402
from meter.apps.emulator.config import DEFAULT_DEPLOYMENTS, Deployment, EmulatorConfig  # noqa: E402
from meter.apps.emulator.server import Emulator  # noqa: E402

__all__ = ["DEFAULT_DEPLOYMENTS", "Deployment", "Emulator", "EmulatorConfig", "create_app"]
